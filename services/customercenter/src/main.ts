import {
  EventConsumer,
  KyselyDeadLetterStore,
  ServiceRuntime,
  createHttpApp,
  deadLetterRoutes,
  openServiceDatabase,
  registerHistogram,
  type DatabaseConfig,
  type DeadLetterStore,
  type DeliveryPolicy,
  type Inbox,
  type Logger,
  type MessageBus,
  type ReadinessCheck,
  type ServiceAuth,
  tracingOf,
  type ServiceTracing,
} from '@bstore/platform';
import { isPageEvent } from './application/events.ts';
import type { PageUpdates, ReservationPageDetail, ReservationPageStore } from './application/ports.ts';
import { MeasureSagaStages } from './application/measure-saga-stages/measure-saga-stages.service.ts';
import { ProjectReservationEvent } from './application/project-reservation-event/project-reservation-event.service.ts';
import { ViewReservationPages } from './application/view-reservation-pages/view-reservation-pages.service.ts';
import { WatchReservationPages } from './application/watch-reservation-pages/watch-reservation-pages.service.ts';
import { customercenterMigrations } from './adapters/db/migrations.ts';
import { KyselyPageStoreInbox } from './adapters/db/page-store.inbox.ts';
import { KyselyReservationPageStore } from './adapters/db/reservation-page.store.ts';
import type { CustomerCenterTables } from './adapters/db/schema.ts';
import { customercenterErrorStatus, customercenterRoutes } from './adapters/http/customercenter.routes.ts';
import { InProcessPageUpdates } from './adapters/live/in-process.page-updates.ts';
import { customercenterEventHandlers } from './adapters/messaging/customercenter.handlers.ts';
import { connectRedis } from './adapters/redis/client.ts';
import { RedisInbox } from './adapters/redis/inbox.ts';
import { ReadModelKeys } from './adapters/redis/keys.ts';
import { RedisPageUpdates } from './adapters/redis/page-updates.ts';
import { RedisReservationPageStore } from './adapters/redis/reservation-page.store.ts';

/** The read model on Redis (cluster mode). */
export interface RedisReadModelConfig {
  /** redis://[user:password@]host:port[/db], or rediss:// for TLS. */
  url: string;
  /** Prefix of every key and of the pub/sub channel; default `bstore:customercenter:`. */
  keyPrefix?: string;
}

/**
 * What the customer center is given: the bus, a logger, and exactly one home for its read model,
 * a SQL database (PGlite in embedded mode, or PostgreSQL) or Redis. A launcher's `ServiceDeps`
 * (with `database`) fits as it is.
 */
export interface CustomerCenterDeps {
  bus: MessageBus;
  logger: Logger;
  auth: ServiceAuth;
  database?: DatabaseConfig;
  redis?: RedisReadModelConfig;
  /** Spans and trace ids (default: ids only); see ServiceDeps. */
  tracing?: ServiceTracing;
  /** How its consumer retries before parking a dead letter (default the consumer's); see ServiceDeps. */
  delivery?: DeliveryPolicy;
}

export interface CustomerCenterConfig {
  /** Interval of the SSE comment that keeps proxies from closing an idle stream (default 15 s). */
  heartbeatMs?: number;
}

/**
 * Composition root of the customer center: the read model of reservations, with live updates. Its
 * hosts run nothing of it besides serving (the rebuild is a command of its own: rebuild.ts).
 */
export type CustomerCenterService = ServiceRuntime<Record<string, never>>;

/** Where the read model is held, and the parts that depend on it. */
interface ReadModel {
  store: ReservationPageStore;
  inbox: Inbox<ReservationPageStore>;
  updates: PageUpdates;
  readiness: Record<string, ReadinessCheck>;
  /** Closed by the runtime last, after the consumers and HTTP stopped. */
  resources: { close(): Promise<void> };
  /** Where its dead letters are listed: beside the read model, in Redis with it or in its SQL database. */
  deadLetters: DeadLetterStore;
}

