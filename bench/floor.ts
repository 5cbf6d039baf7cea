import { randomBytes, randomUUID } from 'node:crypto';
import { StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { bookMigrations } from '@bstore/book';
import { createDatabaseIfMissing, migrateToLatest } from '@bstore/platform';

/**
 * The floors of the benchmark (issue 9, item 1): what this machine's PostgreSQL and NATS sustain
 * for the work one saga cannot avoid, measured in the same run as the system, so that the system's
 * numbers are read as ratios to them (a shared, noisy machine moves absolute numbers; ratios hold).
 *
 * - The book-hold transaction, with raw SQL on book's own schema (its migrations: the same tables,
 *   constraints and indexes): the conditional decrement of a book's quantity, the hold's insert and
 *   the outbox row's insert, committed, by `concurrency` clients at once, on one hot book or spread
 *   over many books.
 * - JetStream publish-with-ack, with a message id (deduplication on), as the outbox relay publishes:
 *   `concurrency` publishers each waiting for its acknowledgement before the next.
 */

export interface FloorResult {
  /** What was measured, e.g. `hold (1 hot book)`. */
  name: string;
  concurrency: number;
  /** How long the clients ran. */
  durationMs: number;
  /** Operations completed (committed, or acknowledged). */
  operations: number;
  /** Operations per second over `durationMs`. */
  perSecond: number;
  /** Operations that failed (counted, not retried). */
  errors: number;
}

export interface HoldFloorResult extends FloorResult {
  /** Read back from the database afterwards: copies taken (copies - quantity, summed) and holds and outbox rows written. */
  check: { copiesTaken: number; holds: number; outboxRows: number };
}

export interface HoldFloorOptions {
  /** A PostgreSQL server where a database may be created (and is dropped afterwards). */
  postgresUrl: string;
  concurrency: number;
  durationMs: number;
  /** 1: every client on the same book (its row lock serialises them); more: a random book each time. */
  books: number;
  /** Copies of each book, enough that none runs out during the run. */
  copies?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `operation` from `concurrency` loops until `durationMs` has passed; counts what completed and what failed. */
async function drive(concurrency: number, durationMs: number, operation: (worker: number) => Promise<void>): Promise<{ operations: number; errors: number; elapsedMs: number }> {
  let operations = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < deadline) {
        try {
          await operation(worker);
          operations++;
        } catch {
          errors++;
          await sleep(5);
        }
      }
    }),
  );
  return { operations, errors, elapsedMs: performance.now() - started };
}

/** The database URL `name` on the server of `url`. */
function databaseUrl(url: string, name: string): string {
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}

/**
 * The rate PostgreSQL sustains for the book-hold transaction at `concurrency` clients. Creates a
 * database of its own with book's schema and `books` books, runs the transaction until
 * `durationMs` has passed, reads back what it wrote, and drops the database.
 */
