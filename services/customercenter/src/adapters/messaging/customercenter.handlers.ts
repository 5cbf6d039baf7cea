import type { Transaction } from 'kysely';
import type { EventHandlers } from '@bstore/platform';
import type { PageEvent } from '../../application/events.ts';
import type { ProjectReservationEvent } from '../../application/project-reservation-event/project-reservation-event.service.ts';
import { KyselyReservationPageStore } from '../db/reservation-page.store.ts';
import type { CustomerCenterTables } from '../db/schema.ts';

/** Every lifecycle event goes to the same projection, in the consumer's transaction. */
export function customercenterEventHandlers(project: ProjectReservationEvent): EventHandlers<CustomerCenterTables> {
  const handle = async (event: PageEvent, trx: Transaction<CustomerCenterTables>): Promise<void> => {
    await project.execute(event, new KyselyReservationPageStore(trx));
  };
  return {
    ReservationRequested: handle,
    ReservationRejected: handle,
    ReservationAccepted: handle,
    ReservationCancelRequested: handle,
    ReservationCanceled: handle,
  };
}
