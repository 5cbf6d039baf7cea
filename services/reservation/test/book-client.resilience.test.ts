import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedBus } from '@bstore/platform';
import type { Kysely } from 'kysely';
import { createBookService, type BookService, type BookTables } from '@bstore/book';
import { createReservationService, type ReservationConfig, type ReservationService, type ReservationTables } from '@bstore/reservation';
import { eventually, memoryBus, testLogger } from '../../../test/support/harness.ts';
import { BusDriver } from '../../../test/support/bus-driver.ts';
import { memoryDatabase, type TestDatabase } from '../../../test/support/postgres.ts';
import { freePort } from '../../../test/support/process.ts';
import { as, asStaff, testAuth } from '../../../test/support/auth.ts';

/**
 * The call reservation -> book through its resilience policy (ADR 0013): bulkhead, retries of
 * transient failures, circuit breaker, timeouts. Real HTTP on loopback throughout: a real book
 * service where holds matter, and fake book servers (book is the external dependency at this
 * boundary) where only the answers do. Each case has its own reservation service, so its own circuit.
 * PGlite only: nothing here depends on overlapping transactions, which the component suite covers.
 */

const logger = testLogger();
const staff = await asStaff();
const auth = await testAuth();
let bus: EmbeddedBus;

type Respond = (req: IncomingMessage, body: string, res: ServerResponse) => void | Promise<void>;

/** A book server on loopback whose answers a test chooses, counting what it receives. */
class FakeBook {
  requests = 0;
  inFlight = 0;
  maxInFlight = 0;
  url = '';
  respond: Respond;
  readonly #server: Server;

