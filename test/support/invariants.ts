import { sql, type Kysely } from 'kysely';
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
  /**
   * Reservations that were answered 201: each must end in a status its life can reach from there
   * (I3): bookReserved, bookLoaned, bookReturned, bookExpired, bookCanceled, and bookWaiting only if
   * it is in `acknowledgedWaiting`; narrowed by `canceled`, `checkedOut`, `returned` and `asked`.
   */
  acknowledged?: readonly number[];
  /** The 201s whose answer said bookWaiting (in the book's line): only these may still wait once quiet. */
  acknowledgedWaiting?: readonly number[];
  /** Reservations whose cancel was answered 202: each must end bookCanceled. */
  canceled?: readonly number[];
  /** Reservations whose check-out (PATCH bookLoaned) was answered 200: each must end bookLoaned or bookReturned. */
  checkedOut?: readonly number[];
  /** Reservations whose check-in (PATCH bookReturned) was answered 200: each must end bookReturned. */
  returned?: readonly number[];
  /**
   * Every reservation a client asked to cancel, check out or check in, whatever the answer (lost
   * ones included). Given when the test's clients are the only ones: then only these may end
   * bookCanceled, bookLoaned and bookReturned respectively (nothing changes without being asked).
   */
  asked?: { cancel: readonly number[]; checkOut: readonly number[]; checkIn: readonly number[] };
  /**
   * I7: each patron's Idempotency-Key placed at most one reservation that is not `rejected` (read
   * from `reservations.idempotency_key`; a rejected one held nothing, and a retry may place anew).
   */
  idempotencyKeys?: boolean;
  /** I8: the active limit in force (BSTORE_MAX_ACTIVE_RESERVATIONS); no patron may hold or wait for more copies. */
  maxHeldPerCustomer?: number;
  /**
   * I11: check each reservation's history of events (reservation's outbox) and book's grants
   * (CopyGranted in book's outbox): one ending per reservation, the one its status says. Only for
   * rows younger than HISTORY_WINDOW_MS, since sent outbox rows are pruned after an hour.
   */
  eventHistory?: boolean;
  /**
   * I3, with deadlines of seconds: a reservation awaiting pickup expires once its deadline has
   * passed, so none is still bookReserved this many ms after its pickupBy (the deadline sweep's
   * interval, with room to spare). Without it a copy may wait on the shelf for days, as it should.
   */
  expiredWithinMs?: number;
}

/** What a reservation in each status holds at book once quiet ('none': no hold row). */
const HOLD_OF: Readonly<Record<string, readonly string[]>> = {
  bookWaiting: ['waiting'],
  bookReserveReq: ['held'],
  bookReserved: ['held'],
  bookLoaned: ['loaned'],
  // Ended after holding a copy: it went back (to stock or to the next in line).
  bookReturned: ['released'],
  bookExpired: ['released'],
  // Ended: no copy, no place in line. `voided` when the end reached book before any hold; no row at all is
  // tolerated for a reservation refused before book took anything.
  bookCanceled: ['released', 'voided', 'none'],
  rejected: ['released', 'voided', 'none'],
  bookOutOfStock: ['released', 'voided', 'none'],
};
/** Which reservation statuses a hold in each status may belong to (the other direction of I2). */
const RESERVATIONS_OF: Readonly<Record<string, readonly string[]>> = {
  waiting: ['bookWaiting'],
  held: ['bookReserveReq', 'bookReserved'],
  loaned: ['bookLoaned'],
};

/** Sent outbox rows are pruned an hour after they were sent (ADR 0014): event history is checked for younger rows only. */
export const HISTORY_WINDOW_MS = 50 * 60_000;

/** The ending events of a reservation's life, of which it has at most one, and the statuses each leads to. */
const ENDING_OF: Readonly<Record<string, string>> = {
  bookCancel: 'ReservationCancelRequested',
  bookCanceled: 'ReservationCancelRequested',
  rejected: 'ReservationRejected',
  bookOutOfStock: 'ReservationRejected',
  bookExpired: 'ReservationExpired',
  bookReturned: 'ReservationReturned',
};
const ENDING_EVENTS = ['ReservationCancelRequested', 'ReservationRejected', 'ReservationExpired', 'ReservationReturned'];