export async function measureHoldFloor(options: HoldFloorOptions): Promise<HoldFloorResult> {
  const copies = options.copies ?? 100_000;
  const name = `bstore_bench_floor_${randomBytes(4).toString('hex')}`;
  const url = databaseUrl(options.postgresUrl, name);
  await createDatabaseIfMissing(url);
  const pool = new pg.Pool({ connectionString: url, max: options.concurrency + 1 });
  pool.on('error', () => undefined);
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrateToLatest(db, bookMigrations);
    await pool.query(
      `INSERT INTO books (book_name, quantity, copies) SELECT 'Floor ' || n, $2::int, $2::int FROM generate_series(1, $1::int) AS n`,
      [options.books, copies],
    );
    const { rows } = await pool.query<{ first: number }>('SELECT min(book_id) AS first FROM books');
    const first = rows[0]?.first ?? 1;

    // One connection per client, held for the whole run, as a service's pool does under load.
    const clients = await Promise.all(Array.from({ length: options.concurrency }, () => pool.connect()));
    let nextReservation = 1;
    const run = await drive(options.concurrency, options.durationMs, async (worker) => {
      const client = clients[worker] as pg.PoolClient;
      const bookId = first + (options.books === 1 ? 0 : Math.floor(Math.random() * options.books));
      const reservationId = nextReservation++;
      const eventId = randomUUID();
      await client.query('BEGIN');
      try {
        const taken = await client.query('UPDATE books SET quantity = quantity - 1, updated_at = now() WHERE book_id = $1 AND quantity > 0 RETURNING quantity', [bookId]);
        if (taken.rowCount !== 1) throw new Error(`book ${bookId} has no copy left`);
        await client.query("INSERT INTO holds (reservation_id, book_id, customer_id, status) VALUES ($1, $2, $3, 'held')", [reservationId, bookId, `floor-${worker}`]);
        const envelope = {
          specversion: '1.0',
          id: eventId,
          source: 'bstore/book',
          type: 'BookQuantityChanged',
          subject: String(bookId),
          time: new Date().toISOString(),
          datacontenttype: 'application/json',
          data: { bookId, quantity: taken.rows[0]?.quantity, reason: 'held' },
        };
        await client.query("INSERT INTO outbox (id, type, subject, envelope) VALUES ($1, 'BookQuantityChanged', 'bstore.book.BookQuantityChanged', $2)", [eventId, JSON.stringify(envelope)]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
    });
    for (const client of clients) client.release();

    const check = await pool.query<{ taken: number; holds: number; outbox: number }>(
      "SELECT (SELECT coalesce(sum(copies - quantity), 0) FROM books)::int AS taken, (SELECT count(*) FROM holds WHERE status = 'held')::int AS holds, (SELECT count(*) FROM outbox)::int AS outbox",
    );
    const row = check.rows[0] ?? { taken: 0, holds: 0, outbox: 0 };
    return {
      name: options.books === 1 ? 'hold (1 hot book)' : `hold (${options.books} books)`,
      concurrency: options.concurrency,
      durationMs: run.elapsedMs,
      operations: run.operations,
      perSecond: run.operations / (run.elapsedMs / 1000),
      errors: run.errors,
      check: { copiesTaken: row.taken, holds: row.holds, outboxRows: row.outbox },
    };
  } finally {
    await db.destroy();
    const admin = new pg.Client({ connectionString: databaseUrl(options.postgresUrl, 'postgres') });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  }
}

export interface PublishFloorResult extends FloorResult {
  /** Messages the stream held afterwards: each acknowledged publish is stored once. */
  check: { stored: number };
}

/**
 * The rate JetStream acknowledges publishes at `concurrency` publishers, each with a message id
 * (as the outbox relay publishes) and a bstore-sized JSON envelope, on a file-stored stream of its
 * own (deleted afterwards).
 */
export async function measurePublishFloor(options: { natsUrl: string; concurrency: number; durationMs: number }): Promise<PublishFloorResult> {
  const tag = randomBytes(4).toString('hex');
  const stream = `BENCH_FLOOR_${tag}`;
  const subject = `bench-floor.${tag}.BookQuantityChanged`;
  const nc = await connect({ servers: options.natsUrl, name: 'bstore-bench-floor' });
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.add({ name: stream, subjects: [`bench-floor.${tag}.>`], storage: StorageType.File, duplicate_window: nanos(120_000) });
    const js = jetstream(nc);
    const run = await drive(options.concurrency, options.durationMs, async () => {
      const id = randomUUID();
      const envelope = { specversion: '1.0', id, source: 'bstore/book', type: 'BookQuantityChanged', subject: '1', time: new Date().toISOString(), data: { bookId: 1, quantity: 41, reason: 'held' } };
      await js.publish(subject, JSON.stringify(envelope), { msgID: id });
    });
    const stored = (await jsm.streams.info(stream)).state.messages;
    return {
      name: 'JetStream publish with ack',
      concurrency: options.concurrency,
      durationMs: run.elapsedMs,
      operations: run.operations,
      perSecond: run.operations / (run.elapsedMs / 1000),
      errors: run.errors,
      check: { stored },
    };
  } finally {
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  }
}
