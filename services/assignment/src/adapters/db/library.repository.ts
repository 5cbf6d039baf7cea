import type { Kysely, Transaction } from 'kysely';
import type { LibraryProps } from '../../domain/library.ts';
import type { LibraryLoad } from '../../domain/library-assignment.policy.ts';
import type { LibraryRepository } from '../../application/ports.ts';
import type { AssignmentTables } from './schema.ts';

export class KyselyLibraryRepository implements LibraryRepository {
  readonly #db: Kysely<AssignmentTables> | Transaction<AssignmentTables>;

  constructor(db: Kysely<AssignmentTables> | Transaction<AssignmentTables>) {
    this.#db = db;
  }

  async insertIfAbsent(library: Omit<LibraryProps, 'libraryId'>): Promise<LibraryProps | null> {
    const row = await this.#db
      .insertInto('libraries')
      .values({ name: library.name, address: library.address })
      .onConflict((oc) => oc.column('name').doNothing())
      .returning(['library_id', 'name', 'address'])
      .executeTakeFirst();
    return row ? { libraryId: row.library_id, name: row.name, address: row.address } : null;
  }

  async listWithLoad(): Promise<LibraryLoad[]> {
    const rows = await this.#db
      .selectFrom('libraries as l')
      .leftJoin('assignments as a', (join) => join.onRef('a.library_id', '=', 'l.library_id').on('a.status', '=', 'assigned'))
      .select((eb) => ['l.library_id', 'l.name', 'l.address', eb.fn.count<string>('a.assignment_id').as('active')])
      .groupBy(['l.library_id', 'l.name', 'l.address'])
      .orderBy('l.library_id')
      .execute();
    return rows.map((r) => ({ library: { libraryId: r.library_id, name: r.name, address: r.address }, activeAssignments: Number(r.active) }));
  }
}
