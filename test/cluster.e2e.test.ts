import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope, sourceOf, subjectOf } from '@bstore/contracts';
import { as } from './support/auth.ts';
import { startCluster, type TestCluster } from './support/cluster.ts';
import { eventually } from './support/harness.ts';
import { checkInvariants } from './support/invariants.ts';
import { startPrivateNats, type PrivateNats } from './support/nats.ts';
import { startPrivateRedis } from './support/redis.ts';
import { client } from './support/system.ts';

/**
 * Cluster mode for real: each service its own OS process, on PostgreSQL (a database per service),
 * NATS JetStream and Redis. NATS and Redis are this test's own servers, so it can stop them.
 * The fault drills follow the seed's fault-isolation requirement: with assignment down, or the
 * bus down, reservations keep being accepted, and nothing is lost when it returns.
 */
let nats: PrivateNats;
let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
let cluster: TestCluster;
let librarian: ReturnType<typeof client>;
const acknowledged: number[] = [];
const canceled: number[] = [];

beforeAll(async () => {
  [nats, redis] = await Promise.all([startPrivateNats(), startPrivateRedis()]);
  cluster = await startCluster({
    natsUrl: nats.url,
    redisUrl: redis.url,
    env: { BSTORE_SWEEP_INTERVAL_MS: '1000', BSTORE_PENDING_STALE_AFTER_MS: '3000' },
  });
  librarian = client(cluster.gateway, 'librarian', 'staff');
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await Promise.all([nats?.stop(), redis?.stop()]);
});

async function createBook(name: string, quantity: number): Promise<number> {
  const res = await librarian.createBook(name, quantity);
  expect(res.status).toBe(201);
  return res.body.bookId;
}

/** `count` reservations of one book by as many patrons, `concurrency` at a time; every answer kept. */
async function reserveMany(bookId: number, count: number, prefix: string, concurrency = 10) {
  const answers: { status: number; body: { reservationId: number; status: string } }[] = [];
  for (let start = 0; start < count; start += concurrency) {
    const batch = Array.from({ length: Math.min(concurrency, count - start) }, (_, i) => client(cluster.gateway, `${prefix}-${start + i}`).reserve(bookId));
    answers.push(...(await Promise.all(batch)));
  }
  return answers;
}

async function allBecome(ids: number[], status: string, timeoutMs = 60_000) {
  await eventually(
    `${ids.length} reservations to become ${status}`,
    async () => {
      const states = await Promise.all(ids.map((id) => librarian.reservation(id)));
      return states.every((s) => s.body.status === status) ? true : undefined;
    },
    timeoutMs,
  );
}

async function quiet() {
  await eventually(
    'the system to go quiet with every invariant holding',
    async () => {
      const violations = await checkInvariants(cluster.databases(), { acknowledged, canceled });
      return violations.length === 0 ? true : undefined;
    },
    60_000,
  );
  expect(await checkInvariants(cluster.databases(), { acknowledged, canceled })).toEqual([]);
}

