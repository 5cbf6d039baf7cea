import type { Kysely, Transaction } from 'kysely';
import type { TransactionRunner } from '../kernel/ports.ts';

/**
 * The TransactionRunner port on Kysely: opens a transaction, hands the use case its unit of work
 * (repositories and outbox bound to that transaction), and after a commit signals the outbox relay.
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
    const result = await this.#db.transaction().execute((trx) => work(this.#unitOfWork(trx)));
    this.#afterCommit();
    return result;
  }
}
