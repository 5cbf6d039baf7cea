import type { Kysely } from 'kysely';
import type { AssignmentTables } from '@bstore/assignment';
import type { BookTables } from '@bstore/book';
import type { CustomerCenterTables } from '@bstore/customercenter';
import type { ReservationTables } from '@bstore/reservation';

/** What the invariants need of a read-model page. */
export interface PageRow {
  reservation_id: number;
  status: string;
  library_name: string | null;
}

export interface SystemDatabases {
  book: Kysely<BookTables>;
  reservation: Kysely<ReservationTables>;
  assignment: Kysely<AssignmentTables>;
  /** The read model's SQL database, or a reader of every page (the Redis read model, read through its API). */
  customercenter: Kysely<CustomerCenterTables> | (() => Promise<PageRow[]>);
}

export interface InvariantInput {
  /** Reservations that were answered 201: each must end bookReserved, or bookCanceled if in `canceled`. */
  acknowledged?: readonly number[];
  /** Reservations whose cancel was answered 202: each must end bookCanceled. */
  canceled?: readonly number[];
  /**
   * I7: each patron's Idempotency-Key placed at most one reservation that is not `rejected` (read
   * from `reservations.idempotency_key`; a rejected one held nothing, and a retry may place anew).
   */
  idempotencyKeys?: boolean;
  /** I8: the active limit in force (BSTORE_MAX_ACTIVE_RESERVATIONS); no patron may hold more copies. */
  maxHeldPerCustomer?: number;
}

/**
 * Checks invariants I1–I5 of the design (§8) and I6 (book's count of copies per patron), and I7–I8
 * when asked, over the four services' databases, once the system is quiet. Returns the violations
 * found, described in words; an empty list means all hold.
 */