describe('cluster mode: five processes on PostgreSQL, NATS JetStream and Redis', () => {
  it('runs every service as its own process, each ready with its database, bus and (customercenter) Redis', async () => {
    const pids = new Set(Object.values(cluster.services).map((s) => s.pid));
    expect(pids.size).toBe(6);
    expect(pids.has(process.pid)).toBe(false);
    for (const service of Object.values(cluster.services)) {
      const res = await fetch(`${service.url}/health/ready`);
      expect(res.status, service.name).toBe(200);
      const body = (await res.json()) as { checks: Record<string, string> };
      if (service.name === 'customercenter') expect(body.checks).toMatchObject({ redis: 'up', bus: 'up' });
      else if (service.name !== 'gateway') expect(body.checks).toMatchObject({ database: 'up', bus: 'up' });
    }
  });

  it('runs the whole saga across processes: reserve -> bookReserved with a library -> cancel -> bookCanceled, stock restored', async () => {
    const alice = client(cluster.gateway, 'alice');
    const bookId = await createBook('Cluster Saga Book', 2);
    const reserved = await alice.reserve(bookId);
    expect(reserved.status).toBe(201);
    expect(reserved.body.status).toBe('bookReserveReq');
    const id = reserved.body.reservationId;
    acknowledged.push(id);

    const page = await eventually('the page to show bookReserved', async () => {
      const p = await alice.page(id);
      return p.status === 200 && p.body.status === 'bookReserved' ? p.body : undefined;
    });
    expect(page.libraryName).toEqual(expect.any(String));
    expect(page.timeline.map((e) => e.service)).toEqual(expect.arrayContaining(['reservation', 'assignment']));
    expect((await alice.book(bookId)).body.quantity).toBe(1);

    expect((await alice.cancel(id)).status).toBe(202);
    canceled.push(id);
    await allBecome([id], 'bookCanceled');
    await eventually('the copy to come back', async () => ((await alice.book(bookId)).body.quantity === 2 ? true : undefined));
    await eventually('the page to show bookCanceled', async () => ((await alice.page(id)).body.status === 'bookCanceled' ? true : undefined));
    await quiet();
  });

  it('streams the page live over SSE through the gateway, from Redis pub/sub, without polling', async () => {
    const controller = new AbortController();
    const res = await fetch(`${cluster.gateway}/reservationPages/stream`, { headers: await as('sse-patron'), signal: controller.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    try {
      const bookId = await createBook('Live Stream Book', 1);
      const reserved = await client(cluster.gateway, 'sse-patron').reserve(bookId);
      expect(reserved.status).toBe(201);
      acknowledged.push(reserved.body.reservationId);
      let text = '';
      const seen: { reservationId: number; status: string }[] = [];
      const deadline = Date.now() + 30_000;
      while (!seen.some((p) => p.reservationId === reserved.body.reservationId && p.status === 'bookReserved')) {
        if (Date.now() > deadline) throw new Error(`no bookReserved on the stream; got: ${text.slice(-2000)}`);
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended');
        text += decoder.decode(value, { stream: true });
        const messages = text.split('\n\n');
        text = messages.pop() ?? '';
        for (const m of messages) {
          const data = m.split('\n').find((l) => l.startsWith('data: '));
          if (m.includes('event: reservationPage') && data) seen.push(JSON.parse(data.slice(6)) as { reservationId: number; status: string });
        }
      }
      // Only the patron's own pages, and the saga's steps in order.
      expect(new Set(seen.map((p) => p.reservationId))).toEqual(new Set([reserved.body.reservationId]));
      expect(seen.map((p) => p.status).at(-1)).toBe('bookReserved');
    } finally {
      controller.abort();
      await reader.cancel().catch(() => undefined);
    }
  });

  it('keeps accepting reservations while assignment is frozen (SIGSTOP); all become bookReserved after it resumes, none assigned twice', async () => {
    const bookId = await createBook('Frozen Assignment Book', 150);
    const assignment = cluster.services.assignment;
    assignment.signal('SIGSTOP');
    let answers;
    try {
      answers = await reserveMany(bookId, 100, 'stop');
      // Frozen, assignment could not have assigned any of them.
      const states = await Promise.all(answers.map((a) => librarian.reservation(a.body.reservationId)));
      expect(new Set(states.map((st) => st.body.status))).toEqual(new Set(['bookReserveReq']));
    } finally {
      assignment.signal('SIGCONT');
    }
    expect(answers.map((a) => a.status)).toEqual(Array(100).fill(201));
    expect(new Set(answers.map((a) => a.body.status))).toEqual(new Set(['bookReserveReq']));
    const ids = answers.map((a) => a.body.reservationId);
    acknowledged.push(...ids);

    await allBecome(ids, 'bookReserved', 120_000);
    expect((await librarian.book(bookId)).body.quantity).toBe(50);
    await quiet();
  });

  it('keeps accepting reservations while assignment is dead (kill -9); after a restart all become bookReserved, none lost or assigned twice', async () => {
    const bookId = await createBook('Killed Assignment Book', 150);
    const assignment = cluster.services.assignment;
    assignment.signal('SIGKILL');
    expect(await assignment.exited).toBe('SIGKILL');

    const answers = await reserveMany(bookId, 100, 'kill');
    expect(answers.map((a) => a.status)).toEqual(Array(100).fill(201));
    const ids = answers.map((a) => a.body.reservationId);
    acknowledged.push(...ids);
    // Nothing could be assigned meanwhile.
    const states = await Promise.all(ids.map((id) => librarian.reservation(id)));
    expect(new Set(states.map((s) => s.body.status))).toEqual(new Set(['bookReserveReq']));

    await cluster.restart('assignment');
    await allBecome(ids, 'bookReserved', 120_000);
    expect((await librarian.book(bookId)).body.quantity).toBe(50);
    await quiet();
  });

  it('accepts reservations while NATS is down for ten seconds (the outbox holds them); all flow once it returns', async () => {
    const bookId = await createBook('Bus Outage Book', 100);
    await nats.halt();
    const answers: Awaited<ReturnType<typeof reserveMany>> = [];
    const outageEnds = Date.now() + 10_000;
    try {
      for (let round = 0; Date.now() < outageEnds && round < 50; round++) {
        answers.push(...(await reserveMany(bookId, 5, `outage-${round}`, 5)));
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      await nats.restart();
    }
    expect(answers.length).toBeGreaterThanOrEqual(10);
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([201]));
    const ids = answers.map((a) => a.body.reservationId);
    acknowledged.push(...ids);

    await allBecome(ids, 'bookReserved', 120_000);
    await eventually('every page to show bookReserved', async () => {
      const pages = await Promise.all(ids.map((id) => librarian.page(id)));
      return pages.every((p) => p.body.status === 'bookReserved') ? true : undefined;
    });
    await quiet();
  });

  it('parks a malformed event on the bus as a dead letter in the consumer database, and goes on with the events behind it', async () => {
    const nc = await connect({ servers: nats.url });
    try {
      // A ReservationRequested whose data breaks the contract, straight onto the stream.
      const bad = createEnvelope({
        type: 'ReservationRequested',
        source: sourceOf('reservation'),
        subject: '999999',
        data: { reservationId: 999_999, bookId: 'not-a-number' },
      });
      const ack = await nc.request(subjectOf('ReservationRequested'), JSON.stringify(bad), { timeout: 5000 });
      expect(ack.string()).toContain('"seq"');
      const db = cluster.databases().assignment;
      await eventually('the dead letter in assignment', async () => {
        const row = await db.selectFrom('dead_letters').selectAll().where('event_id', '=', bad.id).executeTakeFirst();
        return row ?? undefined;
      });
      const letter = await db.selectFrom('dead_letters').selectAll().where('event_id', '=', bad.id).executeTakeFirstOrThrow();
      expect(letter.consumer).toBe('assignment');
      expect(letter.error).toMatch(/data|invalid|bookId/i);

      // Not even JSON: parked with its raw text.
      const raw = await nc.request(subjectOf('ReservationRequested'), 'this is not an event', { timeout: 5000 });
      const seq = (JSON.parse(raw.string()) as { seq: number }).seq;
      const unparseable = await eventually('the unparseable message parked', async () =>
        db.selectFrom('dead_letters').selectAll().where('event_id', '=', `nats-${seq}`).executeTakeFirst(),
      );
      expect(unparseable.event_type).toBe('unparseable');
      expect(JSON.stringify(unparseable.envelope)).toContain('this is not an event');
    } finally {
      await nc.close();
    }
    // The consumer is not blocked: a reservation made after it is assigned.
    const bookId = await createBook('After Poison Book', 1);
    const res = await client(cluster.gateway, 'after-poison').reserve(bookId);
    expect(res.status).toBe(201);
    acknowledged.push(res.body.reservationId);
    await allBecome([res.body.reservationId], 'bookReserved');
    await quiet();
  });
});
