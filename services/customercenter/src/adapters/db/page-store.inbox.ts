import type { Kysely } from 'kysely';
import { KyselyInbox, type DeadLetterInput, type Inbox } from '@bstore/platform';
import type { IntegrationEvent } from '@bstore/contracts';
import type { ReservationPageStore } from '../../application/ports.ts';
import { KyselyReservationPageStore } from './reservation-page.store.ts';
import type { CustomerCenterTables } from './schema.ts';

/**
 * The SQL inbox (`KyselyInbox`: the event id and the change commit in one transaction), handing
 * each handler the page store bound to that transaction: the read model's handlers see a
 * ReservationPageStore whatever holds it.
 */
export class KyselyPageStoreInbox implements Inbox<ReservationPageStore> {
  readonly #inbox: KyselyInbox<CustomerCenterTables>;

  constructor(db: Kysely<CustomerCenterTables>) {
    this.#inbox = new KyselyInbox(db);
  }

  runOnce(consumer: string, event: IntegrationEvent, effect: (store: ReservationPageStore) => Promise<void>): Promise<boolean> {
    return this.#inbox.runOnce(consumer, event, (trx) => effect(new KyselyReservationPageStore(trx)));
  }

  park(letter: DeadLetterInput): Promise<void> {
    return this.#inbox.park(letter);
  }
}
