import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.ts';
import { eventually } from './support/harness.ts';
import { startPrivateNats, type PrivateNats } from './support/nats.ts';
import { startPrivateRedis } from './support/redis.ts';
import { client } from './support/system.ts';

/**
 * The whole life of a reservation (issue 18) across real processes: each service its own OS
 * process on PostgreSQL, NATS JetStream and Redis, through the gateway, configured by the same
 * variables an operator sets (BSTORE_PICKUP_PERIOD, BSTORE_LOAN_PERIOD,
 * BSTORE_DEADLINE_SWEEP_INTERVAL_MS). Reserve, wait in line, check out, check in, the copy to the
 * next in line, expiry by the deadline sweep (also after reservation was killed), a waiting cancel.
 */
let nats: PrivateNats;
let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
let cluster: TestCluster;
let librarian: ReturnType<typeof client>;

/** Short enough that the sweep expires a reservation during the test; long enough to check one out first. */
const PICKUP = 'PT4S';

interface Reservation {
  reservationId: number;
  status: string;
  pickupBy: string | null;
  dueAt: string | null;
  queuePosition: number | null;
  libraryName: string | null;
  code?: string;
}

beforeAll(async () => {
  [nats, redis] = await Promise.all([startPrivateNats(), startPrivateRedis()]);
  cluster = await startCluster({
    natsUrl: nats.url,
    redisUrl: redis.url,
    env: { BSTORE_PICKUP_PERIOD: PICKUP, BSTORE_LOAN_PERIOD: 'P3W', BSTORE_DEADLINE_SWEEP_INTERVAL_MS: '300' },
  });
  librarian = client(cluster.gateway, 'librarian', 'staff');
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await Promise.all([nats?.stop(), redis?.stop()]);
});

const get = async (id: number) => (await librarian.call<Reservation>('GET', `/reservations/${id}`)).body;
const becomes = (id: number, status: string) =>
  eventually(`reservation ${id} to become ${status}`, async () => {
    const r = await get(id);
    return r.status === status ? r : undefined;
  }, 60_000);
const desk = (id: number, status: 'bookLoaned' | 'bookReturned') => librarian.call<Reservation>('PATCH', `/reservations/${id}`, { status });

describe('the life of a reservation across processes', () => {
  it('reserve, wait, pick up, return; the next in line gets the copy, does not pick it up, and it expires back to stock', async () => {
    const created = await librarian.createBook('Life across processes', 1);
    expect(created.status).toBe(201);
    const bookId = created.body.bookId;
    const ana = client(cluster.gateway, 'life-ana');
    const ben = client(cluster.gateway, 'life-ben');

    const first = await ana.reserve(bookId);
    expect(first.status).toBe(201);
    const anaId = first.body.reservationId;
    const reserved = await becomes(anaId, 'bookReserved');
    // Assignment read BSTORE_PICKUP_PERIOD: the deadline is seconds away, not the default week.
    expect(Date.parse(reserved.pickupBy!) - Date.now()).toBeLessThan(60_000);

    const waiting = await ben.reserve(bookId, { waitlist: true });
    expect(waiting.status).toBe(201);
    expect(waiting.body).toMatchObject({ status: 'bookWaiting', queuePosition: 1 });
    const benId = waiting.body.reservationId;
    // The read model shows the place in line too.
    const page = await eventually('ben\'s page in line', async () => {
      const p = await ben.call<{ status: string; queuePosition: number | null }>('GET', `/reservationPages/${benId}`);
      return p.status === 200 && p.body.status === 'bookWaiting' ? p.body : undefined;
    });
    expect(page.queuePosition).toBe(1);

    // The desk: a patron may not check out; the librarian does, before the deadline sweep expires it.
    expect((await ana.call('PATCH', `/reservations/${anaId}`, { status: 'bookLoaned' })).status).toBe(403);
    const out = await desk(anaId, 'bookLoaned');
    if (out.status === 409) {
      // The machine was slow enough for the sweep to expire it first: a legitimate outcome, then ben gets the copy.
      expect(out.body).toMatchObject({ code: 'RESERVATION_NOT_AWAITING_PICKUP' });
      expect((await get(anaId)).status).toBe('bookExpired');
    } else {
      expect(out.status).toBe(200);
      expect(out.body.status).toBe('bookLoaned');
      // BSTORE_LOAN_PERIOD=P3W.
      expect(Date.parse(out.body.dueAt!) - Date.now()).toBeGreaterThan(20 * 86_400_000);
      const back = await desk(anaId, 'bookReturned');
      expect(back.status).toBe(200);
      expect(back.body.status).toBe('bookReturned');
    }

    // Ben was first in line: granted, assigned, with his own deadline; he does not come, and it expires.
    const benReserved = await becomes(benId, 'bookReserved');
    expect(benReserved.pickupBy).not.toBeNull();
    await becomes(benId, 'bookExpired');
    // Nobody waits: the copy is back in stock.
    await eventually('the copy back in stock', async () => ((await librarian.book(bookId)).body.quantity === 1 ? true : undefined), 60_000);
    const timeline = await eventually('ben\'s page to show the expiry', async () => {
      const p = await ben.page(benId);
      return p.status === 200 && p.body.status === 'bookExpired' ? p.body.timeline.map((e) => e.eventType) : undefined;
    });
    expect(timeline).toEqual(expect.arrayContaining(['ReservationWaitlisted', 'CopyGranted', 'ReservationRequested', 'ReservationAccepted', 'ReservationExpired']));
  });

  it('the deadline sweep survives a kill -9 of reservation: a copy due while it was down expires after the restart', async () => {
    const bookId = (await librarian.createBook('Life after a crash', 1)).body.bookId;
    const cy = client(cluster.gateway, 'life-cy');
    const id = (await cy.reserve(bookId)).body.reservationId;
    const { pickupBy } = await becomes(id, 'bookReserved');
    cluster.services.reservation.signal('SIGKILL');
    await cluster.services.reservation.exited;
    // Down past the deadline.
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(pickupBy!) - Date.now()) + 500));
    await cluster.restart('reservation');
    await becomes(id, 'bookExpired');
    await eventually('the copy back in stock', async () => ((await librarian.book(bookId)).body.quantity === 1 ? true : undefined), 60_000);
  });

  it('a waiting reservation cancelled by its patron ends bookCanceled and takes no copy; one of the same book twice is refused', async () => {
    const bookId = (await librarian.createBook('Life in line', 0)).body.bookId;
    const dee = client(cluster.gateway, 'life-dee');
    const placed = await dee.reserve(bookId, { waitlist: true });
    expect(placed.body).toMatchObject({ status: 'bookWaiting', queuePosition: 1 });
    const twice = await dee.reserve(bookId, { waitlist: true });
    expect(twice.status).toBe(409);
    expect(twice.body).toMatchObject({ code: 'ACTIVE_RESERVATION_EXISTS', reservationId: placed.body.reservationId });
    expect((await dee.cancel(placed.body.reservationId)).status).toBe(202);
    await becomes(placed.body.reservationId, 'bookCanceled');
    // A copy added now is not granted to the cancelled reservation: it stays in stock.
    const added = await librarian.call<{ quantity: number; copies: number }>('POST', `/books/${bookId}/copies`, { delta: 1 });
    expect(added.status).toBe(200);
    expect(added.body).toMatchObject({ quantity: 1, copies: 1 });
    expect((await get(placed.body.reservationId)).status).toBe('bookCanceled');
  });
});
