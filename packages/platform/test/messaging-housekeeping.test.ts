import { Migrator } from 'kysely/migration';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { pino, type Logger } from 'pino';
import type { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEnvelope, subjectOf, type EventEnvelope } from '@bstore/contracts';
import { openDatabase, type Database } from '../src/db/database.ts';
import { migrateToLatest } from '../src/db/migrations.ts';
import { createHttpApp } from '../src/http/app.ts';
import type { EventPublisher, EventSubscriber } from '../src/messaging/bus.ts';
import { EventConsumer } from '../src/messaging/consumer.ts';
import {
  INBOX_MIN_RETENTION_MS,
  INBOX_PRUNING_DEFAULTS,
  InboxPruner,
  MAX_PRUNE_BATCHES_PER_RUN,
  OUTBOX_PRUNING_DEFAULTS,
  OutboxPruner,
} from '../src/messaging/housekeeping.ts';
import { KyselyInbox } from '../src/messaging/inbox.ts';
import { OutboxRelay } from '../src/messaging/outbox.ts';
import { messagingMigrations, type MessagingTables } from '../src/messaging/schema.ts';
import { ServiceRuntime } from '../src/service-runtime.ts';
import { eventually, testLogger } from '../../../test/support/harness.ts';
import { databaseKinds } from '../../../test/support/postgres.ts';

/** A bus that only records what is published (in order): the relay's whole port (EventPublisher). */
class RecordingBus implements EventPublisher {
  readonly published: string[] = [];
  async publish(_subject: string, envelope: EventEnvelope): Promise<void> {
    // A real bus answers asynchronously: let other relays' work interleave.
    await new Promise((r) => setImmediate(r));
    this.published.push(envelope.id);
  }
}

/** For a consumer driven by `handle()` in the test: it never subscribes. */
const NOT_SUBSCRIBED: EventSubscriber = {
  subscribe: () => Promise.reject(new Error('not used')),
  declareConsumer: async () => {},
  lag: async () => undefined,
};

/** A logger that keeps its warnings, to check what was said. */
function capturingLogger(): { logger: Logger; warnings: () => { msg: string; configured?: number; used?: number }[] } {
  const lines: string[] = [];
  const logger: Logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  return { logger, warnings: () => lines.map((l) => JSON.parse(l) as { msg: string }) };
}

/**
 * PGlite has one connection, so two pruners or relays take turns; PostgreSQL has a pool of 10, so
 * their statements really overlap and only the locks keep them apart.
 */
const DATABASES = databaseKinds();

const ago = (interval: string): RawBuilder<Date> => sql<Date>`now() - ${interval}::interval`;

function envelope(): EventEnvelope {
  return createEnvelope({
    type: 'ReservationRequested',
    source: 'bstore/test',
    subject: '1',
    data: { reservationId: 1, bookId: 1, bookName: 'B', customerId: 'alice', preferredLibraryId: null, status: 'bookReserveReq' as const },
  });
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const found = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = found?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value;
}

