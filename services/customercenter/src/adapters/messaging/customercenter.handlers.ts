import type { ContextEventHandlers } from '@bstore/platform';
import type { PageEvent } from '../../application/events.ts';
import type { PageEventType } from '../../domain/reservation-page.ts';
import type { ReservationPageStore } from '../../application/ports.ts';
import type { ProjectReservationEvent } from '../../application/project-reservation-event/project-reservation-event.service.ts';

/**
 * Every lifecycle event goes to the same projection, with the store the consumer's inbox hands it
 * (bound to the inbox's transaction with SQL, the Redis store with Redis).
 */
export function customercenterEventHandlers(project: ProjectReservationEvent): ContextEventHandlers<ReservationPageStore> {
  const handle = async (event: PageEvent, store: ReservationPageStore): Promise<void> => {
    await project.execute(event, store);
  };
  // `satisfies`: a page event type without a handler fails to compile.
  return {
    ReservationRequested: handle,
    ReservationRejected: handle,
    ReservationAccepted: handle,
    ReservationCancelRequested: handle,
    ReservationCanceled: handle,
    ReservationWaitlisted: handle,
    CopyGranted: handle,
    ReservationCheckedOut: handle,
    ReservationReturned: handle,
    ReservationExpired: handle,
  } satisfies Record<PageEventType, unknown>;
}