export async function checkInvariants(dbs: SystemDatabases, input: InvariantInput = {}): Promise<string[]> {
  const violations: string[] = [];
  const books = await dbs.book.selectFrom('books').select(['book_id', 'quantity', 'copies']).execute();
  const holds = await dbs.book.selectFrom('holds').select(['reservation_id', 'book_id', 'customer_id', 'status']).execute();
  const customerCopies = await dbs.book.selectFrom('customer_copies').select(['customer_id', 'held']).execute();
  const reservations = await dbs.reservation
    .selectFrom('reservations')
    .select(['reservation_id', 'book_id', 'status', 'library_name'])
    .execute();
  const assignments = await dbs.assignment.selectFrom('assignments').select(['reservation_id', 'status']).execute();
  const pages =
    typeof dbs.customercenter === 'function'
      ? await dbs.customercenter()
      : await dbs.customercenter.selectFrom('reservation_pages').select(['reservation_id', 'status', 'library_name']).execute();

  // I1 no oversell, no leak.
  const heldByBook = new Map<number, number>();
  for (const h of holds) if (h.status === 'held') heldByBook.set(h.book_id, (heldByBook.get(h.book_id) ?? 0) + 1);
  for (const b of books) {
    const held = heldByBook.get(b.book_id) ?? 0;
    if (b.quantity < 0) violations.push(`I1: book ${b.book_id} has quantity ${b.quantity}`);
    if (b.quantity + held !== b.copies) violations.push(`I1: book ${b.book_id}: quantity ${b.quantity} + held ${held} != copies ${b.copies}`);
  }

  // I6 each patron's count of copies agrees with their holds (book refuses a hold past the limit by it).
  const heldByCustomer = new Map<string, number>();
  for (const h of holds) if (h.status === 'held') heldByCustomer.set(h.customer_id, (heldByCustomer.get(h.customer_id) ?? 0) + 1);
  const counted = new Map(customerCopies.map((c) => [c.customer_id, Number(c.held)]));
  for (const customer of new Set([...heldByCustomer.keys(), ...counted.keys()])) {
    const held = heldByCustomer.get(customer) ?? 0;
    const count = counted.get(customer) ?? 0;
    if (count !== held) violations.push(`I6: customer ${customer}: customer_copies.held is ${count} but ${held} holds are held`);
  }

  // I8 no patron holds more copies than the active limit.
  const limit = input.maxHeldPerCustomer;
  if (limit !== undefined) {
    for (const [customer, held] of heldByCustomer) if (held > limit) violations.push(`I8: customer ${customer} holds ${held} copies, more than the active limit ${limit}`);
  }

  // I2 agreement: active holds are exactly the reservations in bookReserveReq or bookReserved.
  const heldIds = new Set(holds.filter((h) => h.status === 'held').map((h) => h.reservation_id));
  const activeIds = new Set(reservations.filter((r) => r.status === 'bookReserveReq' || r.status === 'bookReserved').map((r) => r.reservation_id));
  for (const id of heldIds) if (!activeIds.has(id)) violations.push(`I2: hold of reservation ${id} is held but the reservation is not active`);
  for (const id of activeIds) if (!heldIds.has(id)) violations.push(`I2: reservation ${id} is active but holds no copy`);

  // I3 nothing acknowledged is lost.
  const byId = new Map(reservations.map((r) => [r.reservation_id, r]));
  const canceled = new Set(input.canceled ?? []);
  for (const id of input.acknowledged ?? []) {
    const status = byId.get(id)?.status;
    const expected = canceled.has(id) ? ['bookCanceled'] : ['bookReserved', 'bookCanceled'];
    if (!status || !expected.includes(status)) violations.push(`I3: acknowledged reservation ${id} ended ${status ?? 'missing'}, expected ${expected.join(' or ')}`);
  }
  for (const id of canceled) {
    const status = byId.get(id)?.status;
    if (status !== 'bookCanceled') violations.push(`I3: cancelled reservation ${id} ended ${status ?? 'missing'}`);
  }
  for (const r of reservations) {
    if (r.status === 'pending' || r.status === 'bookReserveReq' || r.status === 'bookCancel') {
      violations.push(`I3: reservation ${r.reservation_id} is still ${r.status} after the system went quiet`);
    }
  }

  // I4 the read model converges.
  const pageById = new Map(pages.map((p) => [p.reservation_id, p]));
  for (const r of reservations) {
    if (r.status === 'pending') continue;
    const page = pageById.get(r.reservation_id);
    if (!page) violations.push(`I4: reservation ${r.reservation_id} (${r.status}) has no page`);
    else if (page.status !== r.status || (page.library_name ?? null) !== (r.library_name ?? null)) {
      violations.push(`I4: page ${r.reservation_id} is ${page.status}/${page.library_name} but the reservation is ${r.status}/${r.library_name}`);
    }
  }
  for (const p of pages) if (!byId.has(p.reservation_id)) violations.push(`I4: page ${p.reservation_id} has no reservation`);

  // I5 effects once: one assignment row per reservation (unique), active only while reserved.
  const assignedIds = new Set(assignments.filter((a) => a.status === 'assigned').map((a) => a.reservation_id));
  if (assignments.length !== new Set(assignments.map((a) => a.reservation_id)).size) violations.push('I5: a reservation has two assignment rows');
  for (const r of reservations) {
    const assigned = assignedIds.has(r.reservation_id);
    if (r.status === 'bookReserved' && !assigned) violations.push(`I5: reservation ${r.reservation_id} is bookReserved without an active assignment`);
    if (r.status !== 'bookReserved' && assigned) violations.push(`I5: reservation ${r.reservation_id} is ${r.status} but still has an active assignment`);
  }

  // I7 one reservation per Idempotency-Key: keys are per customer; a rejected reservation held nothing.
  if (input.idempotencyKeys) {
    const keyed = await dbs.reservation
      .selectFrom('reservations')
      .select(['reservation_id', 'customer_id', 'status', 'idempotency_key'])
      .where('idempotency_key', 'is not', null)
      .where('status', '!=', 'rejected')
      .orderBy('reservation_id')
      .execute();
    const byKey = new Map<string, typeof keyed>();
    for (const r of keyed) {
      const group = JSON.stringify([r.customer_id, r.idempotency_key]);
      byKey.set(group, [...(byKey.get(group) ?? []), r]);
    }
    for (const group of byKey.values()) {
      const first = group[0];
      if (!first || group.length < 2) continue;
      violations.push(
        `I7: Idempotency-Key ${first.idempotency_key} of customer ${first.customer_id} placed ${group.length} reservations that are not rejected: ${group.map((r) => `reservation ${r.reservation_id} (${r.status})`).join(', ')}`,
      );
    }
  }
  return violations;
}