export async function createCustomerCenterService(deps: CustomerCenterDeps, config: CustomerCenterConfig = {}): Promise<CustomerCenterService> {
  const logger = deps.logger.child({ service: 'customercenter' });
  const tracing = tracingOf(deps, 'customercenter');
  const readModel = await openReadModel(deps, logger);
  try {
    // Nothing here emits events, so there is no outbox relay.
    const { store } = readModel;
    const app = createHttpApp({ service: 'customercenter', tracing, auth: deps.auth, logger, errorStatus: customercenterErrorStatus, readiness: readModel.readiness });
    const watch = new WatchReservationPages(store, readModel.updates);
    const observeStage = registerHistogram(app.metrics, {
      name: 'bstore_saga_stage_duration_seconds',
      help: 'Duration of a saga stage by event times: reserve (ReservationRequested to ReservationAccepted), cancel (ReservationCancelRequested to ReservationCanceled)',
      labelNames: ['stage'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
    const stages = new MeasureSagaStages(store, { observe: (stage, seconds) => observeStage({ stage }, seconds) });
    const consumer = new EventConsumer({
      name: 'customercenter',
      tracer: tracing.tracer,
      inbox: readModel.inbox,
      bus: deps.bus,
      logger,
      handlers: customercenterEventHandlers(new ProjectReservationEvent()),
      ...deps.delivery,
      // Called only for an event newly projected, once it is stored: the live stream shows the
      // change (and the new places in line of the book's other waiting pages, when the page joined
      // or left the line), and a saga stage the event completes is timed (never twice for a duplicate).
      afterCommit: async (event) => {
        if (!isPageEvent(event)) return;
        // One read of the page and its timeline serves both (a second read cost a Redis round trip).
        let announced: ReservationPageDetail | null = null;
        try {
          announced = await watch.announce(event.data.reservationId, event.id);
        } finally {
          await stages.projected(event, announced?.timeline);
        }
      },
    });

    await app.register(customercenterRoutes, {
      pages: new ViewReservationPages(store),
      watch,
      ...(config.heartbeatMs !== undefined ? { heartbeatMs: config.heartbeatMs } : {}),
    });
    // The dead letters live beside the read model: in Redis with it, or in its SQL database.
    await app.register(deadLetterRoutes, { service: 'customercenter', store: readModel.deadLetters, consumer });

    return new ServiceRuntime<Record<string, never>>({
      name: 'customercenter',
      logger,
      tracing,
      app,
      database: readModel.resources,
      consumers: [consumer],
      operations: {},
    });
  } catch (err) {
    await readModel.resources.close();
    throw err;
  }
}

function openReadModel(deps: CustomerCenterDeps, logger: Logger): Promise<ReadModel> {
  if (deps.database && deps.redis) throw new Error('customercenter: give its read model either a database or redis, not both');
  if (deps.database) return openSqlReadModel(deps.database, logger);
  if (deps.redis) return openRedisReadModel(deps.redis, logger);
  throw new Error('customercenter needs a home for its read model: a database (SQL) or redis');
}

/** Pages in SQL: the inbox commits each event id with its change; live updates stay in process. */
async function openSqlReadModel(config: DatabaseConfig, logger: Logger): Promise<ReadModel> {
  const database = await openServiceDatabase<CustomerCenterTables>(config, customercenterMigrations, logger);
  const { db } = database;
  return {
    store: new KyselyReservationPageStore(db),
    inbox: new KyselyPageStoreInbox(db),
    updates: new InProcessPageUpdates(logger),
    readiness: {
      database: async () => void (await db.selectFrom('reservation_pages').select('reservation_id').limit(1).execute()),
    },
    resources: database,
    deadLetters: new KyselyDeadLetterStore(db),
  };
}

/**
 * Pages in Redis, shared by every replica: no SQL database at all. One connection serves the
 * store, the inbox and publishing; live updates listen on a second one.
 */
async function openRedisReadModel(config: RedisReadModelConfig, logger: Logger): Promise<ReadModel> {
  const keys = new ReadModelKeys(config.keyPrefix);
  const redis = await connectRedis(config.url, logger);
  const quit = () => redis.quit().then(
    () => undefined,
    () => redis.disconnect(),
  );
  try {
    const store = new RedisReservationPageStore(redis, keys);
    const inbox = new RedisInbox(redis, store);
    const updates = await RedisPageUpdates.start({ redis, channel: keys.pagesChannel, logger });
    return {
      store,
      inbox,
      updates,
      readiness: { redis: async () => void (await redis.ping()) },
      resources: {
        close: async () => {
          await updates.close();
          await quit();
        },
      },
      deadLetters: inbox,
    };
  } catch (err) {
    await quit();
    throw err;
  }
}
