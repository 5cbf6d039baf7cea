import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope, sourceOf, subjectOf, type EventEnvelope } from '@bstore/contracts';
import {
  EventConsumer,
  KyselyDeadLetterStore,
  KyselyInbox,
  NatsJetStreamBus,
  ServiceRuntime,
  createHttpApp,
  deadLetterRoutes,
  openServiceDatabase,
  type Database,
  type MessageBus,
  type MessagingTables,
} from '@bstore/platform';
import { eventually, memoryBus, testLogger } from '../../../test/support/harness.ts';
import { scrape, samplesOf, valueOf } from '../../../test/support/metrics.ts';
import { startPrivateNats } from '../../../test/support/nats.ts';
import { freshDatabase } from '../../../test/support/postgres.ts';

/**
 * The platform's scrape-time series on real buses and databases: `bstore_consumer_lag` and
 * `bstore_consumer_redeliveries_total` of an EventConsumer (embedded bus, and a nats-server of
 * the test's own), `bstore_dead_letters` from the dead-letter store, `bstore_db_pool_connections`
 * of a PostgreSQL pool; and a scrape that still answers when a count fails.
 */
const logger = testLogger();
const SERVICE = 'metricstest';
const CONSUMER = 'metricstest';

let nextReservation = 1;

function requested(): EventEnvelope {
  const reservationId = nextReservation++;
  return createEnvelope({
    type: 'ReservationRequested',
    source: sourceOf('reservation'),
    subject: String(reservationId),
    data: { reservationId, bookId: 1, bookName: 'Metrics', customerId: 'alice', preferredLibraryId: null, status: 'bookReserveReq' as const },
  });
}

interface OpenBus {
  bus: MessageBus;
  close(): Promise<void>;
}

const BUSES: [string, () => Promise<OpenBus>][] = [
  [
    'the embedded bus',
    async () => {
      const bus = await memoryBus(logger);
      return { bus, close: () => bus.close() };
    },
  ],
  [
    'NATS JetStream',
    async () => {
      const nats = await startPrivateNats();
      const bus = await NatsJetStreamBus.connect({ servers: nats.url, logger, ackWaitMs: 5000 });
      return {
        bus,
        close: async () => {
          await bus.close();
          await nats.stop();
        },
      };
    },
  ],
];

/** A consuming service on PGlite: an EventConsumer whose handler fails once for the ids in `failOnce`. */
async function consumingService(bus: MessageBus) {
  const database = await openServiceDatabase<MessagingTables>({ kind: 'pglite' }, {}, logger);
  const failOnce = new Set<string>();
  const consumer = new EventConsumer({
    name: CONSUMER,
    inbox: new KyselyInbox(database.db),
    bus,
    logger,
    backoffMs: () => 20,
    handlers: {
      ReservationRequested: async (event) => {
        if (failOnce.delete(event.id)) throw new Error('a transient failure');
      },
    },
  });
  const store = new KyselyDeadLetterStore(database.db);
  const app = createHttpApp({ service: SERVICE, logger });
  await app.register(deadLetterRoutes, { service: SERVICE, store, consumer });
  const runtime = new ServiceRuntime({ name: SERVICE, logger, app, database, consumers: [consumer], operations: {} });
  return { runtime, app, consumer, store, failOnce, database };
}

describe.each(BUSES)('consumer metrics on %s', (_name, openBus) => {
  let opened: OpenBus;
  let service: Awaited<ReturnType<typeof consumingService>>;

  beforeAll(async () => {
    opened = await openBus();
    service = await consumingService(opened.bus);
  });

  afterAll(async () => {
    await service?.runtime.stop();
    await opened?.close();
  });

  const lag = async () => valueOf(await scrape(service.app), 'bstore_consumer_lag', { consumer: CONSUMER });

  it('bstore_consumer_lag counts the events waiting for a stopped consumer and returns to 0 once it runs; a retry is a redelivery', async () => {
    // Declared, not consuming: what arrives is kept for it.
    await service.consumer.declare();
    expect(await lag()).toBe(0);
    const events = Array.from({ length: 5 }, requested);
    service.failOnce.add(events[2]!.id);
    for (const event of events) await opened.bus.publish(subjectOf('ReservationRequested'), event);
    await eventually('the lag to reach 5', async () => ((await lag()) === 5 ? true : undefined));
    const before = await scrape(service.app);
    expect(valueOf(before, 'bstore_consumer_redeliveries_total', { consumer: CONSUMER, service: SERVICE })).toBe(0);

    await service.runtime.startConsumers();
    const after = await eventually('every event handled', async () => {
      const samples = await scrape(service.app);
      return valueOf(samples, 'bstore_consumer_events_total', { consumer: CONSUMER, result: 'handled' }) === 5 ? samples : undefined;
    });
    // The one that failed once came back with a delivery count of 2.
    expect(valueOf(after, 'bstore_consumer_events_total', { consumer: CONSUMER, result: 'retry' })).toBe(1);
    expect(valueOf(after, 'bstore_consumer_redeliveries_total', { consumer: CONSUMER, service: SERVICE })).toBe(1);
    await eventually('the lag to return to 0', async () => ((await lag()) === 0 ? true : undefined));
  });

  it('bstore_dead_letters{service,state} counts a parked event as pending, then as replayed', async () => {
    const labels = (state: string) => ({ service: SERVICE, state });
    const start = await scrape(service.app);
    expect(valueOf(start, 'bstore_dead_letters', labels('pending'))).toBe(0);
    expect(valueOf(start, 'bstore_dead_letters', labels('replayed'))).toBe(0);

    const malformed = { ...requested(), data: { reservationId: 'not a number' } } as unknown as EventEnvelope;
    await opened.bus.publish(subjectOf('ReservationRequested'), malformed);
    const parked = await eventually('the malformed event parked', async () => {
      const samples = await scrape(service.app);
      return valueOf(samples, 'bstore_dead_letters', labels('pending')) === 1 ? samples : undefined;
    });
    expect(valueOf(parked, 'bstore_dead_letters', labels('replayed'))).toBe(0);

    const [letter] = (await service.store.list({ limit: 1, offset: 0 })).items;
    expect(await service.store.markReplayed(letter!.id, new Date())).toBe(true);
    const replayed = await scrape(service.app);
    expect(valueOf(replayed, 'bstore_dead_letters', labels('pending'))).toBe(0);
    expect(valueOf(replayed, 'bstore_dead_letters', labels('replayed'))).toBe(1);
  });
});

