import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope, sourceOf, type EventEnvelope } from '@bstore/contracts';
import type { Kysely } from 'kysely';
import { EmbeddedBus, type MessagingTables, type ServiceRuntime } from '@bstore/platform';
import { createAssignmentService, type AssignmentService, type AssignmentTables } from '@bstore/assignment';
import { createBookService, type BookService, type BookTables } from '@bstore/book';
import { createCustomerCenterService, type CustomerCenterService, type CustomerCenterTables } from '@bstore/customercenter';
import { createReservationService, type BookClient, type ReservationService, type ReservationTables } from '@bstore/reservation';
import { createNotificationService, type NotificationService, type NotificationTables } from '@bstore/notification';
import { BusDriver } from './support/bus-driver.ts';
import { testLogger } from './support/harness.ts';
import { databaseKinds, memoryDatabase, type MakeDatabase, type TestDatabase } from './support/postgres.ts';
import { as, asStaff, testAuth } from './support/auth.ts';

/*
 * Events are NOT delivered in the order they were written (ADR 0005): two relays in two replicas
 * publish interleaved batches (FOR UPDATE SKIP LOCKED), a row whose publish failed goes out after
 * later rows of another replica, `created_at` is its transaction's start (a transaction that began
 * earlier can commit later), and JetStream redelivers a nak'd event after the ones behind it.
 *
 * So every consumer must reach the same end state whatever the order of delivery. This file
 * checks it for each consuming service: for every history of one reservation that the saga can
 * produce, it delivers the history's events in every order the saga allows (and each order once
 * more with one event delivered twice), each time to a fresh reservation, and compares the end
 * state with the one of the in-order delivery.
 *
 * A NEW CONSUMER, OR A NEW EVENT TYPE AN EXISTING CONSUMER HANDLES, MUST BE ADDED HERE: the
 * "coverage" tests at the bottom fail until it is.
 *
 * The end state of a run has two parts:
 * - `effect`: what the rest of the saga and the patron depend on (stock, copies held, whether a
 *   library is held, the reservation's status, the page). It is the same in every order.
 * - `record`: how the consumer got there (the row's status, the events it wrote to its outbox, the
 *   answer to a call). It is the same in every order, except where a history declares
 *   `overtaken`: an event that overtakes another is answered by a tombstone or a voided hold, so
 *   the effect the late event would have made (and the event announcing it) never happens, instead
 *   of happening and being undone. Those orders are pinned exactly below.
 */

/** One thing that happens to a reservation: an event delivered to the consumer, or a call to its service. */
interface Step<Run> {
  /** The event type, or the name of the call ('hold', 'cancel'). Unique within a history. */
  readonly name: string;
  /** An event: built once per run, so that its duplicate delivery carries the same id. */
  readonly event?: (run: Run) => EventEnvelope;
  readonly call?: (run: Run) => Promise<void>;
}

/** Two steps the saga never reverses, and why. */
interface Causal {
  readonly before: string;
  readonly after: string;
  readonly why: string;
}

interface EndState<Effect, Rec> {
  readonly effect: Effect;
  readonly record: Rec;
}

/** What the saga can do to one reservation, as one consumer sees it. */
interface History<Run, Effect, Rec> {
  readonly name: string;
  /** In the order the saga writes them: the in-order delivery. */
  readonly steps: readonly Step<Run>[];
  /** Orders that cannot happen in the saga are left out, each for the reason given. */
  readonly causal?: readonly Causal[];
  /** How many orders are left to check (all permutations when nothing is causal). */
  readonly orders: number;
  /** The end state of the in-order delivery. */
  readonly inOrder: EndState<Effect, Rec>;
  /** When `first` comes before `then`, the record is this one instead (the effect is the same). */
  readonly overtaken?: { readonly first: string; readonly then: string; readonly record: Rec; readonly why: string };
}

