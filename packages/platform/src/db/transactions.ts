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

  async run<T>(work: (uow: TUnitOfWork) => Promise<T>): Promise<T> {
    let used: Transaction<DB> | undefined;
    const result = await this.#db.transaction().execute((trx) => {
      used = trx;
      return work(this.#unitOfWork(trx));
    });
    if (used !== undefined && outboxRowsAdded(used)) this.#afterCommit();
    return result;
  }
}