describe.each(DATABASES)('messaging housekeeping on %s', (kind, make) => {
  let database: Database<MessagingTables>;
  let db: Kysely<MessagingTables>;
  let cleanup: () => Promise<void>;
  const logger = testLogger();

  beforeAll(async () => {
    const made = await make('housekeeping');
    cleanup = made.cleanup;
    database = await openDatabase<MessagingTables>(made.config);
    db = database.db;
    await migrateToLatest(db as Kysely<unknown>, {});
  });

  afterAll(async () => {
    await database?.close();
    await cleanup?.();
  });

  beforeEach(async () => {
    await db.deleteFrom('outbox').execute();
    await db.deleteFrom('inbox').execute();
  });

  /** Outbox rows written `created` ago, and sent `published` ago (or not sent); returns their ids, oldest first. */
  async function outboxRows(n: number, created: string, published: string | null): Promise<string[]> {
    const rows = Array.from({ length: n }, () => envelope());
    for (const e of rows) {
      await db
        .insertInto('outbox')
        .values({
          id: e.id,
          type: e.type,
          subject: subjectOf('ReservationRequested'),
          envelope: e,
          created_at: ago(created),
          published_at: published === null ? null : ago(published),
          last_error: null,
        })
        .execute();
    }
    return rows.map((e) => e.id);
  }

  /** The shared database as a runtime's `database`, which its stop leaves open. */
  const keepOpen = () => ({ db, close: async () => undefined });

  async function outboxIds(): Promise<string[]> {
    return (await db.selectFrom('outbox').select('id').execute()).map((r) => r.id);
  }

  async function inboxRows(n: number, received: string, consumer = 'probe'): Promise<string[]> {
    const ids = Array.from({ length: n }, () => envelope().id);
    for (const id of ids) {
      await db.insertInto('inbox').values({ consumer, event_id: id, event_type: 'ReservationRequested', received_at: ago(received) }).execute();
    }
    return ids;
  }

  async function inboxIds(): Promise<string[]> {
    return (await db.selectFrom('inbox').select('event_id').execute()).map((r) => r.event_id);
  }

  describe('schema', () => {
    it('indexes outbox.published_at (sent rows only) and inbox.received_at for pruning', async () => {
      const { rows } = await sql<{ indexname: string; indexdef: string }>`
        SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN ('outbox_published', 'inbox_received') ORDER BY indexname`.execute(db);
      expect(rows.map((r) => r.indexname)).toEqual(['inbox_received', 'outbox_published']);
      expect(rows[1]!.indexdef).toMatch(/\(published_at\) WHERE \(published_at IS NOT NULL\)/);
    });

    it('a database that already ran its service migrations accepts the new messaging migration', async () => {
      const made = await make('housekeeping_upgrade');
      const old = await openDatabase<MessagingTables>(made.config);
      try {
        const serviceMigrations = { '0001_reservations': { up: async () => undefined } };
        // The schema as it was before this migration existed: the platform's first, then the service's own.
        const before = new Migrator({
          db: old.db,
          provider: { getMigrations: async () => ({ '0000_messaging': messagingMigrations['0000_messaging']!, ...serviceMigrations }) },
        });
        const { error } = await before.migrateToLatest();
        expect(error).toBeUndefined();
        expect(await migrateToLatest(old.db as Kysely<unknown>, serviceMigrations)).toEqual(['0001_zz_messaging_housekeeping']);
      } finally {
        await old.close();
        await made.cleanup();
      }
    });
  });

  describe('outbox pruning', () => {
    it('deletes only sent rows older than the retention, and never an unsent row whatever its age', async () => {
      const unsentOld = await outboxRows(2, '30 days', null);
      const sentOld = await outboxRows(3, '3 hours', '2 hours');
      const sentRecent = await outboxRows(2, '3 hours', '10 minutes');
      const pruner = new OutboxPruner({ db, logger }); // default retention: one hour
      expect(pruner.retentionMs).toBe(OUTBOX_PRUNING_DEFAULTS.retentionMs);
      expect(await pruner.prune()).toBe(3);
      const left = await outboxIds();
      expect(left.sort()).toEqual([...unsentOld, ...sentRecent].sort());
      expect(left.some((id) => sentOld.includes(id))).toBe(false);
      expect(pruner.prunedTotal).toBe(3);
    });

    it('deletes in batches of batchSize, oldest first, until a batch comes back short', async () => {
      const oldest = await outboxRows(10, '5 hours', '4 hours');
      const older = await outboxRows(10, '5 hours', '3 hours');
      await outboxRows(5, '5 hours', '2 hours');
      const pruner = new OutboxPruner({ db, logger, batchSize: 10 });
      expect(await pruner.pruneBatch()).toBe(10);
      const left = await outboxIds();
      expect(left.some((id) => oldest.includes(id))).toBe(false); // the oldest sent rows went first
      expect(older.every((id) => left.includes(id))).toBe(true);
      expect(await pruner.prune()).toBe(15); // 10, then 5 (short: the run ends)
      expect(await outboxIds()).toEqual([]);
      expect(await pruner.pruneBatch()).toBe(0);
    });

    it('a run stops after MAX_PRUNE_BATCHES_PER_RUN batches; the next run goes on', async () => {
      await outboxRows(MAX_PRUNE_BATCHES_PER_RUN + 3, '3 hours', '2 hours');
      const pruner = new OutboxPruner({ db, logger, batchSize: 1 });
      expect(await pruner.prune()).toBe(MAX_PRUNE_BATCHES_PER_RUN);
      expect(await pruner.prune()).toBe(3);
    });

    it('two pruners at once (two replicas) delete every old row once between them, and nothing else', async () => {
      await outboxRows(60, '3 hours', '2 hours');
      const unsent = await outboxRows(3, '3 hours', null);
      const a = new OutboxPruner({ db, logger, batchSize: 7 });
      const b = new OutboxPruner({ db, logger, batchSize: 7 });
      const [byA, byB] = await Promise.all([a.prune(), b.prune()]);
      expect(byA + byB).toBe(60);
      expect((await outboxIds()).sort()).toEqual([...unsent].sort());
    });

    it('refuses options that make no sense', () => {
      expect(() => new OutboxPruner({ db, logger, batchSize: 0 })).toThrow(RangeError);
      expect(() => new OutboxPruner({ db, logger, batchSize: 10_001 })).toThrow(/batchSize/);
      expect(() => new OutboxPruner({ db, logger, retentionMs: -1 })).toThrow(/retentionMs/);
      expect(() => new OutboxPruner({ db, logger, intervalMs: 0 })).toThrow(/intervalMs/);
    });

    it('the relay prunes on its interval while it runs, and stops pruning when stopped', async () => {
      const bus = new RecordingBus();
      const relay = new OutboxRelay({ db, bus, logger, pollMs: 50, pruning: { intervalMs: 20 } });
      await outboxRows(4, '3 hours', '2 hours');
      const unsent = await outboxRows(1, '1 minute', null);
      relay.start();
      try {
        await eventually('old sent rows pruned', async () => ((await outboxIds()).length === 1 ? true : undefined));
        expect(await outboxIds()).toEqual(unsent); // published now, so kept for the retention
        expect(bus.published).toEqual(unsent);
      } finally {
        await relay.stop();
      }
      expect(relay.pruner?.prunedTotal).toBe(4);
      const stopped = new OutboxRelay({ db, bus, logger, pruning: false });
      expect(stopped.pruner).toBeUndefined();
      expect(await stopped.prune()).toBe(0);
    });
  });

  describe('inbox pruning', () => {
    it('keeps rows within the retention (seven days by default) and deletes older ones', async () => {
      const old = await inboxRows(3, '8 days');
      const kept = [...(await inboxRows(2, '6 days')), ...(await inboxRows(2, '1 second', 'other'))];
      const pruner = new InboxPruner({ db, logger });
      expect(pruner.retentionMs).toBe(INBOX_PRUNING_DEFAULTS.retentionMs);
      expect(await pruner.prune()).toBe(3);
      const left = await inboxIds();
      expect(left.sort()).toEqual(kept.sort());
      expect(left.some((id) => old.includes(id))).toBe(false);
    });

    it('a redelivered event within the retention is still a duplicate after pruning', async () => {
      let effects = 0;
      const consumer = new EventConsumer({
        name: 'probe',
        inbox: new KyselyInbox(db),
        bus: NOT_SUBSCRIBED,
        logger,
        handlers: {
          ReservationRequested: async () => {
            effects++;
          },
        },
      });
      const event = envelope();
      expect(await consumer.handle(event)).toBe('handled');
      // Handled six days ago: inside the week.
      await db.updateTable('inbox').set({ received_at: ago('6 days') }).where('event_id', '=', event.id).execute();
      await inboxRows(2, '8 days');
      expect(await new InboxPruner({ db, logger }).prune()).toBe(2);
      expect(await consumer.handle(event, 2)).toBe('duplicate');
      expect(effects).toBe(1);
    });

    it('raises a retention shorter than the redelivery horizon to it, with a warning', async () => {
      const { logger: warned, warnings } = capturingLogger();
      const pruner = new InboxPruner({ db, logger: warned, retentionMs: 60_000 });
      expect(pruner.retentionMs).toBe(INBOX_MIN_RETENTION_MS);
      expect(warnings()).toEqual([expect.objectContaining({ configured: 60_000, used: INBOX_MIN_RETENTION_MS, msg: expect.stringMatching(/redelivery horizon/) })]);
      // Older than the minute asked for, but within the horizon: kept.
      const minutes = Math.floor(INBOX_MIN_RETENTION_MS / 60_000);
      const withinHorizon = await inboxRows(1, `${minutes - 5} minutes`);
      await inboxRows(1, `${minutes + 5} minutes`);
      expect(await pruner.prune()).toBe(1);
      expect(await inboxIds()).toEqual(withinHorizon);
      // At or above the horizon, the retention is taken as given, silently.
      const { logger: quiet, warnings: none } = capturingLogger();
      expect(new InboxPruner({ db, logger: quiet, retentionMs: INBOX_MIN_RETENTION_MS }).retentionMs).toBe(INBOX_MIN_RETENTION_MS);
      expect(none()).toEqual([]);
    });

    it('the horizon outlasts the bus: the embedded retention (15 min), the JetStream window (2 min) and the retries (~8 min)', () => {
      expect(INBOX_MIN_RETENTION_MS).toBeGreaterThanOrEqual(15 * 60_000 + 8 * 60_000);
      expect(INBOX_PRUNING_DEFAULTS.retentionMs).toBeGreaterThan(INBOX_MIN_RETENTION_MS);
    });

    it('deletes in batches, and two pruners at once delete every old row once between them', async () => {
      await inboxRows(45, '8 days');
      const kept = await inboxRows(2, '1 day');
      const single = new InboxPruner({ db, logger, batchSize: 20 });
      expect(await single.pruneBatch()).toBe(20);
      const a = new InboxPruner({ db, logger, batchSize: 4 });
      const b = new InboxPruner({ db, logger, batchSize: 4 });
      const [byA, byB] = await Promise.all([a.prune(), b.prune()]);
      expect(byA + byB).toBe(25);
      expect((await inboxIds()).sort()).toEqual(kept.sort());
    });
  });

  describe('relay batches', () => {
    it('refuses a batch size out of bounds', () => {
      const bus = new RecordingBus();
      expect(() => new OutboxRelay({ db, bus, logger, batchSize: 0 })).toThrow(RangeError);
      expect(() => new OutboxRelay({ db, bus, logger, batchSize: 1001 })).toThrow(/batchSize/);
      expect(() => new OutboxRelay({ db, bus, logger, batchSize: 2.5 })).toThrow(/batchSize/);
      expect(new OutboxRelay({ db, bus, logger }).batchSize).toBe(100);
    });

    it('drains a backlog in successive bounded batches, oldest first', async () => {
      const bus = new RecordingBus();
      const ids = [...(await outboxRows(10, '3 minutes', null)), ...(await outboxRows(10, '2 minutes', null)), ...(await outboxRows(5, '1 minute', null))];
      const relay = new OutboxRelay({ db, bus, logger, batchSize: 10, pruning: false });
      expect(await relay.publishBatch()).toBe(10);
      expect(await relay.publishBatch()).toBe(10);
      expect(await relay.publishBatch()).toBe(5);
      expect(await relay.publishBatch()).toBe(0);
      // Rows written in one statement share created_at, so order is checked group by group.
      expect(new Set(bus.published.slice(0, 10))).toEqual(new Set(ids.slice(0, 10)));
      expect(new Set(bus.published.slice(10, 20))).toEqual(new Set(ids.slice(10, 20)));
      expect(new Set(bus.published.slice(20))).toEqual(new Set(ids.slice(20)));
    });

    it('a running relay drains a backlog larger than its batch without waiting for polls', async () => {
      const bus = new RecordingBus();
      await outboxRows(95, '1 minute', null);
      // A poll far away: only back-to-back batches can drain this within the test's time.
      const relay = new OutboxRelay({ db, bus, logger, batchSize: 10, pollMs: 3_600_000, pruning: false });
      relay.start();
      try {
        await eventually('the backlog drained', async () => (bus.published.length === 95 ? true : undefined));
      } finally {
        await relay.stop();
      }
      expect(await db.selectFrom('outbox').select('id').where('published_at', 'is', null).execute()).toEqual([]);
    });

    it('two relays (two replicas) share a backlog without publishing any row twice', async () => {
      const bus = new RecordingBus();
      const ids = await outboxRows(120, '1 minute', null);
      const a = new OutboxRelay({ db, bus, logger, batchSize: 15, pruning: false });
      const b = new OutboxRelay({ db, bus, logger, batchSize: 15, pruning: false });
      const drain = async (relay: OutboxRelay) => {
        let total = 0;
        for (let sent = await relay.publishBatch(); sent > 0; sent = await relay.publishBatch()) total += sent;
        return total;
      };
      // Each takes a first batch (at the same time or one after the other: never the same rows),
      // so both really work whatever the scheduling; then both drain the rest at once.
      const [firstA, firstB] = await Promise.all([a.publishBatch(), b.publishBatch()]);
      expect([firstA, firstB]).toEqual([15, 15]);
      const [byA, byB] = await Promise.all([drain(a), drain(b)]);
      expect(firstA + firstB + byA + byB).toBe(120);
      expect(bus.published.length).toBe(120);
      expect(new Set(bus.published)).toEqual(new Set(ids));
    });
  });

  describe('metrics', () => {
    /** A service runtime on the shared database (its stop leaves the database open). */
    function runtime(relay: OutboxRelay, extra: { consumers?: ConstructorParameters<typeof ServiceRuntime>[0]['consumers'] } = {}) {
      const app = createHttpApp({ service: 'probe', logger });
      return new ServiceRuntime({ name: 'probe', logger, app, database: keepOpen(), relay, operations: {}, ...extra });
    }

    it('the backlog gauges read the unsent rows and the age of the oldest; the counters count sends and prunes', async () => {
      const bus = new RecordingBus();
      const relay = new OutboxRelay({ db, bus, logger });
      const rt = runtime(relay);
      const registry = rt.app.metrics;
      expect(await metric(registry, 'bstore_outbox_backlog')).toBe(0);
      expect(await metric(registry, 'bstore_outbox_oldest_unsent_age_seconds')).toBe(0);

      await outboxRows(2, '2 hours', null);
      await outboxRows(1, '5 minutes', null);
      await outboxRows(4, '3 hours', '2 hours');
      expect(await metric(registry, 'bstore_outbox_backlog')).toBe(3);
      const age = await metric(registry, 'bstore_outbox_oldest_unsent_age_seconds');
      expect(age).toBeGreaterThanOrEqual(2 * 3600);
      expect(age).toBeLessThan(2 * 3600 + 600);
      // The text exposition too, with the service label.
      expect(await registry.metrics()).toMatch(/^bstore_outbox_backlog\{service="probe"\} 3$/m);

      expect(await relay.publishBatch()).toBe(3);
      expect(await metric(registry, 'bstore_outbox_backlog')).toBe(0);
      expect(await metric(registry, 'bstore_outbox_oldest_unsent_age_seconds')).toBe(0);
      expect(await metric(registry, 'bstore_outbox_published_total')).toBe(3);

      expect(await relay.prune()).toBe(4);
      expect(await metric(registry, 'bstore_outbox_pruned_total')).toBe(4);

      await inboxRows(2, '8 days');
      expect(await rt.inboxPruner!.prune()).toBe(2);
      expect(await metric(registry, 'bstore_inbox_pruned_total')).toBe(2);
    });

    it('counts consumer deliveries by result when the consumers count them', async () => {
      const counting = {
        name: 'probe',
        start: async () => undefined,
        stop: async () => undefined,
        declare: async () => undefined,
        eventCounts: () => ({ handled: 2, duplicate: 1 }),
      };
      const rt = runtime(new OutboxRelay({ db, bus: new RecordingBus(), logger }), { consumers: [counting] });
      const registry = rt.app.metrics;
      expect(await metric(registry, 'bstore_consumer_events_total', { consumer: 'probe', result: 'handled' })).toBe(2);
      expect(await metric(registry, 'bstore_consumer_events_total', { consumer: 'probe', result: 'duplicate' })).toBe(1);
      expect(await metric(registry, 'bstore_consumer_events_total', { consumer: 'probe', result: 'dead-lettered' })).toBe(0);
      // Consumers that do not count: no metric at all rather than zeros that lie.
      const silent = runtime(new OutboxRelay({ db, bus: new RecordingBus(), logger }), { consumers: [{ ...counting, eventCounts: undefined }] });
      expect(await metric(silent.app.metrics, 'bstore_consumer_events_total')).toBeUndefined();
    });

    it('a scrape after the database closed answers with the last values instead of failing', async () => {
      const made = await make('housekeeping_closed');
      const own = await openDatabase<MessagingTables>(made.config);
      try {
        await migrateToLatest(own.db as Kysely<unknown>, {});
        const relay = new OutboxRelay({ db: own.db, bus: new RecordingBus(), logger });
        const app = createHttpApp({ service: 'probe', logger });
        const rt = new ServiceRuntime({ name: 'probe', logger, app, database: own, relay, operations: {} });
        await own.db.insertInto('outbox').values({ id: envelope().id, type: 'ReservationRequested', subject: 's', envelope: envelope(), published_at: null, last_error: null }).execute();
        expect(await metric(app.metrics, 'bstore_outbox_backlog')).toBe(1);
        await rt.stop(); // stops the relay, whose last drain publishes the row, and closes the database
        expect(await metric(app.metrics, 'bstore_outbox_backlog')).toBe(1);
        expect(await app.metrics.metrics()).toMatch(/^bstore_outbox_backlog\{service="probe"\} 1$/m);
      } finally {
        await own.close().catch(() => undefined);
        await made.cleanup();
      }
    });
  });

  describe('service runtime', () => {
    it('prunes the inbox of a SQL database while running, not of another store, and not when turned off', async () => {
      const app = () => createHttpApp({ service: 'probe', logger });
      const rt = new ServiceRuntime({ name: 'probe', logger, app: app(), database: keepOpen(), inboxPruning: { intervalMs: 20 }, operations: {} });
      expect(rt.inboxPruner?.retentionMs).toBe(INBOX_PRUNING_DEFAULTS.retentionMs);
      await inboxRows(3, '8 days');
      const kept = await inboxRows(1, '1 hour');
      await rt.start({ port: 0 });
      try {
        await eventually('old inbox rows pruned', async () => ((await inboxIds()).length === 1 ? true : undefined));
        expect(await inboxIds()).toEqual(kept);
      } finally {
        await rt.stop();
      }
      expect(new ServiceRuntime({ name: 'p', logger, app: app(), database: { close: async () => undefined }, operations: {} }).inboxPruner).toBeUndefined();
      expect(new ServiceRuntime({ name: 'p', logger, app: app(), operations: {} }).inboxPruner).toBeUndefined();
      expect(new ServiceRuntime({ name: 'p', logger, app: app(), database: keepOpen(), inboxPruning: false, operations: {} }).inboxPruner).toBeUndefined();
    });
  });
});