const ticket = (t: string | number | null): number | null => (t === null ? null : Number(t));

/** The reservation an event is about: the envelope's subject (a JSON column, parsed or not by the driver). */
function reservationOf(envelope: unknown): number {
  const e = (typeof envelope === 'string' ? JSON.parse(envelope) : envelope) as { subject?: unknown };
  return Number(e.subject);
}

/**
 * Checks the invariants over the four services' databases once the system is quiet; returns the
 * violations found, in words (an empty list means all hold):
 *
 * - I1 copies conserved, per title: quantity + held + loaned = copies at book, none negative.
 * - I2 one state, agreed: each reservation's status and its hold at book agree (bookWaiting:
 *   waiting; bookReserveReq/bookReserved: held; bookLoaned: loaned; bookReturned/bookExpired:
 *   released; bookCanceled/rejected/bookOutOfStock: released, voided or none), and each waiting,
 *   held or loaned hold belongs to a reservation in a matching status — so no copy is held, lent or
 *   waited for on behalf of an ended reservation; a ticket both services know is the same.
 * - I3 nothing acknowledged lost, and nothing left half-way (pending, bookReserveReq, bookCancel;
 *   with `expiredWithinMs`, nor bookReserved long past its pickup deadline).
 * - I4 the read model converges (each page's status and library are its reservation's).
 * - I5 effects once: one assignment row per reservation; `assigned` while bookReserved; `closed`
 *   for a reservation that was lent, returned or expired (the copy left the hold shelf); none
 *   active for any other status.
 * - I6 book's count per patron (customer_copies) equals their held + waiting holds.
 * - I7 (asked) one reservation per Idempotency-Key; I8 (asked) nobody holds or waits for more than the limit.
 * - I9 no copy sits on the shelf while someone waits: quantity > 0 implies no waiting hold of the title.
 * - I10 FIFO (see fifoViolations).
 * - I11 (asked) one ending per reservation, the one its status says, from the events written.
 */
