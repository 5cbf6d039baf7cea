import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import { EVENT_CATALOG, createEnvelope, sourceOf, type EventData, type EventEnvelope, type EventType } from '@bstore/contracts';
import type { EmbeddedBus } from '@bstore/platform';
import { createNotificationService, type NotificationService, type NotificationTables } from '@bstore/notification';
import { BusDriver } from '../../../test/support/bus-driver.ts';
import { MovableClock, memoryBus, testLogger } from '../../../test/support/harness.ts';
import { databaseKinds } from '../../../test/support/postgres.ts';
import { as, asStaff, testAuth } from '../../../test/support/auth.ts';

/**
 * The notification service (issue 20) on PGlite and PostgreSQL, driven as the other services drive
 * it: lifecycle events on the real bus, its HTTP API, and its database read through the test's
 * own connection. Each notice is made once whatever the redeliveries, and never about a state the
 * reservation has already left, whatever order the events arrive in.
 */
const staff = await asStaff();
const DAY = 86_400_000;

interface NoticeJson {
  noticeId: number;
  customerId: string;
  reservationId: number;
  kind: string;
  bookId: number;
  bookName: string | null;
  libraryName: string | null;
  deadline: string | null;
  createdAt: string;
  readAt: string | null;
}
interface ListJson {
  items: NoticeJson[];
  total: number;
  unread: number;
  limit: number;
  offset: number;
}

let nextReservation = 70_000;

function envelope<T extends EventType>(type: T, data: EventData<T>): EventEnvelope<T, EventData<T>> {
  return createEnvelope({ type, source: sourceOf(EVENT_CATALOG[type].producer as 'reservation'), subject: String((data as { reservationId: number }).reservationId), data });
}

/** One reservation's events, as the services publish them. */
function lifeOf(customerId: string, options: { pickupBy?: Date; dueAt?: Date } = {}) {
  const reservationId = ++nextReservation;
  const bookId = 9;
  const ids = { reservationId, bookId, customerId };
  const pickupBy = (options.pickupBy ?? new Date(Date.now() + 7 * DAY)).toISOString();
  return {
    reservationId,
    requested: envelope('ReservationRequested', { ...ids, bookName: 'Pachinko', preferredLibraryId: null, status: 'bookReserveReq' }),
    waitlisted: envelope('ReservationWaitlisted', { ...ids, bookName: 'Pachinko', queueTicket: reservationId, status: 'bookWaiting' }),
    granted: envelope('CopyGranted', { ...ids, bookName: 'Pachinko', queueTicket: reservationId, cause: 'released', status: 'bookReserveReq' }),
    accepted: envelope('ReservationAccepted', { ...ids, assignmentId: reservationId, libraryId: 2, libraryName: 'Mapo Library', status: 'bookReserved', pickupBy }),
    cancelRequested: envelope('ReservationCancelRequested', { ...ids, status: 'bookCancel' }),
    canceled: envelope('ReservationCanceled', { ...ids, status: 'bookCanceled' }),
    rejected: envelope('ReservationRejected', { ...ids, bookName: 'Pachinko', status: 'bookOutOfStock', reason: 'no copy left' }),
    assignmentFailed: envelope('ReservationAssignmentFailed', { ...ids, reason: 'no library', status: 'rejected' }),
    checkedOut: envelope('ReservationCheckedOut', { ...ids, libraryId: 2, dueAt: (options.dueAt ?? new Date(Date.now() + 14 * DAY)).toISOString(), status: 'bookLoaned' }),
    returned: envelope('ReservationReturned', { ...ids, libraryId: 2, status: 'bookReturned' }),
    expired: envelope('ReservationExpired', { ...ids, libraryId: 2, pickupBy, status: 'bookExpired' }),
  };
}

