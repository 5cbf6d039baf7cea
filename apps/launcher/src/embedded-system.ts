import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmbeddedBus, ServiceTracing, demoServiceAuth, type DatabaseConfig, type Logger, type ServiceAuth, type TracingSettings } from '@bstore/platform';
import { createAssignmentService, seedLibraries, type AssignmentConfig, type AssignmentService } from '@bstore/assignment';
import { createBookService, DEMO_BOOKS, type BookService } from '@bstore/book';
import { createCustomerCenterService, type CustomerCenterService } from '@bstore/customercenter';
import { createGatewayService, type GatewayConfig, type GatewayService } from '@bstore/gateway';
import { createReservationService, type ReservationConfig, type ReservationService } from '@bstore/reservation';
import { acquireDataLock } from './data-lock.ts';

/** The seed's ports. */
export const DEFAULT_PORTS = { gateway: 8088, reservation: 8081, assignment: 8082, book: 8083, customercenter: 8084 } as const;

export type ServiceName = keyof typeof DEFAULT_PORTS;

/** The repository's built web app (`npm run build:web`), from this package's src/ or dist/ alike. */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../../web/dist', import.meta.url));

export interface EmbeddedOptions {
  /** Folder of the PGlite databases (one per service, plus the bus); omitted: all in memory. */
  dataDir?: string;
  /** Another database per service (for instance PostgreSQL); the bus stays embedded. */
  databases?: Partial<Record<Exclude<ServiceName, 'gateway'>, DatabaseConfig>>;
  host?: string;
  /** Port per service; 0 picks a free one (tests). */
  ports?: Partial<Record<ServiceName, number>>;
  logger: Logger;
  /** Adds the demo catalogue and libraries that are missing. */
  seedDemoData?: boolean;
  /** Services whose event consumers stay stopped: a fault drill (events wait for them durably). */
  pausedConsumers?: readonly ServiceName[];
  /** Overrides for the reservation service (sweep timing, book timeout). */
  reservation?: Partial<Omit<ReservationConfig, 'bookUrl'>>;
  /** Overrides for the assignment service (the pickup period, BSTORE_PICKUP_PERIOD). */
  assignment?: AssignmentConfig;
  /** The gateway's rate limits and CORS origins (defaults: 600 a minute per caller, 1200 per IP, no CORS). */
  gateway?: Pick<GatewayConfig, 'rateLimit' | 'corsOrigins' | 'loginAttemptsPerMinute'>;
  /**
   * The built web app the gateway serves at GET / (absolute path); default the repository's
   * web/dist (DEFAULT_WEB_ROOT); `false`: none. Not built yet: GET / answers 503 WEB_APP_NOT_BUILT.
   */
  webRoot?: string | false;
  /** How callers are authenticated; default the demo identity (embedded mode is a developer's). */
  auth?: ServiceAuth;
  /** Each service's tracing (its own tracer provider, these exporters); default off: trace ids only. */
  tracing?: TracingSettings;
}

export interface EmbeddedSystem {
  readonly book: BookService;
  readonly assignment: AssignmentService;
  readonly customercenter: CustomerCenterService;
  readonly reservation: ReservationService;
  readonly gateway: GatewayService;
  readonly bus: EmbeddedBus;
  readonly urls: Record<ServiceName, string>;
  stop(): Promise<void>;
}

/**
 * The whole of bstore in one process: five HTTP servers on their own ports, each service with its
 * own PGlite database, and the embedded bus between them. Every service is built by the same
 * composition root the cluster launcher uses; only the database and bus configuration differ.
 */
