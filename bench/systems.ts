import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { Redis } from 'ioredis';
import { asStaff } from '../test/support/auth.ts';
import { startCluster, type TestCluster } from '../test/support/cluster.ts';
import { pidsNamed } from '../test/support/cpu.ts';
import type { PrivateNats } from '../test/support/nats.ts';
import { freePort, startLauncher, type LauncherProcess } from '../test/support/process.ts';
import type { PrivateRedis } from '../test/support/redis.ts';

/**
 * The system under benchmark, started for it: **cluster** (the five services as processes on
 * PostgreSQL, and the run's own nats-server and redis-server; what production runs) or
 * **embedded** (`npm start`'s launcher: one process, PGlite and the in-process bus). Both serve
 * the gateway on a loopback port with the demo identity, rate limits off (one load generator is
 * every patron) and a high per-patron limit of active reservations (on many books a patron may
 * have several sagas in flight).
 */
export interface BenchSystem {
  readonly mode: 'cluster' | 'embedded';
  readonly gateway: string;
  /** The processes whose CPU time is counted, by name: bstore's own (`service`), then the servers they use (`server`). */
  processes(): BenchProcess[];
  /** Adds `count` books of `quantity` copies each; returns their ids. */
  addBooks(count: number, quantity: number): Promise<number[]>;
  /** The given books' copies owned and available to reserve now (book's `copies` and `quantity`), summed. */
  stock(bookIds: readonly number[]): Promise<Stock>;
  /**
   * Stores `count` finished reservations of the given patrons on the given books, as years of use
   * would leave them (cluster only): the reservations, holds and assignments in PostgreSQL with
   * their inbox rows, and the read model's pages and indexes in Redis.
   */
  storeHistory?(count: number, customerIds: readonly string[], bookIds: readonly number[]): Promise<void>;
  stop(): Promise<void>;
}

export interface Stock {
  copies: number;
  available: number;
}

export interface BenchProcess {
  name: string;
  role: 'service' | 'server';
  pids: number[];
}

const SETTINGS = {
  BSTORE_MAX_ACTIVE_RESERVATIONS: '10000',
  BSTORE_RATE_LIMIT_PER_MINUTE: '0',
  BSTORE_RATE_LIMIT_IP_PER_MINUTE: '0',
  BSTORE_DEMO_AUTH: 'true',
  BSTORE_DEMO_DATA: 'true',
  LOG_LEVEL: 'warn',
};

/** Books through the staff API, `parallel` requests at a time (the embedded system's databases are inside its process). */
async function addBooksByApi(gateway: string, count: number, quantity: number, parallel = 16): Promise<number[]> {
  const headers = { ...(await asStaff()), 'content-type': 'application/json' };
  const ids: number[] = new Array<number>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let i = next++; i < count; i = next++) {
        const res = await fetch(`${gateway}/books`, { method: 'POST', headers, body: JSON.stringify({ bookName: `Bench book ${i + 1}`, author: 'Bench', quantity }) });
        const body = (await res.json()) as { bookId?: number };
        if (res.status !== 201 || typeof body.bookId !== 'number') throw new Error(`POST /books answered ${res.status}: ${JSON.stringify(body)}`);
        ids[i] = body.bookId;
      }
    }),
  );
  return ids;
}

/** The stock of the given books through the public catalogue, a page of 100 at a time (the embedded system's databases are inside its process). */
async function stockByApi(gateway: string, bookIds: readonly number[]): Promise<Stock> {
  const wanted = new Set(bookIds);
  const stock = { copies: 0, available: 0 };
  for (let offset = 0; ; offset += 100) {
    const res = await fetch(`${gateway}/books?limit=100&offset=${offset}`);
    const page = (await res.json()) as { items?: { bookId: number; quantity: number; copies: number }[]; total?: number };
    if (res.status !== 200 || !page.items) throw new Error(`GET /books answered ${res.status}: ${JSON.stringify(page)}`);
    for (const b of page.items) {
      if (!wanted.has(b.bookId)) continue;
      stock.copies += b.copies;
      stock.available += b.quantity;
    }
    if (page.items.length < 100 || offset + 100 >= (page.total ?? 0)) return stock;
  }
}