/** Every ordering of `items`. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe.each(databaseKinds(10))('notification on %s', (kind, makeDatabase) => {
  let bus: EmbeddedBus;
  let service: NotificationService;
  let notices: BusDriver;
  let db: Kysely<NotificationTables>;
  const clock = new MovableClock();
  const cleanups: (() => Promise<void>)[] = [];
  let cleanup: () => Promise<void> = async () => undefined;
  let made: Awaited<ReturnType<typeof makeDatabase>>;

  beforeAll(async () => {
    const logger = testLogger();
    made = await makeDatabase('notification');
    cleanup = made.cleanup;
    bus = await memoryBus(logger);
    service = await createNotificationService({ database: made.config, bus, logger, auth: await testAuth() }, { clock });
    notices = await BusDriver.start(bus, service);
    db = await made.connect<NotificationTables>();
  });

  afterAll(async () => {
    for (const more of cleanups.splice(0)) await more();
    await service.stop();
    await bus.close();
    await cleanup();
  });

  const list = async (customerId: string, query = '') => {
    const res = await service.app.inject({ method: 'GET', url: `/notifications${query}`, headers: await as(customerId) });
    expect(res.statusCode).toBe(200);
    return res.json<ListJson>();
  };
  /** The kinds of a reservation's notices, from the database (an operator's view), oldest first. */
  const kindsOf = async (reservationId: number) =>
    (await db.selectFrom('notices').select('kind').where('reservation_id', '=', reservationId).orderBy('notice_id').execute()).map((r) => r.kind);

  describe('notices from the lifecycle', () => {
    it('ready for pickup names the library and the deadline; the patron reads it, newest first, with the unread count', async () => {
      const life = lifeOf('nina');
      expect(await notices.deliver(life.requested)).toBe('handled');
      expect(await notices.deliver(life.accepted)).toBe('handled');
      const mine = await list('nina');
      expect(mine.unread).toBe(1);
      expect(mine.items).toEqual([
        expect.objectContaining({
          customerId: 'nina',
          reservationId: life.reservationId,
          kind: 'readyForPickup',
          bookName: 'Pachinko',
          libraryName: 'Mapo Library',
          deadline: life.accepted.data.pickupBy,
          readAt: null,
        }),
      ]);
      const later = lifeOf('nina');
      await notices.deliverAll([later.requested, later.rejected]);
      expect((await list('nina')).items.map((n) => [n.reservationId, n.kind])).toEqual([
        [later.reservationId, 'refused'],
        [life.reservationId, 'readyForPickup'],
      ]);
    });

    it('each notice once: a redelivery is a duplicate, and the same event re-driven under a new id makes no second notice', async () => {
      const life = lifeOf('omar');
      await notices.deliverAll([life.requested, life.accepted]);
      expect(await notices.deliver(life.accepted)).toBe('duplicate');
      expect(await notices.deliver({ ...life.accepted, id: crypto.randomUUID() })).toBe('handled');
      expect(await kindsOf(life.reservationId)).toEqual(['readyForPickup']);
      expect((await list('omar')).unread).toBe(1);
    });

    it('never stale: in every order of accepted, cancel requested and cancelled, "ready for pickup" only when it came before the cancel; "cancelled" once', async () => {
      for (const order of permutations(['accepted', 'cancelRequested', 'canceled'] as const)) {
        const life = lifeOf('pia');
        await notices.deliverAll([life.requested, ...order.map((name) => life[name])]);
        const readyFirst = order.indexOf('accepted') === 0;
        expect(await kindsOf(life.reservationId), order.join(' -> ')).toEqual(readyFirst ? ['readyForPickup', 'cancelled'] : ['cancelled']);
      }
    });

    it('never stale: an expiry or a check-out known before the acceptance leaves no "ready for pickup"', async () => {
      const expiredFirst = lifeOf('quin');
      await notices.deliverAll([expiredFirst.requested, expiredFirst.expired, expiredFirst.accepted]);
      expect(await kindsOf(expiredFirst.reservationId)).toEqual(['expired']);
      const loanedFirst = lifeOf('quin');
      await notices.deliverAll([loanedFirst.checkedOut, loanedFirst.accepted, loanedFirst.requested]);
      expect(await kindsOf(loanedFirst.reservationId)).toEqual([]);
    });

    it('the waiting line: "your turn came" when the copy is granted, then "ready for pickup"; a grant learned after the acceptance tells nothing more', async () => {
      const life = lifeOf('rosa');
      await notices.deliverAll([life.waitlisted, life.granted, life.accepted]);
      expect(await kindsOf(life.reservationId)).toEqual(['turnCame', 'readyForPickup']);
      const late = lifeOf('rosa');
      await notices.deliverAll([late.waitlisted, late.accepted, late.granted]);
      expect(await kindsOf(late.reservationId)).toEqual(['readyForPickup']);
    });

    it('two first events of one reservation on two replicas at once: both merge into its facts, none overwrites the other', async () => {
      // A replica on the same database with a bus of its own: replicas receive different deliveries.
      const replicaBus = await memoryBus();
      const replica = await createNotificationService({ database: made.config, bus: replicaBus, logger: testLogger(), auth: await testAuth() }, { clock });
      const other = await BusDriver.start(replicaBus, replica);
      cleanups.push(async () => {
        await replica.stop();
        await replicaBus.close();
      });
      for (let i = 0; i < 10; i++) {
        const life = lifeOf('ines');
        expect(await Promise.all([notices.deliver(life.accepted), other.deliver(life.cancelRequested)])).toEqual(['handled', 'handled']);
        const facts = await db.selectFrom('reservation_facts').selectAll().where('reservation_id', '=', life.reservationId).executeTakeFirstOrThrow();
        expect(facts).toMatchObject({ status: 'bookCancel', library_name: 'Mapo Library' });
        expect(facts.pickup_by).not.toBeNull();
        expect(await db.selectFrom('reminders').select('kind').where('reservation_id', '=', life.reservationId).execute()).toEqual([]);
      }
    });

    it('refused once, whether book refused it or no library could serve it, or both said so', async () => {
      const life = lifeOf('sam');
      await notices.deliverAll([life.requested, life.assignmentFailed, life.rejected]);
      expect(await kindsOf(life.reservationId)).toEqual(['refused']);
    });
  });

  describe('reminders before a deadline', () => {
    it('pickup tomorrow: due a day before the deadline, sent once, and not at all for a reservation cancelled or picked up meanwhile', async () => {
      const start = Date.now() + clock.offsetMs;
      const kept = lifeOf('tara', { pickupBy: new Date(start + 3 * DAY) });
      const cancelled = lifeOf('tara', { pickupBy: new Date(start + 3 * DAY) });
      const collected = lifeOf('tara', { pickupBy: new Date(start + 3 * DAY) });
      // Other tests' reminders, if any are due, go first: the counts below are this test's.
      await service.operations.sendDueReminders.execute();
      await notices.deliverAll([kept.accepted, cancelled.accepted, cancelled.cancelRequested, collected.accepted, collected.checkedOut]);
      expect(await service.operations.sendDueReminders.execute()).toBe(0);
      clock.offsetMs += 2 * DAY + 60_000;
      expect(await service.operations.sendDueReminders.execute()).toBe(1);
      expect(await service.operations.sendDueReminders.execute()).toBe(0);
      expect(await kindsOf(kept.reservationId)).toEqual(['readyForPickup', 'pickupTomorrow']);
      expect(await kindsOf(cancelled.reservationId)).toEqual(['readyForPickup']);
      expect(await kindsOf(collected.reservationId)).toEqual(['readyForPickup']);
      const reminder = (await list('tara')).items.find((n) => n.kind === 'pickupTomorrow');
      expect(reminder).toMatchObject({ reservationId: kept.reservationId, deadline: kept.accepted.data.pickupBy, libraryName: 'Mapo Library' });
    });

    it('a loan: "due in two days", then "overdue" at the deadline; a return before stops them', async () => {
      const start = Date.now() + clock.offsetMs;
      const loan = lifeOf('uma', { dueAt: new Date(start + 14 * DAY) });
      const returned = lifeOf('uma', { dueAt: new Date(start + 14 * DAY) });
      await notices.deliverAll([loan.accepted, loan.checkedOut, returned.accepted, returned.checkedOut]);
      clock.offsetMs += 5 * DAY;
      await notices.deliver(returned.returned);
      // (Other tests' reminders come due too as the clock moves: each reservation's notices are what is checked.)
      clock.offsetMs += 7 * DAY + 60_000;
      await service.operations.sendDueReminders.execute();
      expect(await kindsOf(loan.reservationId)).toEqual(['readyForPickup', 'loanDueSoon']);
      clock.offsetMs += 2 * DAY;
      await service.operations.sendDueReminders.execute();
      expect(await kindsOf(loan.reservationId)).toEqual(['readyForPickup', 'loanDueSoon', 'overdue']);
      expect(await kindsOf(returned.reservationId)).toEqual(['readyForPickup']);
      expect((await list('uma')).items.find((n) => n.kind === 'overdue')?.deadline).toBe(loan.checkedOut.data.dueAt);
    });

    it('a reminder survives a restart and is sent once whatever the number of replicas sweeping at once', async () => {
      const start = Date.now() + clock.offsetMs;
      const lives = Array.from({ length: 12 }, () => lifeOf('vic', { pickupBy: new Date(start + 2 * DAY) }));
      await notices.deliverAll(lives.map((l) => l.accepted));
      // Replicas on the same database (built after the reminders were scheduled: what a restart finds).
      const replicas: NotificationService[] = [];
      for (let i = 0; i < 3; i++) {
        const replicaBus = await memoryBus();
        const replica = await createNotificationService({ database: made.config, bus: replicaBus, logger: testLogger(), auth: await testAuth() }, { clock });
        replicas.push(replica);
        cleanups.push(async () => {
          await replica.stop();
          await replicaBus.close();
        });
      }
      await service.operations.sendDueReminders.execute();
      clock.offsetMs += DAY + 60_000;
      const sent = await Promise.all([service, ...replicas].map((r) => r.operations.sendDueReminders.execute()));
      expect(sent.reduce((a, b) => a + b, 0)).toBe(12);
      for (const life of lives) expect(await kindsOf(life.reservationId)).toEqual(['readyForPickup', 'pickupTomorrow']);
      const pending = await db.selectFrom('reminders').select('reservation_id').where('reservation_id', 'in', lives.map((l) => l.reservationId)).execute();
      expect(pending).toEqual([]);
    });
  });

  describe('the API', () => {
    it("a patron sees only their own: another's notice is 404 to read or mark; staff read any patron's", async () => {
      const life = lifeOf('wes');
      await notices.deliverAll([life.requested, life.accepted]);
      const [notice] = (await list('wes')).items;
      expect(notice).toBeDefined();
      const id = notice!.noticeId;
      expect((await list('xena')).items.map((n) => n.noticeId)).not.toContain(id);
      for (const request of [
        { method: 'GET' as const, url: `/notifications/${id}` },
        { method: 'PATCH' as const, url: `/notifications/${id}`, payload: { read: true } },
      ]) {
        const res = await service.app.inject({ ...request, headers: await as('xena') });
        expect(res.statusCode).toBe(404);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.json()).toMatchObject({ code: 'NOTICE_NOT_FOUND' });
      }
      expect((await service.app.inject({ method: 'GET', url: `/notifications/${id}`, headers: await as('wes') })).json()).toMatchObject({ noticeId: id, readAt: null });
      const asStaffList = await service.app.inject({ method: 'GET', url: '/notifications?customerId=wes', headers: staff });
      expect(asStaffList.json<ListJson>().items.map((n) => n.noticeId)).toContain(id);
      // Staff reading it do not mark it read for the patron.
      expect((await list('wes')).unread).toBe(1);
    });

    it('marking read: one (once: the first time stays), then all; the unread count and the filter follow', async () => {
      const first = lifeOf('yara');
      const second = lifeOf('yara');
      await notices.deliverAll([first.requested, first.accepted, second.requested, second.rejected]);
      expect((await list('yara')).unread).toBe(2);
      const [newest] = (await list('yara')).items;
      const marked = await service.app.inject({ method: 'PATCH', url: `/notifications/${newest!.noticeId}`, payload: { read: true }, headers: await as('yara') });
      expect(marked.statusCode).toBe(200);
      const readAt = marked.json<NoticeJson>().readAt;
      expect(readAt).not.toBeNull();
      const again = await service.app.inject({ method: 'PATCH', url: `/notifications/${newest!.noticeId}`, payload: { read: true }, headers: await as('yara') });
      expect(again.json<NoticeJson>().readAt).toBe(readAt);
      expect(await list('yara', '?unread=true')).toMatchObject({ total: 1, unread: 1 });
      const all = await service.app.inject({ method: 'POST', url: '/notifications/read', headers: await as('yara') });
      expect(all.json()).toEqual({ marked: 1 });
      expect(await list('yara', '?unread=true')).toMatchObject({ total: 0, unread: 0, items: [] });
      expect((await list('yara')).total).toBe(2);
    });

    it('pages newest first', async () => {
      const lives = Array.from({ length: 5 }, () => lifeOf('zoe'));
      await notices.deliverAll(lives.flatMap((l) => [l.requested, l.rejected]));
      const page = await list('zoe', '?limit=2&offset=1');
      expect(page).toMatchObject({ total: 5, unread: 5, limit: 2, offset: 1 });
      expect(page.items.map((n) => n.reservationId)).toEqual([lives[3]!.reservationId, lives[2]!.reservationId]);
    });

    it('bad input is a 400 problem and changes nothing; no token is 401', async () => {
      const headers = await as('zoe');
      for (const url of ['/notifications?limit=0', '/notifications?limit=101', '/notifications?offset=-1', '/notifications?unread=maybe', '/notifications?color=red', '/notifications/abc', '/notifications/0']) {
        const res = await service.app.inject({ method: 'GET', url, headers });
        expect(res.statusCode, url).toBe(400);
        expect(res.headers['content-type'], url).toMatch(/^application\/problem\+json/);
      }
      const [one] = (await list('zoe')).items;
      for (const payload of [{ read: false }, {}, { read: true, extra: 1 }]) {
        const res = await service.app.inject({ method: 'PATCH', url: `/notifications/${one!.noticeId}`, payload, headers });
        expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      }
      expect((await list('zoe')).unread).toBe(5);
      const anonymous = await service.app.inject({ method: 'GET', url: '/notifications' });
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
    });
  });

  it(`is ready when its database answers (${kind})`, async () => {
    const res = await service.app.inject({ method: 'GET', url: '/health/ready' });
    expect(res.statusCode).toBe(200);
  });
});
