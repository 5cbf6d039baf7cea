import type { Transaction } from 'kysely';
import { KyselyOutbox } from '@bstore/platform';
import type { BookUnitOfWork } from '../../application/ports.ts';
import { KyselyBookRepository } from './book.repository.ts';
import { KyselyCustomerCopiesRepository } from './customer-copies.repository.ts';
import { KyselyHoldRepository } from './hold.repository.ts';
import type { BookTables } from './schema.ts';

export function bookUnitOfWork(trx: Transaction<BookTables>): BookUnitOfWork {
  return {
    books: new KyselyBookRepository(trx),
    holds: new KyselyHoldRepository(trx),
    customerCopies: new KyselyCustomerCopiesRepository(trx),
    outbox: new KyselyOutbox(trx),
  };
}
