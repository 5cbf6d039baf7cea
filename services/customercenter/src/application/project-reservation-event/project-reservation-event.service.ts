import type { ReservationPage } from '../../domain/reservation-page.ts';
import { changeOf, type PageEvent } from '../events.ts';
import type { ReservationPageStore } from '../ports.ts';

/**
 * Projects one lifecycle event onto its reservation's page and timeline. Runs inside the event
 * consumer's transaction, beside the inbox record, with a store bound to that transaction; order
 * and repetition do not matter (see `mergePages`).
 */
export class ProjectReservationEvent {
  execute(event: PageEvent, store: ReservationPageStore): Promise<ReservationPage> {
    return store.applyChange(changeOf(event));
  }
}
