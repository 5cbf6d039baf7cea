import type { Kysely, Selectable, Transaction } from 'kysely';
import { Assignment, type AssignmentProps, type NewAssignment } from '../../domain/assignment.ts';
import type { AssignmentQuery, AssignmentRecord, AssignmentRepository } from '../../application/ports.ts';
import type { AssignmentTables } from './schema.ts';

type Row = Selectable<AssignmentTables['assignments']>;

const columns = ['assignment_id', 'reservation_id', 'book_id', 'customer_id', 'library_id', 'library_name', 'status'] as const;

function toProps(row: Pick<Row, (typeof columns)[number]>): AssignmentProps {
  return {
    assignmentId: row.assignment_id,
    reservationId: row.reservation_id,
    bookId: row.book_id,
    customerId: row.customer_id,
    libraryId: row.library_id,
    libraryName: row.library_name,
    status: row.status,
  };
}

export class KyselyAssignmentRepository implements AssignmentRepository {
  readonly #db: Kysely<AssignmentTables> | Transaction<AssignmentTables>;

  constructor(db: Kysely<AssignmentTables> | Transaction<AssignmentTables>) {
    this.#db = db;
  }

  async insertIfAbsent(a: NewAssignment): Promise<AssignmentProps | null> {
    const row = await this.#db
      .insertInto('assignments')
      .values({
        reservation_id: a.reservationId,
        book_id: a.bookId,
        customer_id: a.customerId,
        library_id: a.libraryId,
        library_name: a.libraryName,
        status: a.status,
      })
      .onConflict((oc) => oc.column('reservation_id').doNothing())
      .returning(columns)
      .executeTakeFirst();
    return row ? toProps(row) : null;
  }

  find(reservationId: number): Promise<Assignment | null> {
    return this.#load(reservationId, false);
  }

  findForUpdate(reservationId: number): Promise<Assignment | null> {
    return this.#load(reservationId, true);
  }

  async save(assignment: Assignment): Promise<void> {
    await this.#db
      .updateTable('assignments')
      .set({ status: assignment.props.status, updated_at: new Date() })
      .where('assignment_id', '=', assignment.props.assignmentId)
      .execute();
  }

  async list(query: AssignmentQuery): Promise<{ items: AssignmentRecord[]; total: number }> {
    let base = this.#db.selectFrom('assignments');
    if (query.reservationId !== undefined) base = base.where('reservation_id', '=', query.reservationId);
    const [items, count] = await Promise.all([
      base.select([...columns, 'created_at']).orderBy('assignment_id').limit(query.limit).offset(query.offset).execute(),
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: items.map((r) => ({ ...toProps(r), createdAt: r.created_at })), total: Number(count.n) };
  }

  async #load(reservationId: number, lock: boolean): Promise<Assignment | null> {
    let query = this.#db.selectFrom('assignments').select(columns).where('reservation_id', '=', reservationId);
    if (lock) query = query.forUpdate();
    const row = await query.executeTakeFirst();
    return row ? Assignment.restore(toProps(row)) : null;
  }
}