/** A consuming service under test: one instance serves every run, each run on a fresh reservation. */
interface ConsumerUnderTest<Run, Effect, Rec> {
  /** Publishes the event on the bus the service consumes from; how its consumer ended that delivery. */
  deliver(envelope: EventEnvelope): Promise<string>;
  begin(): Promise<Run>;
  end(run: Run): Promise<EndState<Effect, Rec>>;
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

/** Delivers the steps in this order to a fresh reservation; `duplicate` names an event delivered once more at the end. */
async function play<Run, Effect, Rec>(consumer: ConsumerUnderTest<Run, Effect, Rec>, order: readonly Step<Run>[], label: string, duplicate?: string): Promise<EndState<Effect, Rec>> {
  const run = await consumer.begin();
  const delivered = new Map<string, EventEnvelope>();
  for (const step of order) {
    if (step.event) {
      const envelope = step.event(run);
      delivered.set(step.name, envelope);
      // Handled at the first delivery: a handler that failed here would rely on a redelivery to put it in order.
      expect(await consumer.deliver(envelope), `${label}: ${step.name}`).toBe('handled');
    } else {
      await step.call!(run);
    }
  }
  if (duplicate !== undefined) {
    // Redelivered by the bus: the service's inbox recognises it.
    expect(await consumer.deliver(delivered.get(duplicate)!), `${label}: ${duplicate} again`).toBe('duplicate');
  }
  return consumer.end(run);
}

/** Checks one history in every order the saga allows, each also with one duplicate delivery. */
async function checkEveryOrder<Run, Effect, Rec>(consumer: ConsumerUnderTest<Run, Effect, Rec>, history: History<Run, Effect, Rec>): Promise<void> {
  const names = history.steps.map((s) => s.name);
  expect(new Set(names).size, `${history.name}: step names are unique`).toBe(names.length);
  for (const c of history.causal ?? []) expect(names, `${history.name}: causal ${c.before} > ${c.after}`).toEqual(expect.arrayContaining([c.before, c.after]));
  if (history.overtaken) expect(names).toEqual(expect.arrayContaining([history.overtaken.first, history.overtaken.then]));

  const possible = (order: string[]) => (history.causal ?? []).every((c) => order.indexOf(c.before) < order.indexOf(c.after));
  const overtaken = (order: string[]) => history.overtaken !== undefined && order.indexOf(history.overtaken.first) < order.indexOf(history.overtaken.then);
  const orders = permutations(history.steps).filter((order) => possible(order.map((s) => s.name)));
  expect(orders, `${history.name}: the orders the saga can produce`).toHaveLength(history.orders);
  expect(possible(names) && !overtaken(names), `${history.name}: the in-order delivery is possible and not overtaken`).toBe(true);

  const events = history.steps.filter((s) => s.event !== undefined).map((s) => s.name);
  const reference = await play(consumer, history.steps, `${history.name} in order`);
  expect(reference, `${history.name}: in order`).toEqual(history.inOrder);

  for (const [k, order] of orders.entries()) {
    const sequence = order.map((s) => s.name);
    const label = `${history.name}: ${sequence.join(' > ')}`;
    const expected = overtaken(sequence) ? { effect: reference.effect, record: history.overtaken!.record } : reference;
    expect(await play(consumer, order, label), label).toEqual(expected);
    // The same order with one event delivered twice, late (a redelivery after a lost ack): each event of the history in turn.
    const again = events[k % events.length]!;
    expect(await play(consumer, order, `${label} > ${again} again`, again), `${label} > ${again} again`).toEqual(expected);
  }
}

/** Counts of the events a run wrote to its outbox, by type (and by reason, for QuantityChanged). */
function countEvents(envelopes: readonly EventEnvelope[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of envelopes) {
    const key = e.type === 'QuantityChanged' ? `${e.type}:${(e.data as { reason: string }).reason}` : e.type;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// The events, built for one reservation.

interface Ref {
  readonly reservationId: number;
  readonly bookId: number;
  readonly customerId: string;
}

const BOOK_NAME = 'The Dispossessed';
const LIBRARY = { libraryId: 1, libraryName: 'Order Branch' };
const NO_BRANCH = 'no library branch exists to serve the reservation';
const T0 = Date.parse('2025-06-01T08:00:00.000Z');
/** The deadlines the events carry (assignment's pickupBy, reservation's dueAt): fixed, so every run ends the same. */
const PICKUP_BY = '2025-06-08T08:00:00.000Z';
const DUE_AT = '2025-06-22T08:00:00.000Z';

/** The fields every event of the saga carries, and nothing else (the schemas refuse other properties). */
const refOf = (r: Ref) => ({ reservationId: r.reservationId, bookId: r.bookId, customerId: r.customerId });
/** The event's time `second` seconds after T0: the read model's page and timeline depend on event times, not arrival. */
const at = (second: number | undefined) => (second === undefined ? {} : { time: new Date(T0 + second * 1000) });
const subject = (r: Ref) => String(r.reservationId);

const build = {
  ReservationRequested: (r: Ref, second?: number) =>
    createEnvelope({
      type: 'ReservationRequested',
      source: sourceOf('reservation'),
      subject: subject(r),
      ...at(second),
      data: { ...refOf(r), bookName: BOOK_NAME, preferredLibraryId: null, status: 'bookReserveReq' as const },
    }),
  ReservationCancelRequested: (r: Ref, second?: number) =>
    createEnvelope({ type: 'ReservationCancelRequested', source: sourceOf('reservation'), subject: subject(r), ...at(second), data: { ...refOf(r), status: 'bookCancel' as const } }),
  /** Refused by reservation: out of stock when book answered, `rejected` when it did not or no branch can serve it. */
  ReservationRejected: (r: Ref, second?: number, status: 'bookOutOfStock' | 'rejected' = 'rejected') =>
    createEnvelope({
      type: 'ReservationRejected',
      source: sourceOf('reservation'),
      subject: subject(r),
      ...at(second),
      data: { ...refOf(r), bookName: status === 'bookOutOfStock' ? BOOK_NAME : null, status, reason: status === 'bookOutOfStock' ? 'no copy available' : 'refused by reservation' },
    }),
  ReservationAccepted: (r: Ref, second?: number) =>
    createEnvelope({
      type: 'ReservationAccepted',
      source: sourceOf('assignment'),
      subject: subject(r),
      ...at(second),
      data: { ...refOf(r), assignmentId: r.reservationId, ...LIBRARY, status: 'bookReserved' as const, pickupBy: PICKUP_BY },
    }),
  ReservationCanceled: (r: Ref, second?: number) =>
    createEnvelope({ type: 'ReservationCanceled', source: sourceOf('assignment'), subject: subject(r), ...at(second), data: { ...refOf(r), status: 'bookCanceled' as const } }),
  ReservationWaitlisted: (r: Ref, second?: number) =>
    createEnvelope({
      type: 'ReservationWaitlisted',
      source: sourceOf('reservation'),
      subject: subject(r),
      ...at(second),
      data: { ...refOf(r), bookName: BOOK_NAME, queueTicket: r.reservationId, status: 'bookWaiting' as const },
    }),
  CopyGranted: (r: Ref, second?: number) =>
    createEnvelope({
      type: 'CopyGranted',
      source: sourceOf('book'),
      subject: subject(r),
      ...at(second),
      data: { ...refOf(r), bookName: BOOK_NAME, queueTicket: r.reservationId, cause: 'returned' as const, status: 'bookReserveReq' as const },
    }),
  ReservationCheckedOut: (r: Ref, second?: number) =>
    createEnvelope({
      type: 'ReservationCheckedOut',
      source: sourceOf('reservation'),
      subject: subject(r),
      ...at(second),
      data: { ...refOf(r), libraryId: LIBRARY.libraryId, dueAt: DUE_AT, status: 'bookLoaned' as const },
    }),
  ReservationReturned: (r: Ref, second?: number) =>
    createEnvelope({ type: 'ReservationReturned', source: sourceOf('reservation'), subject: subject(r), ...at(second), data: { ...refOf(r), libraryId: LIBRARY.libraryId, status: 'bookReturned' as const } }),
  ReservationExpired: (r: Ref, second?: number) =>
    createEnvelope({
      type: 'ReservationExpired',
      source: sourceOf('reservation'),
      subject: subject(r),
      ...at(second),
      data: { ...refOf(r), libraryId: LIBRARY.libraryId, pickupBy: PICKUP_BY, status: 'bookExpired' as const },
    }),
  ReservationAssignmentFailed: (r: Ref, second?: number) =>
    createEnvelope({
      type: 'ReservationAssignmentFailed',
      source: sourceOf('assignment'),
      subject: subject(r),
      ...at(second),
      data: { ...refOf(r), reason: NO_BRANCH, status: 'rejected' as const },
    }),
};

/** A step delivering `type` (its time `second` seconds after T0, when given). */
function deliver(type: keyof typeof build, second?: number): Step<Ref> {
  return { name: type, event: (r) => build[type](r, second) };
}

let nextReservationId = 900_000;

// ---------------------------------------------------------------------------------------------
// book: releases the hold of a reservation on ReservationCancelRequested, ReservationCanceled and
// ReservationRejected (at most once; a voided hold when the release comes first).
//
// Left out: a hold after the cancellation events (see HOLD_FIRST), and a rejection together with a
// cancellation: a rejected reservation cannot be cancelled, and a cancelled one is not rejected
// (reservation's rejectUnassignable leaves bookCancel alone), so no history has both.

interface BookRun extends Ref {
  /** What the hold call answered: 201, or the problem code of a refusal. */
  holdAnswer?: number | string;
}
interface BookEffect {
  quantity: number;
  copies: number;
  heldByPatron: number;
  activeHold: boolean;
}
interface BookRecord {
  hold: string | null;
  holdAnswer: number | string | null;
  events: Record<string, number>;
}

const STOCK = 2;
const internal = { authorization: `Bearer ${await (await testAuth()).internalFor('reservation').token()}` };
const staff = await asStaff();

function bookUnderTest(book: () => BookService, bus: () => BusDriver, database: () => Kysely<BookTables>): ConsumerUnderTest<BookRun, BookEffect, BookRecord> {
  return {
    deliver: (envelope) => bus().deliver(envelope),
    async begin() {
      // A fresh book and patron each run: the stock, the patron's count and the book's events are this run's alone.
      const res = await book().app.inject({ method: 'POST', url: '/books', payload: { bookName: `${BOOK_NAME} ${nextReservationId}`, quantity: STOCK }, headers: staff });
      expect(res.statusCode).toBe(201);
      const reservationId = nextReservationId++;
      return { reservationId, bookId: res.json<{ bookId: number }>().bookId, customerId: `order-${reservationId}` };
    },
    async end(run) {
      const db = database();
      const row = await db.selectFrom('books').select(['quantity', 'copies']).where('book_id', '=', run.bookId).executeTakeFirstOrThrow();
      const hold = await db.selectFrom('holds').select('status').where('reservation_id', '=', run.reservationId).executeTakeFirst();
      const held = await db.selectFrom('customer_copies').select('held').where('customer_id', '=', run.customerId).executeTakeFirst();
      const outbox = await db.selectFrom('outbox').select('envelope').where('type', '=', 'QuantityChanged').execute();
      return {
        effect: { quantity: row.quantity, copies: row.copies, heldByPatron: held?.held ?? 0, activeHold: hold?.status === 'held' },
        record: { hold: hold?.status ?? null, holdAnswer: run.holdAnswer ?? null, events: countEvents(outbox.map((o) => o.envelope).filter((e) => e.subject === String(run.bookId) && (e.data as { reason: string }).reason !== 'created')) },
      };
    },
  };
}

/** Reservation's synchronous hold call (PUT /books/{bookId}/holds/{reservationId}). */
function holdCall(book: () => BookService): Step<BookRun> {
  return {
    name: 'hold',
    async call(run) {
      const res = await book().app.inject({ method: 'PUT', url: `/books/${run.bookId}/holds/${run.reservationId}`, payload: { customerId: run.customerId }, headers: internal });
      // Taken (201), or refused because a release came first (the hold is voided): nothing else.
      run.holdAnswer = res.statusCode === 201 ? 201 : res.json<{ code: string }>().code;
      expect([201, 'HOLD_RELEASED'], `hold answered ${res.statusCode} ${res.body}`).toContain(run.holdAnswer);
    },
  };
}

/** The same call asking to wait, on a book whose copies were all withdrawn first: the reservation joins the line. */
function waitCall(book: () => BookService): Step<BookRun> {
  return {
    name: 'wait',
    async call(run) {
      const withdrawn = await book().app.inject({ method: 'POST', url: `/books/${run.bookId}/copies`, payload: { delta: -STOCK }, headers: staff });
      expect(withdrawn.statusCode, withdrawn.body).toBe(200);
      const res = await book().app.inject({ method: 'PUT', url: `/books/${run.bookId}/holds/${run.reservationId}`, payload: { customerId: run.customerId, waitlist: true }, headers: internal });
      run.holdAnswer = res.statusCode === 201 ? res.json<{ status: string }>().status : res.json<{ code: string }>().code;
      expect(run.holdAnswer, `wait answered ${res.statusCode} ${res.body}`).toBe('waiting');
    },
  };
}

const HOLD_FIRST = 'the reservation becomes cancellable (bookReserveReq) only in the transaction that stores book\'s answer to the hold, so its cancellation events are written after the hold was taken';

function bookHistories(book: () => BookService): History<BookRun, BookEffect, BookRecord>[] {
  const hold = holdCall(book);
  /** Every copy back in stock, none counted for the patron. */
  const allBack: BookEffect = { quantity: STOCK, copies: STOCK, heldByPatron: 0, activeHold: false };
  return [
    {
      name: 'held, then cancelled by the patron',
      steps: [hold, deliver('ReservationCancelRequested'), deliver('ReservationCanceled')],
      causal: [
        { before: 'hold', after: 'ReservationCancelRequested', why: HOLD_FIRST },
        { before: 'hold', after: 'ReservationCanceled', why: `${HOLD_FIRST} (assignment's confirmation comes after reservation's request)` },
      ],
      orders: 2,
      inOrder: { effect: allBack, record: { hold: 'released', holdAnswer: 201, events: { 'QuantityChanged:held': 1, 'QuantityChanged:released': 1 } } },
    },
    {
      // The hold's answer was lost (a timeout) and reservation gave up while the request was still
      // queued at book; or the hold was answered and no branch could serve the reservation
      // (ReservationAssignmentFailed, then reservation's ReservationRejected). Either order happens.
      name: 'rejected after its hold was requested',
      steps: [hold, deliver('ReservationRejected')],
      orders: 2,
      inOrder: { effect: allBack, record: { hold: 'released', holdAnswer: 201, events: { 'QuantityChanged:held': 1, 'QuantityChanged:released': 1 } } },
      overtaken: {
        first: 'ReservationRejected',
        then: 'hold',
        why: 'the rejection voids the hold before it is taken: the late hold is refused (HOLD_RELEASED), so no copy is taken and given back, and no QuantityChanged is written',
        record: { hold: 'voided', holdAnswer: 'HOLD_RELEASED', events: {} },
      },
    },
    {
      // Check-out and check-in are two transactions of reservation, published by any relay: the
      // return can overtake the check-out, and frees the copy all the same (the late check-out finds
      // it released).
      name: 'held, checked out, returned',
      steps: [hold, deliver('ReservationCheckedOut'), deliver('ReservationReturned')],
      causal: [
        { before: 'hold', after: 'ReservationCheckedOut', why: 'a reservation is checked out only once it is bookReserved, after book answered its hold' },
        { before: 'hold', after: 'ReservationReturned', why: 'a reservation is returned only after it was checked out, after book answered its hold' },
      ],
      orders: 2,
      inOrder: { effect: allBack, record: { hold: 'released', holdAnswer: 201, events: { 'QuantityChanged:held': 1, 'QuantityChanged:returned': 1 } } },
    },
    {
      name: 'held, not picked up by its deadline',
      steps: [hold, deliver('ReservationExpired')],
      causal: [{ before: 'hold', after: 'ReservationExpired', why: 'a reservation expires only once it is bookReserved, after book answered its hold' }],
      orders: 1,
      inOrder: { effect: allBack, record: { hold: 'released', holdAnswer: 201, events: { 'QuantityChanged:held': 1, 'QuantityChanged:released': 1 } } },
    },
    {
      // No copy: the reservation waited in line, and the patron cancelled before any copy came back.
      name: 'waited in line, then cancelled',
      steps: [waitCall(book), deliver('ReservationCancelRequested'), deliver('ReservationCanceled')],
      causal: [
        { before: 'wait', after: 'ReservationCancelRequested', why: 'the reservation becomes cancellable (bookWaiting) only in the transaction that stores book\'s answer' },
        { before: 'wait', after: 'ReservationCanceled', why: 'assignment confirms only the cancel that reservation requested after book answered' },
      ],
      orders: 2,
      inOrder: {
        effect: { quantity: 0, copies: 0, heldByPatron: 0, activeHold: false },
        record: { hold: 'released', holdAnswer: 'waiting', events: { 'QuantityChanged:copiesWithdrawn': 1 } },
      },
    },
    {
      // Book never received the hold (it was down): reservation rejected the reservation.
      name: 'rejected without a hold',
      steps: [deliver('ReservationRejected')],
      orders: 1,
      inOrder: { effect: allBack, record: { hold: 'voided', holdAnswer: null, events: {} } },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// assignment: assigns a branch on ReservationRequested (or records that none exists), releases it
// on ReservationCancelRequested (a tombstone when the cancel comes first). Nothing is left out:
// both events come from reservation, in two transactions, and either can be delivered first.

interface AssignmentEffect {
  /** The reservation counts in a branch's load (status `assigned`). */
  libraryHeld: boolean;
  /** ReservationCanceled written: reservation waits for exactly one to end a cancellation. */
  cancellationsAnnounced: number;
}
interface AssignmentRecord {
  status: string | null;
  events: Record<string, number>;
}

function assignmentUnderTest(bus: () => BusDriver, database: () => Kysely<AssignmentTables>): ConsumerUnderTest<Ref, AssignmentEffect, AssignmentRecord> {
  return {
    deliver: (envelope) => bus().deliver(envelope),
    begin: async () => ({ reservationId: nextReservationId++, bookId: 1, customerId: 'alice' }),
    async end(run) {
      const db = database();
      const row = await db.selectFrom('assignments').select('status').where('reservation_id', '=', run.reservationId).executeTakeFirst();
      const outbox = (await db.selectFrom('outbox').select('envelope').execute()).map((o) => o.envelope).filter((e) => e.subject === subject(run));
      const events = countEvents(outbox);
      return { effect: { libraryHeld: row?.status === 'assigned', cancellationsAnnounced: events.ReservationCanceled ?? 0 }, record: { status: row?.status ?? null, events } };
    },
  };
}

const CANCEL_OVERTAKES_REQUEST =
  'the cancellation leaves a tombstone (voided) and the late request is not assigned: no ReservationAccepted (or ReservationAssignmentFailed) is written, and the reservation ends bookCanceled without a library';

/** With one branch: `served`. With none at all (checked first, before the branch is created): `unserved`. */
function assignmentHistories(): { served: History<Ref, AssignmentEffect, AssignmentRecord>[]; unserved: History<Ref, AssignmentEffect, AssignmentRecord>[] } {
  return {
    served: [
      {
        name: 'assigned',
        steps: [deliver('ReservationRequested')],
        orders: 1,
        inOrder: { effect: { libraryHeld: true, cancellationsAnnounced: 0 }, record: { status: 'assigned', events: { ReservationAccepted: 1 } } },
      },
      {
        // The copy left the hold shelf: the branch's load goes down. Reservation checks out or
        // expires only after assignment's ReservationAccepted, which answered the request.
        name: 'assigned, then checked out',
        steps: [deliver('ReservationRequested'), deliver('ReservationCheckedOut')],
        causal: [{ before: 'ReservationRequested', after: 'ReservationCheckedOut', why: 'a reservation is checked out only once bookReserved, after the ReservationAccepted that answers its request' }],
        orders: 1,
        inOrder: { effect: { libraryHeld: false, cancellationsAnnounced: 0 }, record: { status: 'closed', events: { ReservationAccepted: 1 } } },
      },
      {
        name: 'assigned, not picked up',
        steps: [deliver('ReservationRequested'), deliver('ReservationExpired')],
        causal: [{ before: 'ReservationRequested', after: 'ReservationExpired', why: 'a reservation expires only once bookReserved, after the ReservationAccepted that answers its request' }],
        orders: 1,
        inOrder: { effect: { libraryHeld: false, cancellationsAnnounced: 0 }, record: { status: 'closed', events: { ReservationAccepted: 1 } } },
      },
      {
        // Both from reservation, in two transactions; the cancel can overtake the request (ADR 0005).
        name: 'requested, then cancelled',
        steps: [deliver('ReservationRequested'), deliver('ReservationCancelRequested')],
        orders: 2,
        inOrder: { effect: { libraryHeld: false, cancellationsAnnounced: 1 }, record: { status: 'released', events: { ReservationAccepted: 1, ReservationCanceled: 1 } } },
        overtaken: { first: 'ReservationCancelRequested', then: 'ReservationRequested', why: CANCEL_OVERTAKES_REQUEST, record: { status: 'voided', events: { ReservationCanceled: 1 } } },
      },
    ],
    unserved: [
      {
        name: 'no branch can serve it',
        steps: [deliver('ReservationRequested')],
        orders: 1,
        inOrder: { effect: { libraryHeld: false, cancellationsAnnounced: 0 }, record: { status: 'failed', events: { ReservationAssignmentFailed: 1 } } },
      },
      {
        name: 'no branch can serve it, and cancelled meanwhile',
        steps: [deliver('ReservationRequested'), deliver('ReservationCancelRequested')],
        orders: 2,
        inOrder: { effect: { libraryHeld: false, cancellationsAnnounced: 1 }, record: { status: 'voided', events: { ReservationAssignmentFailed: 1, ReservationCanceled: 1 } } },
        overtaken: { first: 'ReservationCancelRequested', then: 'ReservationRequested', why: CANCEL_OVERTAKES_REQUEST, record: { status: 'voided', events: { ReservationCanceled: 1 } } },
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// reservation: applies assignment's answers (ReservationAccepted, ReservationCanceled,
// ReservationAssignmentFailed) to a reservation it placed, with status guards. Every answer comes
// after the reservation was placed (it answers the reservation's own ReservationRequested).
//
// Left out: the orders named in `causal` below, and ReservationAccepted together with
// ReservationAssignmentFailed (assignment keeps one row per reservation: it writes one or the other).

interface ReservationEffect {
  status: string;
  pickupBy: string | null;
  libraryId: number | null;
  libraryName: string | null;
  rejectReason: string | null;
}
interface ReservationRecord {
  events: Record<string, number>;
}

const PATRON = 'order-patron';
/** Book answers every hold: the reservation is placed in bookReserveReq, as after a real hold; one asking to wait is put in line. */
const holdingBook: BookClient = {
  hold: async (request) =>
    request.waitlist ? { kind: 'waiting', bookName: BOOK_NAME, queueTicket: request.reservationId, queuePosition: 1 } : { kind: 'held', bookName: BOOK_NAME },
};

/** `waiting`: each run's reservation is placed with waitlist on a book with no copy (it starts bookWaiting). */
function reservationUnderTest(
  reservation: () => ReservationService,
  bus: () => BusDriver,
  database: () => Kysely<ReservationTables>,
  waiting = false,
): ConsumerUnderTest<Ref, ReservationEffect, ReservationRecord> {
  const bookId = waiting ? 8 : 7;
  return {
    deliver: (envelope) => bus().deliver(envelope),
    async begin() {
      // A patron per run: one patron has one active reservation per book, and a run may leave its own active.
      const customerId = `${PATRON}-${nextReservationId++}`;
      const res = await reservation().app.inject({ method: 'POST', url: '/reservations', payload: { bookId, ...(waiting ? { waitlist: true } : {}) }, headers: await as(customerId) });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json<{ status: string }>().status).toBe(waiting ? 'bookWaiting' : 'bookReserveReq');
      return { reservationId: res.json<{ reservationId: number }>().reservationId, bookId, customerId };
    },
    async end(run) {
      const db = database();
      const row = await db
        .selectFrom('reservations')
        .select(['status', 'pickup_by', 'library_id', 'library_name', 'reject_reason'])
        .where('reservation_id', '=', run.reservationId)
        .executeTakeFirstOrThrow();
      const outbox = (await db.selectFrom('outbox').select('envelope').execute()).map((o) => o.envelope).filter((e) => e.subject === subject(run));
      return {
        effect: { status: row.status, pickupBy: row.pickup_by ? new Date(row.pickup_by).toISOString() : null, libraryId: row.library_id, libraryName: row.library_name, rejectReason: row.reject_reason },
        record: { events: countEvents(outbox) },
      };
    },
  };
}

function cancelCall(reservation: () => ReservationService): Step<Ref> {
  return {
    name: 'cancel',
    async call(run) {
      const res = await reservation().app.inject({ method: 'PATCH', url: `/reservations/${run.reservationId}`, payload: { status: 'bookCancel' }, headers: await as(run.customerId) });
      expect(res.statusCode, res.body).toBe(202);
    },
  };
}

const CANCEL_BEFORE_CANCELED = 'assignment writes ReservationCanceled only on the ReservationCancelRequested that the patron\'s cancel writes';

function reservationHistories(reservation: () => ReservationService): History<Ref, ReservationEffect, ReservationRecord>[] {
  const cancel = cancelCall(reservation);
  const canceledWithLibrary: ReservationEffect = { status: 'bookCanceled', pickupBy: PICKUP_BY, ...LIBRARY, rejectReason: null };
  const canceledWithout: ReservationEffect = { status: 'bookCanceled', pickupBy: null, libraryId: null, libraryName: null, rejectReason: null };
  const cancelled = { ReservationRequested: 1, ReservationCancelRequested: 1 };
  return [
    {
      name: 'assigned',
      steps: [deliver('ReservationAccepted')],
      orders: 1,
      inOrder: { effect: { status: 'bookReserved', pickupBy: PICKUP_BY, ...LIBRARY, rejectReason: null }, record: { events: { ReservationRequested: 1 } } },
    },
    {
      // The patron cancels before or after the library's ReservationAccepted arrives.
      name: 'assigned and cancelled',
      steps: [deliver('ReservationAccepted'), cancel, deliver('ReservationCanceled')],
      causal: [{ before: 'cancel', after: 'ReservationCanceled', why: CANCEL_BEFORE_CANCELED }],
      orders: 3,
      inOrder: { effect: canceledWithLibrary, record: { events: cancelled } },
    },
    {
      // The cancel overtook the request at assignment (a tombstone): no ReservationAccepted ever comes.
      name: 'cancelled before assignment saw the request',
      steps: [cancel, deliver('ReservationCanceled')],
      causal: [{ before: 'cancel', after: 'ReservationCanceled', why: CANCEL_BEFORE_CANCELED }],
      orders: 1,
      inOrder: { effect: canceledWithout, record: { events: cancelled } },
    },
    {
      name: 'no branch can serve it',
      steps: [deliver('ReservationAssignmentFailed')],
      orders: 1,
      inOrder: {
        effect: { status: 'rejected', pickupBy: null, libraryId: null, libraryName: null, rejectReason: `no library can serve it: ${NO_BRANCH}` },
        record: { events: { ReservationRequested: 1, ReservationRejected: 1 } },
      },
    },
    {
      name: 'no branch can serve it, and cancelled meanwhile',
      steps: [cancel, deliver('ReservationAssignmentFailed'), deliver('ReservationCanceled')],
      causal: [
        { before: 'cancel', after: 'ReservationCanceled', why: CANCEL_BEFORE_CANCELED },
        {
          before: 'cancel',
          after: 'ReservationAssignmentFailed',
          why: 'a ReservationAssignmentFailed handled first rejects the reservation, which then cannot be cancelled: no ReservationCanceled exists (that is the history "no branch can serve it")',
        },
      ],
      orders: 2,
      inOrder: { effect: canceledWithout, record: { events: cancelled } },
    },
  ];
}

const GRANT_BEFORE_ACCEPT = 'assignment assigns a branch only on the ReservationRequested that reservation writes when it handles the grant';

/** A reservation that waits in its book's line (placed with waitlist on a book with no copy). */
function waitingReservationHistories(reservation: () => ReservationService): History<Ref, ReservationEffect, ReservationRecord>[] {
  const cancel = cancelCall(reservation);
  return [
    {
      name: 'waited, was granted a copy, then assigned',
      steps: [deliver('CopyGranted'), deliver('ReservationAccepted')],
      causal: [{ before: 'CopyGranted', after: 'ReservationAccepted', why: GRANT_BEFORE_ACCEPT }],
      orders: 1,
      inOrder: {
        effect: { status: 'bookReserved', pickupBy: PICKUP_BY, ...LIBRARY, rejectReason: null },
        record: { events: { ReservationWaitlisted: 1, ReservationRequested: 1 } },
      },
    },
    {
      // Book granted a copy while the patron was cancelling: either the grant came first (the
      // reservation went on, then was cancelled) or the cancel did (the grant is ignored, and book
      // passes the copy on when the cancel reaches it). Both end bookCanceled.
      name: 'waited, cancelled while a copy was granted',
      steps: [deliver('CopyGranted'), cancel, deliver('ReservationCanceled')],
      causal: [{ before: 'cancel', after: 'ReservationCanceled', why: CANCEL_BEFORE_CANCELED }],
      orders: 3,
      inOrder: {
        effect: { status: 'bookCanceled', pickupBy: null, libraryId: null, libraryName: null, rejectReason: null },
        record: { events: { ReservationWaitlisted: 1, ReservationRequested: 1, ReservationCancelRequested: 1 } },
      },
      overtaken: {
        first: 'cancel',
        then: 'CopyGranted',
        why: 'a grant to a reservation already cancelled is ignored: no ReservationRequested is written (book gives the copy to the next in line when the cancel reaches it)',
        record: { events: { ReservationWaitlisted: 1, ReservationCancelRequested: 1 } },
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// customercenter: projects every lifecycle event onto the reservation's page by the merge rule
// (the status only moves up the rank, known values stay, times widen). It reads events of two
// producers, each possibly redelivered after the others, so every order can happen: nothing is
// left out. No history has two terminal statuses (ReservationRejected and ReservationCanceled),
// for the reason given for book; the rank rule keeps the first of two equal ranks.

interface PageEffect {
  page: Record<string, unknown>;
  timeline: string[];
}

/** A page as GET /reservationPages/{id} answers it. */
interface PageJson {
  reservationId: number;
  timeline: { eventType: string; status: string; service: string; occurredAt: string }[];
  [field: string]: unknown;
}

function customercenterUnderTest(
  customercenter: () => CustomerCenterService,
  bus: () => BusDriver,
  database: () => Kysely<CustomerCenterTables>,
): ConsumerUnderTest<Ref, PageEffect, Record<string, never>> {
  return {
    deliver: (envelope) => bus().deliver(envelope),
    begin: async () => ({ reservationId: nextReservationId++, bookId: 5, customerId: 'alice' }),
    async end(run) {
      const res = await customercenter().app.inject({ method: 'GET', url: `/reservationPages/${run.reservationId}`, headers: staff });
      if (res.statusCode !== 200) throw new Error(`no page for reservation ${run.reservationId}: ${res.statusCode} ${res.body}`);
      const { reservationId: _id, timeline, ...page } = res.json<PageJson>();
      // The queue ticket is internal (the API shows the place in line instead): read from the page's
      // row. It is the run's reservation id (see `build`): named by a rule, the same in every run.
      const row = await database().selectFrom('reservation_pages').select('queue_ticket').where('reservation_id', '=', run.reservationId).executeTakeFirstOrThrow();
      const ticket = row.queue_ticket === null ? null : Number(row.queue_ticket);
      const queueTicket = ticket === null ? null : ticket === run.reservationId ? "the run's ticket" : ticket;
      return {
        effect: {
          page: { ...page, queueTicket },
          timeline: timeline.map((e) => `${e.occurredAt} ${e.eventType} ${e.status} ${e.service}`),
        },
        record: {},
      };
    },
  };
}

const time = (second: number) => new Date(T0 + second * 1000).toISOString();

function pageHistories(): History<Ref, PageEffect, Record<string, never>>[] {
  const page = (status: string, last: number, library = true, more: { pickupBy?: string; dueAt?: string; queueTicket?: number } = {}) => ({
    bookId: 5,
    bookName: BOOK_NAME,
    customerId: 'alice',
    status,
    libraryId: library ? LIBRARY.libraryId : null,
    libraryName: library ? LIBRARY.libraryName : null,
    pickupBy: more.pickupBy ?? (library ? PICKUP_BY : null),
    dueAt: more.dueAt ?? null,
    queueTicket: more.queueTicket ?? null,
    queuePosition: null,
    createdAt: time(0),
    updatedAt: time(last),
  });
  /** The run's own reservation id is its ticket (see `build`): known only in the run, so checked by a rule instead. */
  const ticketed = (status: string, last: number, library: boolean) => ({ ...page(status, last, library), queueTicket: 'the run\'s ticket' });
  return [
    {
      name: 'reserved',
      steps: [deliver('ReservationRequested', 0), deliver('ReservationAccepted', 1)],
      orders: 2,
      inOrder: {
        effect: { page: page('bookReserved', 1), timeline: [`${time(0)} ReservationRequested bookReserveReq reservation`, `${time(1)} ReservationAccepted bookReserved assignment`] },
        record: {},
      },
    },
    {
      name: 'reserved, then cancelled',
      steps: [deliver('ReservationRequested', 0), deliver('ReservationAccepted', 1), deliver('ReservationCancelRequested', 2), deliver('ReservationCanceled', 3)],
      orders: 24,
      inOrder: {
        effect: {
          page: page('bookCanceled', 3),
          timeline: [
            `${time(0)} ReservationRequested bookReserveReq reservation`,
            `${time(1)} ReservationAccepted bookReserved assignment`,
            `${time(2)} ReservationCancelRequested bookCancel reservation`,
            `${time(3)} ReservationCanceled bookCanceled assignment`,
          ],
        },
        record: {},
      },
    },
    {
      // A cancel that overtook the request at assignment, or one after no branch could serve it.
      name: 'cancelled before a library was assigned',
      steps: [deliver('ReservationRequested', 0), deliver('ReservationCancelRequested', 1), deliver('ReservationCanceled', 2)],
      orders: 6,
      inOrder: {
        effect: {
          page: page('bookCanceled', 2, false),
          timeline: [
            `${time(0)} ReservationRequested bookReserveReq reservation`,
            `${time(1)} ReservationCancelRequested bookCancel reservation`,
            `${time(2)} ReservationCanceled bookCanceled assignment`,
          ],
        },
        record: {},
      },
    },
    {
      name: 'waited in line, then granted a copy',
      steps: [deliver('ReservationWaitlisted', 0), deliver('CopyGranted', 1), deliver('ReservationRequested', 2)],
      orders: 6,
      inOrder: {
        effect: {
          page: ticketed('bookReserveReq', 2, false),
          timeline: [`${time(0)} ReservationWaitlisted bookWaiting reservation`, `${time(1)} CopyGranted bookReserveReq book`, `${time(2)} ReservationRequested bookReserveReq reservation`],
        },
        record: {},
      },
    },
    {
      name: 'waited in line, then cancelled',
      steps: [deliver('ReservationWaitlisted', 0), deliver('ReservationCancelRequested', 1), deliver('ReservationCanceled', 2)],
      orders: 6,
      inOrder: {
        effect: {
          page: ticketed('bookCanceled', 2, false),
          timeline: [`${time(0)} ReservationWaitlisted bookWaiting reservation`, `${time(1)} ReservationCancelRequested bookCancel reservation`, `${time(2)} ReservationCanceled bookCanceled assignment`],
        },
        record: {},
      },
    },
    {
      name: 'picked up and returned',
      steps: [deliver('ReservationRequested', 0), deliver('ReservationAccepted', 1), deliver('ReservationCheckedOut', 2), deliver('ReservationReturned', 3)],
      orders: 24,
      inOrder: {
        effect: {
          page: page('bookReturned', 3, true, { dueAt: DUE_AT }),
          timeline: [
            `${time(0)} ReservationRequested bookReserveReq reservation`,
            `${time(1)} ReservationAccepted bookReserved assignment`,
            `${time(2)} ReservationCheckedOut bookLoaned reservation`,
            `${time(3)} ReservationReturned bookReturned reservation`,
          ],
        },
        record: {},
      },
    },
    {
      name: 'not picked up by its deadline',
      steps: [deliver('ReservationRequested', 0), deliver('ReservationAccepted', 1), deliver('ReservationExpired', 2)],
      orders: 6,
      inOrder: {
        effect: {
          page: page('bookExpired', 2),
          timeline: [`${time(0)} ReservationRequested bookReserveReq reservation`, `${time(1)} ReservationAccepted bookReserved assignment`, `${time(2)} ReservationExpired bookExpired reservation`],
        },
        record: {},
      },
    },
    {
      name: 'out of stock',
      steps: [{ name: 'ReservationRejected', event: (r) => build.ReservationRejected(r, 0, 'bookOutOfStock') }],
      orders: 1,
      inOrder: { effect: { page: page('bookOutOfStock', 0, false), timeline: [`${time(0)} ReservationRejected bookOutOfStock reservation`] }, record: {} },
    },
    {
      // Held, then no branch could serve it: reservation rejected it (ReservationAssignmentFailed is not a page event).
      name: 'no branch can serve it',
      steps: [deliver('ReservationRequested', 0), deliver('ReservationRejected', 1)],
      orders: 2,
      inOrder: {
        effect: {
          page: page('rejected', 1, false),
          timeline: [`${time(0)} ReservationRequested bookReserveReq reservation`, `${time(1)} ReservationRejected rejected reservation`],
        },
        record: {},
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// notification: each patron's notices (ADR 0024). What it knows of the reservation (its status)
// and the reminders it waits for end the same in every order; which notices were made may depend
// on the order only where a notice would have been stale: a "ready for pickup" learned after the
// cancel request is not made.

interface NotificationEffect {
  /** The reservation's status as the service merged it. */
  status: string | null;
  /** The reminders still scheduled, by kind (the events' deadlines are past, so none is). */
  reminders: string[];
}
interface NotificationRecord {
  /** The notices made, by kind (sorted: the order they were made in depends on the delivery). */
  notices: string[];
}

function notificationUnderTest(bus: () => BusDriver, database: () => Kysely<NotificationTables>): ConsumerUnderTest<Ref, NotificationEffect, NotificationRecord> {
  return {
    deliver: (envelope) => bus().deliver(envelope),
    begin: async () => ({ reservationId: nextReservationId++, bookId: 5, customerId: 'alice' }),
    async end(run) {
      const facts = await database().selectFrom('reservation_facts').select('status').where('reservation_id', '=', run.reservationId).executeTakeFirst();
      const reminders = await database().selectFrom('reminders').select('kind').where('reservation_id', '=', run.reservationId).orderBy('kind').execute();
      const notices = await database().selectFrom('notices').select('kind').where('reservation_id', '=', run.reservationId).orderBy('kind').execute();
      return { effect: { status: facts?.status ?? null, reminders: reminders.map((r) => r.kind) }, record: { notices: notices.map((n) => n.kind) } };
    },
  };
}

function noticeHistories(): History<Ref, NotificationEffect, NotificationRecord>[] {
  return [
    {
      // Reserved, then cancelled: "ready for pickup" only when the acceptance came before the cancel request.
      name: 'reserved, then cancelled',
      steps: [deliver('ReservationRequested'), deliver('ReservationAccepted'), deliver('ReservationCancelRequested'), deliver('ReservationCanceled')],
      causal: [{ before: 'ReservationCancelRequested', after: 'ReservationCanceled', why: CANCEL_BEFORE_CANCELED }],
      orders: 12,
      inOrder: { effect: { status: 'bookCanceled', reminders: [] }, record: { notices: ['cancelled', 'readyForPickup'] } },
      overtaken: {
        first: 'ReservationCancelRequested',
        then: 'ReservationAccepted',
        record: { notices: ['cancelled'] },
        why: 'a notice about a state the reservation already left is not made: the copy is not ready for a patron who cancelled',
      },
    },
    {
      name: 'waited in line, granted, picked up and returned',
      steps: [deliver('ReservationWaitlisted'), deliver('CopyGranted'), deliver('ReservationAccepted'), deliver('ReservationCheckedOut'), deliver('ReservationReturned')],
      causal: [
        { before: 'CopyGranted', after: 'ReservationAccepted', why: GRANT_BEFORE_ACCEPT },
        { before: 'ReservationAccepted', after: 'ReservationCheckedOut', why: 'the desk checks out only a reservation awaiting pickup (bookReserved)' },
        { before: 'ReservationCheckedOut', after: 'ReservationReturned', why: 'only a loan is returned' },
      ],
      orders: 5,
      inOrder: { effect: { status: 'bookReturned', reminders: [] }, record: { notices: ['readyForPickup', 'turnCame'] } },
    },
    {
      name: 'not picked up in time',
      steps: [deliver('ReservationRequested'), deliver('ReservationAccepted'), deliver('ReservationExpired')],
      causal: [{ before: 'ReservationAccepted', after: 'ReservationExpired', why: 'only a reservation awaiting pickup expires' }],
      orders: 3,
      inOrder: { effect: { status: 'bookExpired', reminders: [] }, record: { notices: ['expired', 'readyForPickup'] } },
    },
    {
      name: 'no branch can serve it',
      steps: [deliver('ReservationRequested'), deliver('ReservationAssignmentFailed'), deliver('ReservationRejected')],
      causal: [{ before: 'ReservationAssignmentFailed', after: 'ReservationRejected', why: 'reservation rejects the reservation on the ReservationAssignmentFailed (P13)' }],
      orders: 3,
      inOrder: { effect: { status: 'rejected', reminders: [] }, record: { notices: ['refused'] } },
    },
  ];
}

/** The event types a set of histories delivers. */
const typesOf = (histories: readonly History<never, unknown, unknown>[]) =>
  [...new Set(histories.flatMap((h) => h.steps.filter((s) => s.event !== undefined).map((s) => s.name)))].sort();
/** The event types of a consumer's subjects (`bstore.<producer>.<type>`). */
const handledBy = (subjects: readonly string[]) => subjects.map((s) => s.slice(s.lastIndexOf('.') + 1)).sort();

/** The services this file checks; a service that builds an EventConsumer must be one of them. */
const COVERED = ['assignment', 'book', 'customercenter', 'notification', 'reservation'];

/** What the test reads of an embedded bus's own database: the durable consumers and their subjects. */
interface BusConsumers {
  bus_consumers: { name: string; subjects: string[] };
}

/** A service under test as the test reaches it: its bus (a driver), the test's own connection to its database, and its bus's own records. */
interface Reached<DB> {
  bus: BusDriver;
  db: Kysely<DB>;
  /** Dead letters the service parked (its `dead_letters` table). */
  deadLetters: () => Promise<number>;
  /** The subjects the service's consumer subscribed to, as its bus stores them. */
  subjects: () => Promise<string[]>;
}

describe.each(databaseKinds())('event order on %s: every consumer ends the same whatever the order of delivery (a new consumer must be added here)', (_name, makeDatabase: MakeDatabase) => {
  const cleanups: (() => Promise<void>)[] = [];
  const buses: EmbeddedBus[] = [];
  let book: BookService;
  let assignment: AssignmentService;
  let reservation: ReservationService;
  let customercenter: CustomerCenterService;
  let notification: NotificationService;
  let books: Reached<BookTables>;
  let assignments: Reached<AssignmentTables>;
  let reservations: Reached<ReservationTables>;
  let pages: Reached<CustomerCenterTables>;
  let notices: Reached<NotificationTables>;

  beforeAll(async () => {
    const logger = testLogger();
    const auth = await testAuth();
    const made = async (database: Promise<TestDatabase>) => {
      const ready = await database;
      cleanups.push(ready.cleanup);
      return ready;
    };
    /**
     * Each service consumes from an embedded bus of its own (its log on a PGlite database the test
     * owns), so that an event the test publishes for one service reaches no other.
     */
    const busOf = async () => {
      const database = await made(memoryDatabase());
      const bus = await EmbeddedBus.open({ database: database.config, logger, idlePollMs: 200 });
      buses.push(bus);
      return { bus, log: await database.connect<BusConsumers>() };
    };
    /** Starts the service's consumer on its bus (and nothing else), and connects the test to its database. */
    const reach = async <DB extends MessagingTables>(service: ServiceRuntime<unknown>, bus: { bus: EmbeddedBus; log: Kysely<BusConsumers> }, database: TestDatabase): Promise<Reached<DB>> => {
      const messaging = await database.connect<MessagingTables>();
      return {
        bus: await BusDriver.start(bus.bus, service),
        db: await database.connect<DB>(),
        deadLetters: async () => (await messaging.selectFrom('dead_letters').select('event_id').execute()).length,
        subjects: async () => (await bus.log.selectFrom('bus_consumers').select('subjects').where('name', '=', service.name).executeTakeFirstOrThrow()).subjects,
      };
    };
    // Not started: no relay publishes, so each run's outbox rows stay where the end state reads them.
    // Only their consumers run, each on its own bus, to which the test publishes the events.
    await Promise.all([
      (async () => {
        const [database, bus] = await Promise.all([made(makeDatabase('order_book')), busOf()]);
        book = await createBookService({ database: database.config, bus: bus.bus, logger, auth }, { maxHeldCopiesPerCustomer: 1000 });
        books = await reach<BookTables>(book, bus, database);
      })(),
      (async () => {
        const [database, bus] = await Promise.all([made(makeDatabase('order_assignment')), busOf()]);
        assignment = await createAssignmentService({ database: database.config, bus: bus.bus, logger, auth });
        assignments = await reach<AssignmentTables>(assignment, bus, database);
      })(),
      (async () => {
        const [database, bus] = await Promise.all([made(makeDatabase('order_reservation')), busOf()]);
        reservation = await createReservationService(
          { database: database.config, bus: bus.bus, logger, auth },
          { bookUrl: 'http://127.0.0.1:9', bookClient: holdingBook, maxActiveReservationsPerCustomer: 100_000 },
        );
        reservations = await reach<ReservationTables>(reservation, bus, database);
      })(),
      (async () => {
        const [database, bus] = await Promise.all([made(makeDatabase('order_customercenter')), busOf()]);
        customercenter = await createCustomerCenterService({ database: database.config, bus: bus.bus, logger, auth });
        pages = await reach<CustomerCenterTables>(customercenter, bus, database);
      })(),
      (async () => {
        const [database, bus] = await Promise.all([made(makeDatabase('order_notification')), busOf()]);
        notification = await createNotificationService({ database: database.config, bus: bus.bus, logger, auth });
        notices = await reach<NotificationTables>(notification, bus, database);
      })(),
    ]);
  });

  afterAll(async () => {
    for (const service of [book, assignment, reservation, customercenter, notification]) await service?.stop();
    for (const bus of buses.splice(0)) await bus.close();
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  // Every delivery of a history waits for the consumer (a few hundred of them for the longest histories).
  const LONG = 300_000;

  describe('book', () => {
    const consumer = bookUnderTest(() => book, () => books.bus, () => books.db);
    it.each(bookHistories(() => book).map((h) => [h.name, h] as const))('%s', async (_title, history) => {
      await checkEveryOrder(consumer, history);
      // Dead letters parked by the service: none, since every delivery above was handled or a duplicate.
      expect(await books.deadLetters()).toBe(0);
    }, LONG);
  });

  describe('assignment', () => {
    const { served, unserved } = assignmentHistories();
    const consumer = assignmentUnderTest(() => assignments.bus, () => assignments.db);
    // The service starts with no branch at all; these run first (a describe's tests run in order).
    describe('with no branch at all', () => {
      it.each(unserved.map((h) => [h.name, h] as const))('%s', async (_title, history) => {
        expect(await assignments.db.selectFrom('libraries').select('library_id').execute()).toEqual([]);
        await checkEveryOrder(consumer, history);
        expect(await assignments.deadLetters()).toBe(0);
      }, LONG);
    });
    describe('with one branch', () => {
      // One branch only, so the branch chosen never depends on the load earlier runs left.
      beforeAll(async () => {
        await assignment.operations.ensureLibraries.execute([{ name: LIBRARY.libraryName }]);
      });
      it.each(served.map((h) => [h.name, h] as const))('%s', async (_title, history) => {
        await checkEveryOrder(consumer, history);
        expect(await assignments.deadLetters()).toBe(0);
      }, LONG);
    });
  });

  describe('reservation', () => {
    const consumer = reservationUnderTest(() => reservation, () => reservations.bus, () => reservations.db);
    it.each(reservationHistories(() => reservation).map((h) => [h.name, h] as const))('%s', async (_title, history) => {
      await checkEveryOrder(consumer, history);
      expect(await reservations.deadLetters()).toBe(0);
    }, LONG);
  });

  describe('reservation that waited in line', () => {
    const consumer = reservationUnderTest(() => reservation, () => reservations.bus, () => reservations.db, true);
    it.each(waitingReservationHistories(() => reservation).map((h) => [h.name, h] as const))('%s', async (_title, history) => {
      await checkEveryOrder(consumer, history);
      expect(await reservations.deadLetters()).toBe(0);
    }, LONG);
  });

  describe('customercenter', () => {
    const consumer = customercenterUnderTest(() => customercenter, () => pages.bus, () => pages.db);
    it.each(pageHistories().map((h) => [h.name, h] as const))('%s', async (_title, history) => {
      await checkEveryOrder(consumer, history);
      expect(await pages.deadLetters()).toBe(0);
    }, LONG);
  });

  describe('notification', () => {
    const consumer = notificationUnderTest(() => notices.bus, () => notices.db);
    it.each(noticeHistories().map((h) => [h.name, h] as const))('%s', async (_title, history) => {
      await checkEveryOrder(consumer, history);
      expect(await notices.deadLetters()).toBe(0);
    }, LONG);
  });

  it('coverage: the histories deliver every event type each consumer handles (the subjects it subscribed to on its bus)', async () => {
    const { served, unserved } = assignmentHistories();
    expect(typesOf(bookHistories(() => book))).toEqual(handledBy(await books.subjects()));
    expect(typesOf([...served, ...unserved])).toEqual(handledBy(await assignments.subjects()));
    expect(typesOf([...reservationHistories(() => reservation), ...waitingReservationHistories(() => reservation)])).toEqual(handledBy(await reservations.subjects()));
    expect(typesOf(pageHistories())).toEqual(handledBy(await pages.subjects()));
    expect(typesOf(noticeHistories())).toEqual(handledBy(await notices.subjects()));
  });
});

describe('event order coverage', () => {
  it('every service that consumes events (builds an EventConsumer, itself or through the SQL service kit) is checked in this file', () => {
    const services = fileURLToPath(new URL('../services/', import.meta.url));
    const sources = (dir: string): string[] =>
      readdirSync(dir).flatMap((entry) => {
        const path = join(dir, entry);
        return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
      });
    const consuming = readdirSync(services)
      .filter((name) => statSync(join(services, name, 'src'), { throwIfNoEntry: false })?.isDirectory())
      .filter((name) => sources(join(services, name, 'src')).some((file) => /new EventConsumer\(|\bkit\.consumer\(/.test(readFileSync(file, 'utf8'))))
      .sort();
    expect(consuming).toEqual(COVERED);
  });
});