/** The cluster: startCluster's five processes on PostgreSQL, on the run's own NATS and Redis. */
export async function startClusterSystem(nats: PrivateNats, redis: PrivateRedis, env: Record<string, string> = {}): Promise<BenchSystem> {
  const cluster: TestCluster = await startCluster({ natsUrl: nats.url, redisUrl: redis.url, env: { ...SETTINGS, ...env } });
  const dbs = cluster.databases();
  return {
    mode: 'cluster',
    gateway: cluster.gateway,
    processes: () => [
      ...Object.values(cluster.services).map((s): BenchProcess => ({ name: s.name, role: 'service', pids: [s.pid] })),
      // Every process of the machine's PostgreSQL server (its backends, writer, WAL writer...).
      { name: 'postgres', role: 'server', pids: pidsNamed('postgres') },
      { name: 'nats-server', role: 'server', pids: nats.pid === undefined ? [] : [nats.pid] },
      { name: 'redis-server', role: 'server', pids: redis.pid === undefined ? [] : [redis.pid] },
    ],
    addBooks: async (count, quantity) => {
      const rows = await sql<{ book_id: number }>`
        INSERT INTO books (book_name, author, quantity, copies)
        SELECT 'Bench book ' || n, 'Bench', ${quantity}::int, ${quantity}::int FROM generate_series(1, ${count}::int) AS n
        RETURNING book_id`.execute(dbs.book);
      return rows.rows.map((r) => r.book_id);
    },
    stock: async (bookIds) => {
      const rows = await sql<{ copies: string | null; available: string | null }>`
        SELECT sum(copies) AS copies, sum(quantity) AS available FROM books WHERE book_id = ANY(${sql.val(bookIds)}::int[])`.execute(dbs.book);
      return { copies: Number(rows.rows[0]?.copies ?? 0), available: Number(rows.rows[0]?.available ?? 0) };
    },
    storeHistory: async (count, customerIds, bookIds) => {
      const libraries = await dbs.assignment.selectFrom('libraries').select(['library_id', 'name']).orderBy('library_id').execute();
      if (libraries.length === 0) throw new Error('assignment has no libraries (demo data) to store history with');
      const top = await dbs.reservation.selectFrom('reservations').select((eb) => eb.fn.max('reservation_id').as('id')).executeTakeFirst();
      const first = Number(top?.id ?? 0) + 1;
      const last = first + count - 1;
      // Nine in ten cancelled after their saga (hold released, assignment released), one in ten out of stock.
      const customers = sql.val(customerIds);
      const books = sql.val(bookIds);
      const libraryIds = sql.val(libraries.map((l) => l.library_id));
      const libraryNames = sql.val(libraries.map((l) => l.name));
      const batch = 250_000;
      for (let from = first; from <= last; from += batch) {
        const to = Math.min(last, from + batch - 1);
        await sql`
          INSERT INTO reservations (reservation_id, book_id, customer_id, status, book_name, library_id, library_name, attempts, created_at, updated_at)
          SELECT n, (${books}::int[])[1 + n % cardinality(${books}::int[])], (${customers}::text[])[1 + n % cardinality(${customers}::text[])],
                 CASE WHEN n % 10 = 0 THEN 'bookOutOfStock' ELSE 'bookCanceled' END,
                 'Bench book', CASE WHEN n % 10 = 0 THEN NULL ELSE (${libraryIds}::int[])[1 + n % cardinality(${libraryIds}::int[])] END,
                 CASE WHEN n % 10 = 0 THEN NULL ELSE (${libraryNames}::text[])[1 + n % cardinality(${libraryNames}::text[])] END,
                 1, now() - interval '30 days', now() - interval '29 days'
          FROM generate_series(${from}::int, ${to}::int) AS n`.execute(dbs.reservation);
        await sql`
          INSERT INTO inbox (consumer, event_id, event_type, received_at)
          SELECT c.consumer, 'history-' || n, 'ReservationAccepted', now() - interval '29 days'
          FROM generate_series(${from}::int, ${to}::int) AS n, (SELECT DISTINCT consumer FROM inbox) AS c
          WHERE n % 10 <> 0`.execute(dbs.reservation);
        await sql`
          INSERT INTO holds (reservation_id, book_id, customer_id, status, created_at, updated_at)
          SELECT n, (${books}::int[])[1 + n % cardinality(${books}::int[])], (${customers}::text[])[1 + n % cardinality(${customers}::text[])],
                 'released', now() - interval '30 days', now() - interval '29 days'
          FROM generate_series(${from}::int, ${to}::int) AS n WHERE n % 10 <> 0`.execute(dbs.book);
        await sql`
          INSERT INTO assignments (reservation_id, book_id, customer_id, library_id, library_name, status, created_at, updated_at)
          SELECT n, (${books}::int[])[1 + n % cardinality(${books}::int[])], (${customers}::text[])[1 + n % cardinality(${customers}::text[])],
                 (${libraryIds}::int[])[1 + n % cardinality(${libraryIds}::int[])], (${libraryNames}::text[])[1 + n % cardinality(${libraryNames}::text[])],
                 'released', now() - interval '30 days', now() - interval '29 days'
          FROM generate_series(${from}::int, ${to}::int) AS n WHERE n % 10 <> 0`.execute(dbs.assignment);
        await sql`
          INSERT INTO inbox (consumer, event_id, event_type, received_at)
          SELECT c.consumer, 'history-' || n, 'ReservationRequested', now() - interval '29 days'
          FROM generate_series(${from}::int, ${to}::int) AS n, (SELECT DISTINCT consumer FROM inbox) AS c
          WHERE n % 10 <> 0`.execute(dbs.assignment);
      }
      await sql`SELECT setval(pg_get_serial_sequence('reservations', 'reservation_id'), ${last}::int)`.execute(dbs.reservation);
      // As if stored long ago: vacuumed, analysed and checkpointed, so that the measurement that
      // follows is not also measuring the maintenance a million fresh rows set off.
      for (const db of [dbs.reservation, dbs.book, dbs.assignment]) await sql`VACUUM (ANALYZE)`.execute(db);
      await sql`CHECKPOINT`.execute(dbs.reservation);

      // The read model: each page's hash and its four index entries, as customercenter writes them (keys.ts).
      const prefix = cluster.env.BSTORE_REDIS_PREFIX ?? 'bstore:customercenter:';
      const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 3 });
      await client.connect();
      try {
        const createdAt = Date.now() - 30 * 86_400_000;
        const updatedAt = createdAt + 86_400_000;
        for (let from = first; from <= last; from += 10_000) {
          const pipeline = client.pipeline();
          for (let n = from; n <= Math.min(last, from + 9_999); n++) {
            const customerId = customerIds[n % customerIds.length] as string;
            const bookId = bookIds[n % bookIds.length] as number;
            const status = n % 10 === 0 ? 'bookOutOfStock' : 'bookCanceled';
            const library = libraries[n % libraries.length] as { library_id: number; name: string };
            const member = String(n).padStart(16, '0');
            const page: (string | number)[] = ['reservationId', n, 'bookId', bookId, 'customerId', customerId, 'status', status, 'createdAt', createdAt, 'updatedAt', updatedAt, 'bookName', 'Bench book'];
            if (status === 'bookCanceled') page.push('libraryId', library.library_id, 'libraryName', library.name);
            pipeline.hset(`${prefix}page:${n}`, ...page);
            pipeline.zadd(`${prefix}index:all`, updatedAt, member);
            pipeline.zadd(`${prefix}index:customer:${customerId}`, updatedAt, member);
            pipeline.zadd(`${prefix}index:status:${status}`, updatedAt, member);
            pipeline.zadd(`${prefix}index:status:${status}:customer:${customerId}`, updatedAt, member);
          }
          const replies = (await pipeline.exec()) ?? [];
          const failed = replies.find(([err]) => err !== null);
          if (failed) throw failed[0] as Error;
        }
      } finally {
        client.disconnect();
      }
    },
    stop: () => cluster.stop(),
  };
}

/** The embedded system: `npm start`'s launcher as one process, with its data in a temporary folder. */
export async function startEmbeddedSystem(env: Record<string, string> = {}): Promise<BenchSystem> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bstore-bench-'));
  const names = ['gateway', 'book', 'reservation', 'assignment', 'customercenter', 'notification'];
  const ports = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await freePort()] as const)));
  let launcher: LauncherProcess;
  try {
    launcher = await startLauncher({ ...SETTINGS, BSTORE_DATA_DIR: dataDir, BSTORE_WEB_ROOT: '', ...env }, ports);
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    mode: 'embedded',
    gateway: launcher.gateway,
    processes: () => [{ name: 'embedded (all six)', role: 'service', pids: launcher.child.pid === undefined ? [] : [launcher.child.pid] }],
    addBooks: (count, quantity) => addBooksByApi(launcher.gateway, count, quantity),
    stock: (bookIds) => stockByApi(launcher.gateway, bookIds),
    stop: async () => {
      if (launcher.child.exitCode === null && launcher.child.signalCode === null) {
        launcher.child.kill('SIGTERM');
        const kill = setTimeout(() => launcher.child.kill('SIGKILL'), 20_000);
        await launcher.exited;
        clearTimeout(kill);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
