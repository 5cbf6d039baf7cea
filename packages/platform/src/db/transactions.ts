import type { Kysely, Transaction } from 'kysely';
import type { TransactionRunner } from '../kernel/ports.ts';
import { outboxRowsAdded } from '../messaging/outbox.ts';

/**
 * The TransactionRunner port on Kysely: opens a transaction, hands the use case its unit of work
 * (repositories and outbox bound to that transaction), and after a commit that added outbox rows
 * calls `afterCommit` (the service signals its outbox relay): a transaction that added none gives
 * the relay nothing to publish.
 */
export class KyselyTransactionRunner<DB, TUnitOfWork> implements TransactionRunner<TUnitOfWork> {
  readonly #db: Kysely<DB>;
  readonly #unitOfWork: (trx: Transaction<DB>) => TUnitOfWork;
  readonly #afterCommit: () => void;

  constructor(db: Kysely<DB>, unitOfWork: (trx: Transaction<DB>) => TUnitOfWork, afterCommit: () => void = () => {}) {
    this.#db = db;
    this.#unitOfWork = unitOfWork;
    this.#afterCommit = afterCommit;
  }

  /**
   * A transaction PostgreSQL aborted as a deadlock victim (40P01) or a serialization failure
   * (40001) rolled back whole: it is run again, up to three times in all, since the work reads
   * everything it decides on inside the transaction. Other errors go to the caller at once.
   */
  async run<T>(work: (uow: TUnitOfWork) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let used: Transaction<DB> | undefined;
      try {
        const result = await this.#db.transaction().execute((trx) => {
          used = trx;
          return work(this.#unitOfWork(trx));
        });
        if (used !== undefined && outboxRowsAdded(used)) this.#afterCommit();
        return result;
      } catch (err) {
        if (attempt >= MAX_ATTEMPTS || !isTransientConflict(err)) throw err;
      }
    }
  }
}

const MAX_ATTEMPTS = 3;

/** SQLSTATE 40P01 (deadlock detected) or 40001 (serialization failure): the same work may succeed when run again. */
export function isTransientConflict(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}
