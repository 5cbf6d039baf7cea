import { sql, type Kysely } from 'kysely';
import type { IdempotencyBegin, IdempotencyScope, IdempotencyStore, StoredResponse } from '../http/idempotency.ts';
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

/**
 * Idempotency keys in reservation's database. `begin` claims a key in one statement (INSERT ... ON
 * CONFLICT DO NOTHING); on a conflict it decides under the row's lock whether to replay, refuse or
 * take over, so two requests with one key never both run.
 */
export class KyselyIdempotencyStore implements IdempotencyStore {
  readonly #db: Kysely<ReservationTables>;
  readonly #options: IdempotencyStoreOptions;

  constructor(db: Kysely<ReservationTables>, options: IdempotencyStoreOptions) {
    this.#db = db;
    this.#options = options;
  }

  async begin(scope: IdempotencyScope, fingerprint: string, now: Date): Promise<IdempotencyBegin> {
    const claim = {
      fingerprint,
      state: 'running' as const,
      response_status: null,
      response_type: null,
      response_body: null,
      locked_until: new Date(now.getTime() + this.#options.lockMs),
      expires_at: new Date(now.getTime() + this.#options.ttlMs),
    };
    const inserted = await this.#db
      .insertInto('idempotency_keys')
      .values({ customer_id: scope.customerId, idempotency_key: scope.key, ...claim })
      .onConflict((oc) => oc.columns(['customer_id', 'idempotency_key']).doNothing())
      .returning('customer_id')
      .executeTakeFirst();
    if (inserted) return { kind: 'started' };

    return this.#db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('customer_id', '=', scope.customerId)
        .where('idempotency_key', '=', scope.key)
        .forUpdate()
        .executeTakeFirst();
      const takeOver = async (): Promise<IdempotencyBegin> => {
        await trx
          .updateTable('idempotency_keys')
          .set(claim)
          .where('customer_id', '=', scope.customerId)
          .where('idempotency_key', '=', scope.key)
          .execute();
        return { kind: 'started' };
      };
      // Released (a 5xx answer) or pruned between the two statements: claim it afresh.
      if (!row) {
        await trx.insertInto('idempotency_keys').values({ customer_id: scope.customerId, idempotency_key: scope.key, ...claim }).execute();
        return { kind: 'started' };
      }
      if (new Date(row.expires_at) <= now) return takeOver();
      if (row.fingerprint !== fingerprint) return { kind: 'mismatch' };
      if (row.state === 'done' && row.response_status !== null) {
        return { kind: 'replay', response: { status: row.response_status, contentType: row.response_type ?? 'application/json', body: row.response_body ?? '' } };
      }
      if (new Date(row.locked_until) > now) return { kind: 'inProgress' };
      return takeOver();
    });
  }

  async complete(scope: IdempotencyScope, response: StoredResponse): Promise<void> {
    await this.#db
      .updateTable('idempotency_keys')
      .set({ state: 'done', response_status: response.status, response_type: response.contentType, response_body: response.body })
      .where('customer_id', '=', scope.customerId)
      .where('idempotency_key', '=', scope.key)
      .execute();
  }

  async release(scope: IdempotencyScope): Promise<void> {
    await this.#db.deleteFrom('idempotency_keys').where('customer_id', '=', scope.customerId).where('idempotency_key', '=', scope.key).where('state', '=', 'running').execute();
  }

  async prune(now: Date, limit: number): Promise<number> {
    // In bounded batches, so a large backlog never holds one long delete.
    const result = await sql`DELETE FROM idempotency_keys WHERE ctid IN (
      SELECT ctid FROM idempotency_keys WHERE expires_at <= ${now} LIMIT ${limit})`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0);
  }
}