export async function checkInvariants(dbs: SystemDatabases, input: InvariantInput = {}): Promise<string[]> {
  const violations: string[] = [];
  const books = await dbs.book.selectFrom('books').select(['book_id', 'quantity', 'copies']).execute();
  const holdRows = await dbs.book.selectFrom('holds').select(['reservation_id', 'book_id', 'customer_id', 'status', 'queue_ticket', 'created_at']).execute();
  const holds = holdRows.map((h) => ({ ...h, queue_ticket: ticket(h.queue_ticket) }));
  // Outbox rows name the bus subject; the reservation is the envelope's subject.
  const grantRows = (await dbs.book.selectFrom('outbox').select(['envelope']).where('type', '=', 'CopyGranted').execute()).map((e) => ({ reservationId: reservationOf(e.envelope) }));
  const customerCopies = await dbs.book.selectFrom('customer_copies').select(['customer_id', 'held']).execute();
  const reservations = (
    await dbs.reservation.selectFrom('reservations').select(['reservation_id', 'book_id', 'status', 'library_name', 'queue_ticket', 'pickup_by', 'created_at']).execute()
  ).map((r) => ({ ...r, queue_ticket: ticket(r.queue_ticket) }));
  const assignments = await dbs.assignment.selectFrom('assignments').select(['reservation_id', 'status']).execute();
  const pages =
    typeof dbs.customercenter === 'function'
      ? await dbs.customercenter()
      : await dbs.customercenter.selectFrom('reservation_pages').select(['reservation_id', 'status', 'library_name']).execute();

  // I1 copies conserved: quantity + held + loaned = copies, none negative.
  const count = new Map<string, number>();
  const bump = (key: string) => count.set(key, (count.get(key) ?? 0) + 1);
  for (const h of holds) bump(`${h.book_id}:${h.status}`);
  for (const b of books) {
    const held = count.get(`${b.book_id}:held`) ?? 0;
    const loaned = count.get(`${b.book_id}:loaned`) ?? 0;
    if (b.quantity < 0) violations.push(`I1: book ${b.book_id} has quantity ${b.quantity}`);
    if (b.copies < 0) violations.push(`I1: book ${b.book_id} has ${b.copies} copies`);
    if (b.quantity + held + loaned !== b.copies) violations.push(`I1: book ${b.book_id}: quantity ${b.quantity} + held ${held} + loaned ${loaned} != copies ${b.copies}`);
    // I9 a free copy goes to the line at once: nobody waits while copies are on the shelf.
    const waiting = count.get(`${b.book_id}:waiting`) ?? 0;
    if (b.quantity > 0 && waiting > 0) violations.push(`I9: book ${b.book_id} has ${b.quantity} copies available while ${waiting} reservations wait for it`);
  }

  // I6 each patron's count of copies agrees with their holds (held and waiting count; loans do not).
  const countedByCustomer = new Map<string, number>();
  for (const h of holds) if (h.status === 'held' || h.status === 'waiting') countedByCustomer.set(h.customer_id, (countedByCustomer.get(h.customer_id) ?? 0) + 1);
  const counted = new Map(customerCopies.map((c) => [c.customer_id, Number(c.held)]));
  for (const customer of new Set([...countedByCustomer.keys(), ...counted.keys()])) {
    const holding = countedByCustomer.get(customer) ?? 0;
    const n = counted.get(customer) ?? 0;
    if (n !== holding) violations.push(`I6: customer ${customer}: customer_copies.held is ${n} but ${holding} holds are held or waiting`);
  }

  // I8 no patron holds or waits for more copies than the active limit.
  const limit = input.maxHeldPerCustomer;
  if (limit !== undefined) {
    for (const [customer, n] of countedByCustomer) if (n > limit) violations.push(`I8: customer ${customer} holds or waits for ${n} copies, more than the active limit ${limit}`);
  }

  // I2 one state, agreed between reservation and book, both ways.
  const holdById = new Map(holds.map((h) => [h.reservation_id, h]));
  const byId = new Map(reservations.map((r) => [r.reservation_id, r]));
  for (const r of reservations) {
    const allowed = HOLD_OF[r.status];
    if (!allowed) continue; // pending, bookCancel: in flight (I3 says if they stay)
    const h = holdById.get(r.reservation_id);
    const status = h?.status ?? 'none';
    if (!allowed.includes(status)) violations.push(`I2: reservation ${r.reservation_id} is ${r.status} but its hold at book is ${status}, expected ${allowed.join(' or ')}`);
    if (h && h.book_id !== r.book_id) violations.push(`I2: reservation ${r.reservation_id} is of book ${r.book_id} but its hold is of book ${h.book_id}`);
    if (h && r.queue_ticket !== null && h.queue_ticket !== r.queue_ticket) violations.push(`I2: reservation ${r.reservation_id} has ticket ${r.queue_ticket} but its hold has ${h.queue_ticket}`);
  }
  for (const h of holds) {
    const owners = RESERVATIONS_OF[h.status];
    if (!owners) continue;
    // A mismatch with an existing reservation is reported above, from the reservation's side.
    if (!byId.has(h.reservation_id)) violations.push(`I2: hold of reservation ${h.reservation_id} is ${h.status} but there is no such reservation (expected one ${owners.join(' or ')})`);
  }

  // I3 nothing acknowledged is lost, and nothing changes without being asked.
  const canceled = new Set(input.canceled ?? []);
  const checkedOut = new Set(input.checkedOut ?? []);
  const returned = new Set(input.returned ?? []);
  const ackWaiting = new Set(input.acknowledgedWaiting ?? []);
  for (const id of input.acknowledged ?? []) {
    const status = byId.get(id)?.status;
    const expected = returned.has(id)
      ? ['bookReturned']
      : checkedOut.has(id)
        ? ['bookLoaned', 'bookReturned']
        : canceled.has(id)
          ? ['bookCanceled']
          : ['bookReserved', 'bookCanceled', 'bookLoaned', 'bookReturned', 'bookExpired', ...(ackWaiting.has(id) ? ['bookWaiting'] : [])];
    if (!status || !expected.includes(status)) violations.push(`I3: acknowledged reservation ${id} ended ${status ?? 'missing'}, expected ${expected.join(' or ')}`);
  }
  for (const id of canceled) {
    const status = byId.get(id)?.status;
    if (status !== 'bookCanceled') violations.push(`I3: cancelled reservation ${id} ended ${status ?? 'missing'}`);
  }
  for (const id of checkedOut) {
    const status = byId.get(id)?.status;
    if (status !== 'bookLoaned' && status !== 'bookReturned') violations.push(`I3: checked-out reservation ${id} ended ${status ?? 'missing'}, expected bookLoaned or bookReturned`);
  }
  for (const id of returned) {
    const status = byId.get(id)?.status;
    if (status !== 'bookReturned') violations.push(`I3: checked-in reservation ${id} ended ${status ?? 'missing'}, expected bookReturned`);
  }
  if (input.asked) {
    const asked = { bookCanceled: new Set(input.asked.cancel), bookLoaned: new Set(input.asked.checkOut), bookReturned: new Set(input.asked.checkIn) };
    for (const r of reservations) {
      const by = asked[r.status as keyof typeof asked];
      if (by && !by.has(r.reservation_id)) violations.push(`I3: reservation ${r.reservation_id} is ${r.status} but no client asked for that`);
      // A loan that came back was lent first.
      if (r.status === 'bookReturned' && !asked.bookLoaned.has(r.reservation_id)) violations.push(`I3: reservation ${r.reservation_id} is bookReturned but was never checked out`);
    }
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

  // I5 effects once: one assignment row per reservation (unique), active while the copy waits on the
  // hold shelf. A reservation lent, returned or expired was assigned a library and keeps it, but its
  // row is `closed` (assignment heard of the check-out or the expiry; it no longer counts in the
  // branch's load).
  const assignmentOf = new Map<number, string>(assignments.map((a) => [a.reservation_id, a.status]));
  if (assignments.length !== assignmentOf.size) violations.push('I5: a reservation has two assignment rows');
  for (const r of reservations) {
    const a = assignmentOf.get(r.reservation_id);
    if (r.status === 'bookReserved' && a !== 'assigned') violations.push(`I5: reservation ${r.reservation_id} is bookReserved without an active assignment (${a ?? 'no row'})`);
    else if ((r.status === 'bookLoaned' || r.status === 'bookReturned' || r.status === 'bookExpired') && a !== 'closed') {
      violations.push(`I5: reservation ${r.reservation_id} is ${r.status} but its assignment is ${a ?? 'missing'}, expected closed`);
    } else if (r.status !== 'bookReserved' && r.status !== 'bookLoaned' && r.status !== 'bookReturned' && r.status !== 'bookExpired' && a === 'assigned') {
      violations.push(`I5: reservation ${r.reservation_id} is ${r.status} but still has an active assignment`);
    }
  }

  // I10 FIFO, and each grant once.
  const granted = new Map<number, number>();
  for (const g of grantRows) granted.set(g.reservationId, (granted.get(g.reservationId) ?? 0) + 1);
  violations.push(...fifoViolations(holds, new Set(granted.keys())));
  for (const [id, n] of granted) {
    const h = holdById.get(id);
    if (n > 1) violations.push(`I10: book granted a copy to reservation ${id} ${n} times`);
    if (!h || h.queue_ticket === null || h.status === 'waiting') violations.push(`I10: book granted a copy to reservation ${id}, whose hold is ${h ? `${h.status} with ticket ${h.queue_ticket}` : 'missing'}`);
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

  // I3 nothing left half-way: what is not picked up by its deadline expires.
  if (input.expiredWithinMs !== undefined) {
    const now = Date.now();
    for (const r of reservations) {
      if (r.status !== 'bookReserved') continue;
      if (r.pickup_by === null) violations.push(`I3: reservation ${r.reservation_id} awaits pickup without a deadline`);
      else if (new Date(r.pickup_by).getTime() + input.expiredWithinMs < now) {
        violations.push(`I3: reservation ${r.reservation_id} is still bookReserved ${((now - new Date(r.pickup_by).getTime()) / 1000).toFixed(1)} s after its pickup deadline`);
      }
    }
  }

  // I11 one ending per reservation, the one its status says, from the events reservation and book wrote.
  if (input.eventHistory) {
    const since = Date.now() - HISTORY_WINDOW_MS;
    const events = await dbs.reservation
      .selectFrom('outbox')
      .select(['type', 'envelope'])
      .where('type', 'in', [...ENDING_EVENTS, 'ReservationCheckedOut', 'ReservationWaitlisted', 'ReservationRequested'])
      .execute();
    const history = new Map<number, string[]>();
    for (const e of events) {
      const id = reservationOf(e.envelope);
      history.set(id, [...(history.get(id) ?? []), e.type]);
    }
    for (const r of reservations) {
      if (new Date(r.created_at).getTime() < since) continue;
      const written = history.get(r.reservation_id) ?? [];
      const times = (type: string) => written.filter((t) => t === type).length;
      const endings = written.filter((t) => ENDING_EVENTS.includes(t));
      const where = `reservation ${r.reservation_id} (${r.status}; events: ${written.join(', ') || 'none'})`;
      if (endings.length > 1) violations.push(`I11: ${where} ended more than once`);
      for (const type of ['ReservationCheckedOut', 'ReservationWaitlisted', 'ReservationRequested']) if (times(type) > 1) violations.push(`I11: ${where} has ${type} ${times(type)} times`);
      const ending = ENDING_OF[r.status];
      if (ending ? endings.length !== 1 || endings[0] !== ending : endings.length > 0) violations.push(`I11: ${where}: its ending event should be ${ending ?? 'none yet'}`);
      const lent = r.status === 'bookLoaned' || r.status === 'bookReturned';
      if (lent !== times('ReservationCheckedOut') > 0) violations.push(`I11: ${where}: ${lent ? 'lent without' : 'not lent, yet has'} ReservationCheckedOut`);
      const hadCopy = lent || r.status === 'bookReserveReq' || r.status === 'bookReserved' || r.status === 'bookExpired';
      if (hadCopy && times('ReservationRequested') === 0) violations.push(`I11: ${where} had a copy without ReservationRequested`);
      if (r.status === 'bookWaiting' && times('ReservationWaitlisted') === 0) violations.push(`I11: ${where} waits without ReservationWaitlisted`);
    }
    // Every hold that left the line for a copy was granted by a CopyGranted, written with the grant.
    for (const h of holds) {
      if (h.queue_ticket === null || new Date(h.created_at).getTime() < since) continue;
      if ((h.status === 'held' || h.status === 'loaned') && !granted.has(h.reservation_id)) {
        violations.push(`I11: hold of reservation ${h.reservation_id} waited (ticket ${h.queue_ticket}) and is ${h.status}, but book wrote no CopyGranted for it`);
      }
    }
  }
  return violations;
}

export interface QueuedHold {
  reservation_id: number;
  book_id: number;
  status: string;
  queue_ticket: number | null;
}

/**
 * I10 FIFO, as checkable from one state of book's holds: for each title, every hold that was
 * granted a copy after waiting (it has a queue ticket and is held or loaned — only a grant turns a
 * waiting hold into a held one — or book's outbox has a CopyGranted for it) has a smaller ticket
 * than every hold of that title still waiting.
 *
 * Why that is FIFO: tickets of one title are drawn under the title's row lock, so a smaller ticket
 * joined the line (committed) before a larger one was even drawn; and a waiting hold only ever
 * leaves the line (granted, or released), never comes back. So a hold still waiting with a smaller
 * ticket than a granted one was waiting when that grant happened: a newer reservation got the copy
 * ahead of an older one. (An older one that left the line before the grant is no longer waiting,
 * and not counted.) The check holds at any moment, not only once quiet: the chaos run also applies
 * it to snapshots of book taken while the load runs (bookSnapshotViolations).
 */
export function fifoViolations(holds: readonly QueuedHold[], grantedIds: ReadonlySet<number>): string[] {
  const firstWaiting = new Map<number, QueuedHold>();
  for (const h of holds) {
    if (h.status !== 'waiting' || h.queue_ticket === null) continue;
    const seen = firstWaiting.get(h.book_id);
    if (!seen || (seen.queue_ticket ?? 0) > h.queue_ticket) firstWaiting.set(h.book_id, h);
  }
  const violations: string[] = [];
  for (const h of holds) {
    if (h.queue_ticket === null || h.status === 'waiting') continue;
    const wasGranted = h.status === 'held' || h.status === 'loaned' || grantedIds.has(h.reservation_id);
    const first = firstWaiting.get(h.book_id);
    if (wasGranted && first && (first.queue_ticket ?? 0) < h.queue_ticket) {
      violations.push(
        `I10: book ${h.book_id} granted a copy to reservation ${h.reservation_id} (ticket ${h.queue_ticket}, now ${h.status}) while reservation ${first.reservation_id} (ticket ${first.queue_ticket}) waited before it and still waits`,
      );
    }
  }
  return violations;
}

/**
 * I1, I9 and I10 on one snapshot of book, taken while the system runs (one SQL statement sees one
 * committed state): every transaction that moves a copy or a place in line keeps them, so they hold
 * at any moment, not only once quiet. Returns the violations found, in words.
 */
export async function bookSnapshotViolations(db: Kysely<BookTables>): Promise<string[]> {
  const { rows } = await sql<{
    book_id: number;
    quantity: number;
    copies: number;
    held: string | number;
    loaned: string | number;
    waiting: string | number;
    holds: { reservation_id: number; status: string; queue_ticket: string | number | null; granted: boolean }[] | null;
  }>`
    WITH granted AS (SELECT DISTINCT envelope->>'subject' AS subject FROM outbox WHERE type = 'CopyGranted'),
    h AS (
      SELECT holds.book_id, holds.reservation_id, holds.status, holds.queue_ticket, granted.subject IS NOT NULL AS granted
      FROM holds LEFT JOIN granted ON granted.subject = holds.reservation_id::text
    ),
    per_book AS (
      SELECT b.book_id, b.quantity, b.copies,
        count(h.reservation_id) FILTER (WHERE h.status = 'held') AS held,
        count(h.reservation_id) FILTER (WHERE h.status = 'loaned') AS loaned,
        count(h.reservation_id) FILTER (WHERE h.status = 'waiting') AS waiting,
        min(h.queue_ticket) FILTER (WHERE h.status = 'waiting') AS first_waiting,
        max(h.queue_ticket) FILTER (WHERE h.queue_ticket IS NOT NULL AND (h.status IN ('held', 'loaned') OR h.granted)) AS last_granted
      FROM books b LEFT JOIN h ON h.book_id = b.book_id
      GROUP BY b.book_id, b.quantity, b.copies
    )
    SELECT p.book_id, p.quantity, p.copies, p.held, p.loaned, p.waiting,
      (SELECT json_agg(json_build_object('reservation_id', h.reservation_id, 'status', h.status, 'queue_ticket', h.queue_ticket, 'granted', h.granted))
         FROM h WHERE h.book_id = p.book_id AND h.queue_ticket IS NOT NULL) AS holds
    FROM per_book p
    WHERE p.quantity < 0 OR p.copies < 0 OR p.quantity + p.held + p.loaned <> p.copies
       OR (p.quantity > 0 AND p.waiting > 0) OR p.last_granted > p.first_waiting
  `.execute(db);
  const violations: string[] = [];
  for (const b of rows) {
    const [held, loaned, waiting] = [Number(b.held), Number(b.loaned), Number(b.waiting)];
    if (b.quantity < 0 || b.copies < 0 || b.quantity + held + loaned !== b.copies) {
      violations.push(`I1: book ${b.book_id}: quantity ${b.quantity} + held ${held} + loaned ${loaned} != copies ${b.copies} (or negative)`);
    }
    if (b.quantity > 0 && waiting > 0) violations.push(`I9: book ${b.book_id} has ${b.quantity} copies available while ${waiting} reservations wait for it`);
    const queued = (b.holds ?? []).map((h) => ({ ...h, book_id: b.book_id, queue_ticket: ticket(h.queue_ticket) }));
    violations.push(...fifoViolations(queued, new Set(queued.filter((h) => h.granted).map((h) => h.reservation_id))));
  }
  return violations;
}
