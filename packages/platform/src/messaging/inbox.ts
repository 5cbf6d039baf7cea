import type { Kysely, Transaction } from 'kysely';
import type { IntegrationEvent } from '@bstore/contracts';
import type { MessagingTables } from './schema.ts';
import { outboxRowsAdded } from './outbox.ts';

/** An event the consumer gave up on: kept with its error, to be looked at and replayed. */
export interface DeadLetterInput {
  consumer: string;
  eventId: string;
  eventType: string;
  subject: string;
  envelope: unknown;
  error: string;
  deliveries: number;
}

/**
 * Where a consumer remembers which events it has handled, and parks the ones it gave up on. The
 * context (`Ctx`) is what a handler's effect runs against: a database transaction for the SQL
 * inbox, a Redis client for the read model in cluster mode.
 *
 * @example
 * const fresh = await inbox.runOnce('assignment', event, (trx) => assign(event, trx));
 */
export interface Inbox<Ctx> {
  /**
   * Runs `effect` unless `consumer` has already handled `event`, and records it as handled.
   * Returns false, without running the effect, for an event handled before. An implementation
   * either commits the record with the effect atomically, or requires the effect to be idempotent
   * (so a crash between the two only repeats it harmlessly); it says which.
   */
  runOnce(consumer: string, event: IntegrationEvent, effect: (ctx: Ctx) => Promise<void>): Promise<boolean>;
  park(letter: DeadLetterInput): Promise<void>;
}

/**
 * The inbox of a service with a SQL database: the event id goes into `inbox` in the same
 * transaction as the handler's changes (INSERT ... ON CONFLICT DO NOTHING), so a redelivered event
 * is skipped and a handled one is never half-applied. Dead letters go to `dead_letters`.
 *
 * Inbox rows are pruned after a retention (seven days by default, never less than the bus's
 * redelivery horizon) by the `InboxPruner` that `ServiceRuntime` runs (housekeeping.ts, ADR 0014).
 */
export class KyselyInbox<DB> implements Inbox<Transaction<DB>> {
  readonly #db: Kysely<MessagingTables>;

  readonly #afterOutboxCommit: () => void;

  /**
   * `afterOutboxCommit`: called once an event's transaction committed having added outbox rows
   * (the service signals its outbox relay then; an event whose effect added none wakes nothing).
   */
  constructor(db: Kysely<DB>, options: { afterOutboxCommit?: () => void } = {}) {
    this.#db = db as unknown as Kysely<MessagingTables>;
    this.#afterOutboxCommit = options.afterOutboxCommit ?? (() => {});
  }

  async runOnce(consumer: string, event: IntegrationEvent, effect: (trx: Transaction<DB>) => Promise<void>): Promise<boolean> {
    let used: Transaction<MessagingTables> | undefined;
    const first = await this.#db.transaction().execute(async (trx) => {
      used = trx;
      const recorded = await trx
        .insertInto('inbox')
        .values({ consumer, event_id: event.id, event_type: event.type })
        .onConflict((oc) => oc.columns(['consumer', 'event_id']).doNothing())
        .returning('event_id')
        .executeTakeFirst();
      if (!recorded) return false;
      await effect(trx as unknown as Transaction<DB>);
      return true;
    });
    if (first && used !== undefined && outboxRowsAdded(used)) this.#afterOutboxCommit();
    return first;
  }

  async park(letter: DeadLetterInput): Promise<void> {
    await this.#db
      .insertInto('dead_letters')
      .values({
        consumer: letter.consumer,
        event_id: letter.eventId,
        event_type: letter.eventType,
        subject: letter.subject,
        envelope: letter.envelope,
        error: letter.error,
        deliveries: letter.deliveries,
        replayed_at: null,
      })
      .execute();
  }
}