describe('a scrape whose reads fail', () => {
  it('still answers, without the series it could not read', async () => {
    const bus = await memoryBus(logger);
    const service = await consumingService(bus);
    await service.consumer.declare();
    expect(samplesOf(await scrape(service.app), 'bstore_dead_letters')).toHaveLength(2);
    expect(samplesOf(await scrape(service.app), 'bstore_consumer_lag')).toHaveLength(1);

    // The database and the bus go away under the running app.
    await service.database.close();
    await bus.close();
    const samples = await scrape(service.app);
    expect(samplesOf(samples, 'bstore_dead_letters')).toEqual([]);
    expect(samplesOf(samples, 'bstore_consumer_lag')).toEqual([]);
    // The rest is served as usual.
    expect(samplesOf(samples, 'bstore_consumer_events_total', { consumer: CONSUMER }).length).toBeGreaterThan(0);
    expect(samplesOf(samples, 'nodejs_eventloop_lag_seconds', { service: SERVICE })).toHaveLength(1);
    await service.app.close();
  });
});

describe('bstore_db_pool_connections', () => {
  it('on PostgreSQL: follows the pool, total, idle and waiting', async () => {
    const fresh = await freshDatabase('pool_metrics');
    const database: Database<MessagingTables> = await openServiceDatabase({ kind: 'postgres', url: fresh.url, poolSize: 1 }, {}, logger);
    const app = createHttpApp({ service: SERVICE, logger });
    const runtime = new ServiceRuntime({ name: SERVICE, logger, app, database, operations: {} });
    try {
      const pool = async () => {
        const samples = await scrape(app);
        return { total: valueOf(samples, 'bstore_db_pool_connections', { state: 'total' }), idle: valueOf(samples, 'bstore_db_pool_connections', { state: 'idle' }), waiting: valueOf(samples, 'bstore_db_pool_connections', { state: 'waiting' }) };
      };
      // The migrations used the one connection and gave it back.
      expect(await pool()).toEqual({ total: 1, idle: 1, waiting: 0 });

      let queued: Promise<unknown> | undefined;
      const during = await database.db.transaction().execute(async (trx) => {
        await trx.selectFrom('inbox').select('event_id').execute();
        const busy = await pool();
        // A second query waits for the only connection, held by this transaction.
        queued = database.db.selectFrom('dead_letters').select('id').execute();
        const waiting = await eventually('a query waiting for a connection', async () => {
          const now = await pool();
          return now.waiting === 1 ? now : undefined;
        });
        return { busy, waiting };
      });
      await queued;
      expect(during.busy).toEqual({ total: 1, idle: 0, waiting: 0 });
      expect(during.waiting).toEqual({ total: 1, idle: 0, waiting: 1 });
      expect(await pool()).toEqual({ total: 1, idle: 1, waiting: 0 });
    } finally {
      await runtime.stop();
      await fresh.drop();
    }
  });

  it('on PGlite: left out (one embedded connection, no pool)', async () => {
    const database = await openServiceDatabase<MessagingTables>({ kind: 'pglite' }, {}, logger);
    const app = createHttpApp({ service: SERVICE, logger });
    const runtime = new ServiceRuntime({ name: SERVICE, logger, app, database, operations: {} });
    try {
      const samples = await scrape(app);
      expect(samplesOf(samples, 'bstore_db_pool_connections')).toEqual([]);
      expect(samplesOf(samples, 'process_cpu_seconds_total', { service: SERVICE })).toHaveLength(1);
    } finally {
      await runtime.stop();
    }
  });
});
