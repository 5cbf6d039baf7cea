import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { IdempotencyBegin, IdempotencyScope, IdempotencyStore, StoredResponse } from '../http/idempotency.ts';
import type { IdempotencyClaim } from '../../application/ports.ts';
import type { ReservationTables } from './schema.ts';

export interface IdempotencyStoreOptions {
  /** How long a key and its answer are kept (the draft's expiry; 24 h by default). */
  ttlMs: number;
  /**
   * How long a first request may run before another request with the same key may take over:
   * longer than any placement takes (book's timeout and retries), so only a request whose process
   * died is taken over.
   */
  lockMs: number;
}

/** Attempts of `begin` when the key's row disappears between two statements (an expired key pruned). */
const BEGIN_ATTEMPTS = 3;

/**
 * Idempotency keys in reservation's database. `begin` claims a key in one statement (INSERT ... ON
 * CONFLICT DO NOTHING); on a conflict it decides under the row's lock whether to replay, refuse or
 * take over, so two requests with one key never both run. Every claim has its own id: only the
 * request holding the current claim completes or releases the key, so a slow request that was
 * taken over cannot overwrite the answer of the one that took over.
 *
 * A released key (an answer that was not final) keeps the reservation it created: the retry that
 * takes it next answers from that reservation (ADR 0015).
 */
export class KyselyIdempotencyStore implements IdempotencyStore {
  readonly #db: Kysely<ReservationTables>;
  readonly #options: IdempotencyStoreOptions;

  constructor(db: Kysely<ReservationTables>, options: IdempotencyStoreOptions) {
    this.#db = db;
    this.#options = options;
  }

  async begin(scope: IdempotencyScope, fingerprint: string, now: Date): Promise<IdempotencyBegin> {
    for (let attempt = 1; ; attempt++) {
      const begun = await this.#tryBegin(scope, fingerprint, now);
      if (begun || attempt >= BEGIN_ATTEMPTS) return begun ?? { kind: 'inProgress' };
    }
  }

  /** One attempt; null when the key's row vanished under it and another request claimed it first. */
  async #tryBegin(scope: IdempotencyScope, fingerprint: string, now: Date): Promise<IdempotencyBegin | null> {
    const fresh = () => ({
      fingerprint,
      state: 'running' as const,
      claim_id: randomUUID(),
      reservation_id: null,
      response_status: null,
      response_type: null,
      response_body: null,
      locked_until: new Date(now.getTime() + this.#options.lockMs),
      expires_at: new Date(now.getTime() + this.#options.ttlMs),
    });
    const started = (claimId: string, reservationId: number | null): IdempotencyBegin => ({
      kind: 'started',
      claim: { customerId: scope.customerId, key: scope.key, claimId, reservationId },
    });
    const insert = async (db: Kysely<ReservationTables>) => {
      const claim = fresh();
      const inserted = await db
        .insertInto('idempotency_keys')
        .values({ customer_id: scope.customerId, idempotency_key: scope.key, ...claim })
        .onConflict((oc) => oc.columns(['customer_id', 'idempotency_key']).doNothing())
        .returning('customer_id')
        .executeTakeFirst();
      return inserted ? started(claim.claim_id, null) : null;
    };
    const first = await insert(this.#db);
    if (first) return first;

    return this.#db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('customer_id', '=', scope.customerId)
        .where('idempotency_key', '=', scope.key)
        .forUpdate()
        .executeTakeFirst();
      // Pruned between the two statements: claim it afresh, unless a concurrent request just did.
      if (!row) return insert(trx);
      const takeOver = async (reservationId: number | null): Promise<IdempotencyBegin> => {
        // A retry keeps the key's expiry and the reservation it names; an expired key starts afresh.
        const claim = reservationId === null ? fresh() : { ...fresh(), reservation_id: reservationId, expires_at: row.expires_at };
        await trx
          .updateTable('idempotency_keys')
          .set(claim)
          .where('customer_id', '=', scope.customerId)
          .where('idempotency_key', '=', scope.key)
          .execute();
        return started(claim.claim_id, reservationId);
      };
      // An expired key is free again: a new request, with no reservation of its own yet.
      if (new Date(row.expires_at) <= now) return takeOver(null);
      if (row.fingerprint !== fingerprint) return { kind: 'mismatch' };
      if (row.state === 'done' && row.response_status !== null) {
        return { kind: 'replay', response: { status: row.response_status, contentType: row.response_type ?? 'application/json', body: row.response_body ?? '' } };
      }
      if (new Date(row.locked_until) > now) return { kind: 'inProgress' };
      // Released after an answer that was not final, or its request died: the retry takes it over,
      // and with it the reservation that request created.
      return takeOver(row.reservation_id);
    });
  }

  async complete(claim: IdempotencyClaim, response: StoredResponse): Promise<void> {
    await this.#db
      .updateTable('idempotency_keys')
      .set({ state: 'done', claim_id: null, response_status: response.status, response_type: response.contentType, response_body: response.body })
      .where('customer_id', '=', claim.customerId)
      .where('idempotency_key', '=', claim.key)
      .where('claim_id', '=', claim.claimId)
      .execute();
  }

  async release(claim: IdempotencyClaim, now: Date): Promise<void> {
    // The row stays, with the reservation it names and its body's fingerprint: only its lock goes.
    await this.#db
      .updateTable('idempotency_keys')
      .set({ claim_id: null, locked_until: now })
      .where('customer_id', '=', claim.customerId)
      .where('idempotency_key', '=', claim.key)
      .where('claim_id', '=', claim.claimId)
      .execute();
  }

  async prune(now: Date, limit: number): Promise<number> {
    // In bounded batches, so a large backlog never holds one long delete.
    const result = await sql`DELETE FROM idempotency_keys WHERE ctid IN (
      SELECT ctid FROM idempotency_keys WHERE expires_at <= ${now} LIMIT ${limit})`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0);
  }
}