  constructor(respond: Respond) {
    this.respond = respond;
    this.#server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        this.requests += 1;
        this.inFlight += 1;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        res.on('close', () => (this.inFlight -= 1));
        Promise.resolve(this.respond(req, body, res)).catch(() => res.destroy());
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Answers at once: nothing to await. */
type RespondNow = (req: IncomingMessage, body: string, res: ServerResponse) => void;

const json = (status: number, body: object): RespondNow => (_req, _body, res) => {
  res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' }).end(JSON.stringify(body));
};
const problem = (status: number, code: string) => json(status, { type: `urn:bstore:problem:${code.toLowerCase()}`, title: 'x', status, detail: code, code });
/** A successful hold, as book answers it. */
const held: Respond = (req, _body, res) => {
  const [, , bookId, , reservationId] = (req.url ?? '').split('/');
  json(201, { reservationId: Number(reservationId), bookId: Number(bookId), bookName: 'Fake Book', quantity: 1, status: 'held' })(req, '', res);
};
/** Passes the request to a real book and its answer back, `delayMs` later. */
const forwardTo = (bookUrl: string, delayMs = 0): Respond => async (req, body, res) => {
  // With reservation's service token: book's hold route takes nothing else.
  const answer = await fetch(`${bookUrl}${req.url}`, { method: req.method, headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' }, body });
  const text = await answer.text();
  if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' }).end(text);
};

/** Where timing is not the point, an attempt timeout no loaded test machine reaches. */
const NO_TIMING = { bookTimeoutMs: 20_000 };

const services: ReservationService[] = [];
/** The in-memory databases this file gave its services, removed once those stopped. */
const databases: TestDatabase[] = [];
/** The test's own connection to each reservation service's database (an operator's view of it). */
const reservationDbs = new Map<ReservationService, Kysely<ReservationTables>>();

async function reservationFor(bookUrl: string | readonly string[], config: Partial<ReservationConfig> = {}): Promise<ReservationService> {
  const database = await memoryDatabase();
  databases.push(database);
  const svc = await createReservationService({ database: database.config, bus, logger, auth }, { bookUrl, ...config });
  services.push(svc);
  reservationDbs.set(svc, await database.connect<ReservationTables>());
  return svc;
}

/** The test's connection to `svc`'s database. */
function dbOf(svc: ReservationService): Kysely<ReservationTables> {
  const db = reservationDbs.get(svc);
  if (!db) throw new Error('not a reservation service of this file');
  return db;
}

/** A real book service on its own in-memory database, with the test's connection to that database. */
async function realBookService(): Promise<{ book: BookService; db: Kysely<BookTables> }> {
  const database = await memoryDatabase();
  databases.push(database);
  const book = await createBookService({ database: database.config, bus, logger, auth }, { maxHeldCopiesPerCustomer: 1000 });
  return { book, db: await database.connect<BookTables>() };
}

let customer = 0;
const reserve = async (svc: ReservationService, bookId = 1) => {
  const patron = `patron-${++customer}`;
  return svc.app.inject({ method: 'POST', url: '/reservations', payload: { bookId }, headers: await as(patron) });
};

const rowCount = async (svc: ReservationService, table: 'reservations' | 'outbox') =>
  Number((await dbOf(svc).selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

const readiness = async (svc: ReservationService) => {
  const res = await svc.app.inject({ method: 'GET', url: '/health/ready' });
  return { statusCode: res.statusCode, body: res.json<{ status: string; checks: Record<string, string> }>() };
};

/** The value of one series in the Prometheus text of GET /metrics, or undefined when it is absent. */
async function metric(svc: ReservationService, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const text = (await svc.app.inject({ method: 'GET', url: '/metrics' })).body;
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(m[3]);
  }
  return undefined;
}
const calls = async (svc: ReservationService, outcome: string) => (await metric(svc, 'bstore_book_calls_total', { outcome })) ?? 0;
const circuitGauge = (svc: ReservationService) => metric(svc, 'bstore_circuit_state', { service: 'reservation', target: 'book' });

beforeAll(async () => {
  bus = await memoryBus(logger);
});

afterAll(async () => {
  for (const svc of services.splice(0)) await svc.stop();
  await bus.close();
  for (const database of databases.splice(0)) await database.cleanup();
});

describe('the circuit breaker', () => {
  let failing: FakeBook;

  beforeAll(async () => {
    failing = await new FakeBook(problem(503, 'SERVICE_STARTING')).start();
  });

  afterAll(async () => {
    await failing.stop();
  });

  it('opens after consecutive failures; then POST answers 503 BOOK_CIRCUIT_OPEN, stores nothing and book hears nothing; readiness shows it and stays 200', async () => {
    const svc = await reservationFor(failing.url, { bookRetries: 0, bookCircuitThreshold: 3, bookCircuitHalfOpenAfterMs: 60_000, ...NO_TIMING });
    expect(await readiness(svc)).toMatchObject({ statusCode: 200, body: { status: 'up', checks: { database: 'up', bookCircuit: 'closed' } } });
    expect(await circuitGauge(svc)).toBe(0);

    for (let i = 0; i < 3; i += 1) {
      const res = await reserve(svc);
      expect(res.statusCode).toBe(503);
      const body = res.json<{ code: string; reservationId: number; reservationStatus: string }>();
      expect(body).toMatchObject({ code: 'BOOK_SERVICE_UNAVAILABLE', service: 'book', reservationStatus: 'rejected' });
    }
    expect(failing.requests).toBe(3);
    const rejected = await dbOf(svc).selectFrom('reservations').select('status').execute();
    expect(rejected.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);

    // Readiness reports the open circuit and still passes: the service itself is healthy.
    expect(await readiness(svc)).toMatchObject({ statusCode: 200, body: { status: 'up', checks: { database: 'up', bookCircuit: 'open' } } });

    const rowsBefore = await rowCount(svc, 'reservations');
    const outboxBefore = await rowCount(svc, 'outbox');
    const res = await reserve(svc);
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toContain('application/problem+json');
    const body = res.json<Record<string, unknown>>();
    expect(body).toMatchObject({ type: 'urn:bstore:problem:book-circuit-open', status: 503, code: 'BOOK_CIRCUIT_OPEN', service: 'book', instance: '/reservations' });
    expect(body).not.toHaveProperty('reservationId');
    const retryAfter = Number(res.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Nothing stored, nothing to compensate, and no request reached book.
    expect(await rowCount(svc, 'reservations')).toBe(rowsBefore);
    expect(await rowCount(svc, 'outbox')).toBe(outboxBefore);
    expect(failing.requests).toBe(3);

    expect(await circuitGauge(svc)).toBe(2);
    expect(await calls(svc, 'failed')).toBe(3);
    expect(await calls(svc, 'circuit_open')).toBe(1);
    expect(await metric(svc, 'bstore_book_call_duration_seconds_count', { outcome: 'failed' })).toBe(3);
  });

  it('while the circuit is open, the recovery sweep leaves pending reservations alone: no call, no attempt counted, not rejected', async () => {
    const svc = await reservationFor(failing.url, { bookRetries: 0, bookCircuitThreshold: 1, bookCircuitHalfOpenAfterMs: 60_000, staleAfterMs: 0, maxHoldAttempts: 1, ...NO_TIMING });
    expect((await reserve(svc)).statusCode).toBe(503); // opens the circuit
    const requests = failing.requests;
    // What a crash between storing `pending` and calling book leaves, long ago, at its last attempt.
    const old = new Date(Date.now() - 3_600_000);
    const row = await dbOf(svc)
      .insertInto('reservations')
      .values({ book_id: 1, customer_id: 'sweep', preferred_library_id: null, status: 'pending', book_name: null, library_id: null, library_name: null, reject_reason: null, attempts: 1, created_at: old, updated_at: old })
      .returning('reservation_id')
      .executeTakeFirstOrThrow();
    expect(await svc.operations.recoverPending.execute()).toBe(0);
    const after = await dbOf(svc).selectFrom('reservations').select(['status', 'attempts']).where('reservation_id', '=', row.reservation_id).executeTakeFirstOrThrow();
    expect(after).toEqual({ status: 'pending', attempts: 1 });
    expect(failing.requests).toBe(requests);
  });

  it('half-open: a failed probe opens it again; once book recovers, one probe closes it', async () => {
    const book = await new FakeBook(problem(503, 'SERVICE_STARTING')).start();
    try {
      const svc = await reservationFor(book.url, { bookRetries: 0, bookCircuitThreshold: 2, bookCircuitHalfOpenAfterMs: 300, ...NO_TIMING });
      for (let i = 0; i < 2; i += 1) expect((await reserve(svc)).json()).toMatchObject({ code: 'BOOK_SERVICE_UNAVAILABLE' });
      expect((await readiness(svc)).body.checks.bookCircuit).toBe('open');
      expect((await reserve(svc)).json()).toMatchObject({ code: 'BOOK_CIRCUIT_OPEN' });
      expect(book.requests).toBe(2);

      // After the open period one request goes through as the probe; book still fails, so it opens again.
      const probe = await eventually('a probe to be let through', async () => {
        const res = await reserve(svc);
        return res.json<{ code?: string }>().code === 'BOOK_CIRCUIT_OPEN' ? undefined : res;
      });
      expect(probe.statusCode).toBe(503);
      expect(probe.json()).toMatchObject({ code: 'BOOK_SERVICE_UNAVAILABLE', reservationStatus: 'rejected' });
      expect(book.requests).toBe(3);
      expect((await readiness(svc)).body.checks.bookCircuit).toBe('open');
      expect(await circuitGauge(svc)).toBe(2);

      // Book recovers: the next probe succeeds and closes the circuit.
      book.respond = held;
      const recovered = await eventually('a successful probe', async () => {
        const res = await reserve(svc);
        return res.json<{ code?: string }>().code === 'BOOK_CIRCUIT_OPEN' ? undefined : res;
      });
      expect(recovered.statusCode).toBe(201);
      expect(recovered.json()).toMatchObject({ status: 'bookReserveReq', bookName: 'Fake Book' });
      expect(await readiness(svc)).toMatchObject({ statusCode: 200, body: { status: 'up', checks: { database: 'up', bookCircuit: 'closed' } } });
      expect(await circuitGauge(svc)).toBe(0);
      expect((await reserve(svc)).statusCode).toBe(201);
      expect(book.requests).toBe(5);

      // Only the answers that reached book stored a reservation: 3 rejected, 2 held.
      const rows = await dbOf(svc).selectFrom('reservations').select('status').orderBy('reservation_id').execute();
      expect(rows.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'bookReserveReq', 'bookReserveReq']);
      expect(await calls(svc, 'held')).toBe(2);
      expect(await calls(svc, 'failed')).toBe(3);
      expect(await calls(svc, 'circuit_open')).toBeGreaterThanOrEqual(1);
    } finally {
      await book.stop();
    }
  });

  it('business answers are not failures: out of stock, unknown book and a released hold leave it closed', async () => {
    const answers = [problem(409, 'BOOK_OUT_OF_STOCK'), problem(404, 'BOOK_NOT_FOUND'), problem(409, 'HOLD_RELEASED')];
    let next = 0;
    const book = await new FakeBook((req, body, res) => answers[next++ % answers.length]!(req, body, res)).start();
    try {
      const svc = await reservationFor(book.url, { bookCircuitThreshold: 2, ...NO_TIMING });
      const codes: string[] = [];
      for (let i = 0; i < 6; i += 1) codes.push((await reserve(svc)).json<{ code: string }>().code);
      expect(codes).toEqual(['BOOK_OUT_OF_STOCK', 'BOOK_NOT_FOUND', 'BOOK_SERVICE_UNAVAILABLE', 'BOOK_OUT_OF_STOCK', 'BOOK_NOT_FOUND', 'BOOK_SERVICE_UNAVAILABLE']);
      // Not retried either: one request per reservation.
      expect(book.requests).toBe(6);
      expect((await readiness(svc)).body.checks.bookCircuit).toBe('closed');
      expect(await calls(svc, 'out_of_stock')).toBe(2);
      expect(await calls(svc, 'book_not_found')).toBe(2);
      expect(await calls(svc, 'hold_released')).toBe(2);
    } finally {
      await book.stop();
    }
  });
});

describe('retries', () => {
  let realBook: BookService;
  let bookDb: Kysely<BookTables>;

  beforeAll(async () => {
    ({ book: realBook, db: bookDb } = await realBookService());
    await realBook.start({ port: 0, consumers: false });
  });

  afterAll(async () => {
    await realBook.stop();
  });

  it('one transient 503 is retried, and the reservation holds exactly one copy', async () => {
    const created = await realBook.app.inject({ method: 'POST', url: '/books', payload: { bookName: 'Retried', quantity: 2 }, headers: staff });
    const { bookId } = created.json<{ bookId: number }>();
    let first = true;
    const proxy = await new FakeBook((req, body, res) => {
      if (first) {
        first = false;
        return problem(503, 'SERVICE_STARTING')(req, body, res);
      }
      return forwardTo(realBook.url)(req, body, res);
    }).start();
    try {
      const svc = await reservationFor(proxy.url, NO_TIMING);
      const res = await reserve(svc, bookId);
      expect(res.statusCode).toBe(201);
      const { reservationId } = res.json<{ reservationId: number }>();
      expect(proxy.requests).toBe(2);
      const holds = await bookDb.selectFrom('holds').select(['reservation_id', 'status']).where('book_id', '=', bookId).execute();
      expect(holds).toEqual([{ reservation_id: reservationId, status: 'held' }]);
      expect((await realBook.app.inject({ method: 'GET', url: `/books/${bookId}` })).json()).toMatchObject({ quantity: 1 });
      expect(await metric(svc, 'bstore_book_call_retries_total')).toBe(1);
      expect(await calls(svc, 'held')).toBe(1);
      expect((await readiness(svc)).body.checks.bookCircuit).toBe('closed');
    } finally {
      await proxy.stop();
    }
  });

  it('a 500 is not retried (not known to be transient), and ends in rejected', async () => {
    const book = await new FakeBook(problem(500, 'INTERNAL_ERROR')).start();
    try {
      const svc = await reservationFor(book.url, NO_TIMING);
      const res = await reserve(svc);
      expect(res.json()).toMatchObject({ code: 'BOOK_SERVICE_UNAVAILABLE', reservationStatus: 'rejected' });
      expect(book.requests).toBe(1);
      expect(await metric(svc, 'bstore_book_call_retries_total')).toBe(0);
    } finally {
      await book.stop();
    }
  });
});

describe('timeouts stay indeterminate', () => {
  let realBook: BookService;
  let bookDb: Kysely<BookTables>;

  beforeAll(async () => {
    ({ book: realBook, db: bookDb } = await realBookService());
    // Its consumer is started by the test: book hears reservation's events only when the test delivers them.
    await realBook.start({ port: 0, consumers: false });
  });

  afterAll(async () => {
    await realBook.stop();
  });

  it('book takes the copy but answers after the timeout, on every attempt: rejected, and its ReservationRejected gives the copy back', async () => {
    const created = await realBook.app.inject({ method: 'POST', url: '/books', payload: { bookName: 'Too Slow', quantity: 1 }, headers: staff });
    const { bookId } = created.json<{ bookId: number }>();
    const quantity = async () => (await realBook.app.inject({ method: 'GET', url: `/books/${bookId}` })).json<{ quantity: number }>().quantity;
    const slow = await new FakeBook(forwardTo(realBook.url, 1500)).start();
    try {
      const svc = await reservationFor(slow.url, { bookTimeoutMs: 300, bookRetries: 1 });
      const res = await reserve(svc, bookId);
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: 'BOOK_SERVICE_UNAVAILABLE', service: 'book', reservationStatus: 'rejected' });
      const { reservationId } = res.json<{ reservationId: number }>();
      // The timeout was retried (the hold is idempotent): two requests, one copy taken.
      expect(slow.requests).toBe(2);
      await eventually('book to have answered both attempts', async () => (slow.inFlight === 0 ? true : undefined));
      const holds = await bookDb.selectFrom('holds').select('status').where('reservation_id', '=', reservationId).execute();
      expect(holds.map((h) => h.status)).toEqual(['held']);
      expect(await quantity()).toBe(0);
      expect(await calls(svc, 'timeout')).toBe(1);
      expect(await metric(svc, 'bstore_book_call_retries_total')).toBe(1);

      const row = await dbOf(svc).selectFrom('reservations').select('status').where('reservation_id', '=', reservationId).executeTakeFirstOrThrow();
      expect(row.status).toBe('rejected');
      const outbox = await dbOf(svc).selectFrom('outbox').select(['type', 'envelope']).execute();
      expect(outbox.map((o) => o.type)).toEqual(['ReservationRejected']);
      // The compensation, as the relay would publish it, reaches book through the bus and releases the copy.
      const books = await BusDriver.start(bus, realBook);
      expect(await books.deliver(outbox[0]!.envelope)).toBe('handled');
      expect(await quantity()).toBe(1);
      const after = await bookDb.selectFrom('holds').select('status').where('reservation_id', '=', reservationId).execute();
      expect(after.map((h) => h.status)).toEqual(['released']);
    } finally {
      await slow.stop();
    }
  });
});

describe('the bulkhead', () => {
  it('lets 2 calls run and 1 wait; the calls beyond are refused at once without reaching book', async () => {
    const waiting: (() => void)[] = [];
    const book = await new FakeBook((req, body, res) => void waiting.push(() => void held(req, body, res))).start();
    try {
      const svc = await reservationFor(book.url, { bookMaxConcurrentCalls: 2, bookMaxQueuedCalls: 1, bookRetries: 0, ...NO_TIMING });
      const settled: number[] = [];
      const answers = Array.from({ length: 5 }, (_, i) =>
        reserve(svc).then((res) => {
          settled.push(i);
          return res;
        }),
      );
      await eventually('two calls to reach book', async () => (book.inFlight === 2 ? true : undefined));
      // Two calls run, one waits in the queue, two were refused: they answer while book still holds the others.
      await eventually('the refused calls to answer', async () => (settled.length === 2 ? true : undefined));
      const refused = await Promise.all(settled.map((i) => answers[i]!));
      for (const res of refused) {
        expect(res.statusCode).toBe(503);
        expect(res.json()).toMatchObject({ code: 'BOOK_SERVICE_UNAVAILABLE', reservationStatus: 'rejected' });
      }
      expect(book.requests).toBe(2);

      // Book answers: the two running calls finish, and the queued one goes through.
      book.respond = held;
      for (const release of waiting.splice(0)) release();
      const all = await Promise.all(answers);
      expect(all.map((r) => r.statusCode).sort()).toEqual([201, 201, 201, 503, 503]);
      expect(book.requests).toBe(3);
      expect(book.maxInFlight).toBe(2);
      expect(await calls(svc, 'bulkhead_full')).toBe(2);
      expect(await calls(svc, 'held')).toBe(3);
      // Refusals by the bulkhead say nothing about book's health.
      expect((await readiness(svc)).body.checks.bookCircuit).toBe('closed');
    } finally {
      await book.stop();
    }
  });
});

describe("book's replicas (BOOK_URL as a comma-separated list)", () => {
  const fakes: FakeBook[] = [];

  afterAll(async () => {
    for (const fake of fakes) await fake.stop();
  });

  /** A port nothing listens on: a replica that died. */
  const deadReplica = async () => `http://127.0.0.1:${await freePort()}`;

  it('takes the replicas in turn: four reservations over two live replicas, two holds each', async () => {
    const [a, b] = await Promise.all([new FakeBook(held).start(), new FakeBook(held).start()]);
    fakes.push(a, b);
    const svc = await reservationFor([a.url, b.url], NO_TIMING);
    for (let i = 0; i < 4; i++) expect((await reserve(svc)).statusCode).toBe(201);
    expect([a.requests, b.requests]).toEqual([2, 2]);
    expect(await metric(svc, 'bstore_book_call_retries_total')).toBe(0);
  });

  it('passes a dead replica over: a refused connection is retried on the next replica, and every reservation is placed', async () => {
    const live = await new FakeBook(held).start();
    fakes.push(live);
    const svc = await reservationFor([await deadReplica(), live.url], NO_TIMING);
    for (let i = 0; i < 4; i++) {
      const res = await reserve(svc);
      expect(res.statusCode, res.body).toBe(201);
    }
    // Each reservation's first attempt went to the dead replica (they alternate), its retry to the live one.
    expect(live.requests).toBe(4);
    expect(await metric(svc, 'bstore_book_call_retries_total')).toBe(4);
    expect(await calls(svc, 'held')).toBe(4);
    expect((await readiness(svc)).body.checks.bookCircuit).toBe('closed');
  });
});