export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedSystem> {
  const { logger } = options;
  const host = options.host ?? '127.0.0.1';
  const ports = { ...DEFAULT_PORTS, ...options.ports };
  const listen = (name: ServiceName) => ({ port: ports[name], host, consumers: !options.pausedConsumers?.includes(name) });
  const releaseLock = options.dataDir ? await acquireDataLock(options.dataDir) : async () => {};
  const database = (name: string): DatabaseConfig =>
    options.databases?.[name as keyof typeof options.databases] ??
    (options.dataDir ? { kind: 'pglite', dataDir: join(options.dataDir, name) } : { kind: 'pglite' });

  const started: { stop(): Promise<void> }[] = [];
  let bus: EmbeddedBus | undefined;
  let stopping: Promise<void> | undefined;
  // Gateway first, book last: nothing stops while something still calls it. Safe to call twice.
  const stopAll = () =>
    (stopping ??= (async () => {
      for (const s of [...started].reverse()) await s.stop().catch((err: unknown) => logger.error({ err }, 'stop failed'));
      await bus?.close();
      await releaseLock();
    })());

  try {
    // The launcher's own lines, and the shared bus's, name their source like the services' do.
    const own = logger.child({ service: 'launcher' });
    bus = await EmbeddedBus.open({ database: database('bus'), logger: own.child({ component: 'bus' }) });
    const auth = options.auth ?? (await demoServiceAuth());
    const tracing = (name: ServiceName) => new ServiceTracing(name, options.tracing);
    const deps = (name: Exclude<ServiceName, 'gateway'>) => ({ database: database(name), bus: bus as EmbeddedBus, logger, auth, tracing: tracing(name) });
    const embeddedBus = bus;
    const busReady = async () => {
      if (!(await embeddedBus.healthy())) throw new Error('the embedded bus is closed');
    };

    // Book's limit of held copies is reservation's limit of active reservations (ADR 0021).
    const book = await createBookService(deps('book'), { maxHeldCopiesPerCustomer: options.reservation?.maxActiveReservationsPerCustomer ?? 5 });
    started.push(book);
    book.app.addReadinessCheck('bus', busReady);
    await book.start(listen('book'));

    // The pickup period is one setting: assignment stamps it on ReservationAccepted, reservation falls back on it.
    const assignment = await createAssignmentService(deps('assignment'), { pickupPeriodMs: options.assignment?.pickupPeriodMs ?? options.reservation?.pickupPeriodMs });
    started.push(assignment);
    assignment.app.addReadinessCheck('bus', busReady);
    await assignment.start(listen('assignment'));

    const customercenter = await createCustomerCenterService(deps('customercenter'));
    started.push(customercenter);
    customercenter.app.addReadinessCheck('bus', busReady);
    await customercenter.start(listen('customercenter'));

    const reservation = await createReservationService(deps('reservation'), { ...options.reservation, bookUrl: book.url });
    started.push(reservation);
    reservation.app.addReadinessCheck('bus', busReady);
    await reservation.start(listen('reservation'));

    const gateway = await createGatewayService(
      { logger, auth, tracing: tracing('gateway') },
      {
        ...options.gateway,
        upstreams: { reservation: reservation.url, assignment: assignment.url, book: book.url, customercenter: customercenter.url },
        ...(options.webRoot === false ? {} : { webRoot: options.webRoot ?? DEFAULT_WEB_ROOT }),
      },
    );
    started.push(gateway);
    await gateway.start(listen('gateway'));

    if (options.seedDemoData) {
      const books = await book.internals.seedCatalogue.execute(DEMO_BOOKS);
      const libraries = await seedLibraries(assignment);
      if (books + libraries.length > 0) own.info({ books, libraries: libraries.length }, 'demo data added');
    }
    // Reservations a previous run left pending are driven on at once, not after the first interval;
    // a failure here is the sweep's to retry, not a reason to refuse to start.
    await reservation.internals.recoverPending.execute().catch((err: unknown) => own.error({ err }, 'start-up recovery sweep failed'));
    // Copies whose pickup deadline passed while the service was down expire now, not an interval later.
    await reservation.internals.expireUncollected.execute().catch((err: unknown) => own.error({ err }, 'start-up deadline sweep failed'));

    return {
      book,
      assignment,
      customercenter,
      reservation,
      gateway,
      bus,
      urls: { gateway: gateway.url, reservation: reservation.url, assignment: assignment.url, book: book.url, customercenter: customercenter.url },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
