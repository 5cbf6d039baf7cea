import type { Transaction } from 'kysely';
import { KyselyOutbox } from '@bstore/platform';
import type { AssignmentUnitOfWork } from '../../application/ports.ts';
import { KyselyAssignmentRepository } from './assignment.repository.ts';
import { KyselyLibraryRepository } from './library.repository.ts';
import type { AssignmentTables } from './schema.ts';

export function assignmentUnitOfWork(trx: Transaction<AssignmentTables>): AssignmentUnitOfWork {
  return { assignments: new KyselyAssignmentRepository(trx), libraries: new KyselyLibraryRepository(trx), outbox: new KyselyOutbox(trx) };
}
