import { join } from 'node:path';
import { EmbeddedBus, ServiceTracing, demoServiceAuth, readSettings, type DatabaseConfig, type Env, type Logger, type ServiceAuth, type ServiceModule, type ServiceRuntime, type TracingSettings } from '@bstore/platform';
import { acquireDataLock } from './data-lock.ts';
import { DEFAULT_PORTS, MODULES, urlVariableOf, type ConfigOf, type RuntimeOf, type ServiceName } from './registry.ts';

export { DEFAULT_PORTS, type ServiceName } from './registry.ts';

/** Per service, in-process overrides of the settings it reads (tests: a short sweep, a clock). */
export type ServiceOverrides = { [N in ServiceName]?: Partial<ConfigOf<N>> };

export interface EmbeddedOptions extends ServiceOverrides {
  /** Folder of the PGlite databases (one per service, plus the bus); omitted: all in memory. */
  dataDir?: string;
  /** Another database per service (for instance PostgreSQL); the bus stays embedded. */
  databases?: Partial<Record<ServiceName, DatabaseConfig>>;
  host?: string;
  /** Port per service; 0 picks a free one (tests). */
  ports?: Partial<Record<ServiceName, number>>;
  logger: Logger;
  /** Adds the demo data that is missing (each service's own: books, libraries). */
  seedDemoData?: boolean;
  /** Services whose event consumers stay stopped: a fault drill (events wait for them durably). */
  pausedConsumers?: readonly ServiceName[];
  /**
   * The variables every service reads its settings from, by its own schema: the same variables
   * as a service process (`npm start` passes its environment). Default: none set, every default.
   * Each service's URL is added for the services started after it (`BOOK_URL` for reservation).
   */
  env?: Env;
  /** How callers are authenticated; default the demo identity (embedded mode is a developer's). */
  auth?: ServiceAuth;
  /** The services to run, in start-up order; default the registry (registry.ts). */
  services?: readonly ServiceModule[];
  /** Each service's tracing (its own tracer provider, these exporters); default off: trace ids only. */
  tracing?: TracingSettings;
}

export type EmbeddedSystem = { readonly [N in ServiceName]: RuntimeOf<N> } & {
  readonly bus: EmbeddedBus;
  readonly urls: Record<ServiceName, string>;
  stop(): Promise<void>;
};

/**
 * The whole of bstore in one process: an HTTP server per service on its own port, each service
 * with its own PGlite database, and the embedded bus between them. Every service is built by its
 * module (the registry), as the other hosts build it; only the database and bus differ.
 */
export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedSystem> {
  const { logger } = options;
  const host = options.host ?? '127.0.0.1';
  const modules = options.services ?? MODULES;
  const ports: Record<string, number | undefined> = { ...DEFAULT_PORTS, ...options.ports };
  const releaseLock = options.dataDir ? await acquireDataLock(options.dataDir) : async () => {};
  const database = (name: string): DatabaseConfig =>
    options.databases?.[name as ServiceName] ?? (options.dataDir ? { kind: 'pglite', dataDir: join(options.dataDir, name) } : { kind: 'pglite' });

  // Each service built so far, in start-up order.
  const runtimes: Record<string, ServiceRuntime> = {};
  let bus: EmbeddedBus | undefined;
  let stopping: Promise<void> | undefined;
  // In reverse order of start: nothing stops while something still calls it. Safe to call twice.
  const stopAll = () =>
    (stopping ??= (async () => {
      for (const s of Object.values(runtimes).reverse()) await s.stop().catch((err: unknown) => logger.error({ err }, 'stop failed'));
      await bus?.close();
      await releaseLock();
    })());

  try {
    // The launcher's own lines, and the shared bus's, name their source like the services' do.
    const own = logger.child({ service: 'launcher' });
    bus = await EmbeddedBus.open({ database: database('bus'), logger: own.child({ component: 'bus' }) });
    const auth = options.auth ?? (await demoServiceAuth());
    const embeddedBus = bus;
    const busReady = async () => {
      if (!(await embeddedBus.healthy())) throw new Error('the embedded bus is closed');
    };
    // What the services read: the given variables, plus the URL of each service started so far.
    const env: Record<string, string | undefined> = { ...options.env };
    const urls: Record<string, string> = {};

    for (const module of modules) {
      const name = module.name as ServiceName;
      const settings = readSettings(module.settings, env);
      const overrides = (options as ServiceOverrides)[name] ?? {};
      const runtime = await module.build(
        {
          logger,
          auth,
          tracing: new ServiceTracing(name, options.tracing),
          // Embedded mode keeps every service's data in a database of its own (PGlite by default).
          ...(module.migrations ? { database: database(name) } : {}),
          ...(module.usesBus ? { bus: embeddedBus } : {}),
        },
        { ...settings, ...overrides },
      );
      runtimes[name] = runtime;
      if (module.usesBus) runtime.app.addReadinessCheck('bus', busReady);
      urls[name] = await runtime.start({ port: ports[name] ?? module.defaultPort, host, consumers: !options.pausedConsumers?.includes(name) });
      env[urlVariableOf(name)] = urls[name];
    }

    for (const module of modules) {
      const runtime = runtimes[module.name] as ServiceRuntime;
      if (options.seedDemoData && module.seedDemoData) {
        const added = await module.seedDemoData(runtime);
        if (Object.values(added).some((n) => n > 0)) logger.child({ service: module.name }).info(added, 'demo data added');
      }
    }
    // What a previous run left behind (pending reservations, deadlines passed while it was down).
    for (const module of modules) await module.afterStart?.(runtimes[module.name] as ServiceRuntime, own);

    return { ...runtimes, bus, urls, stop: stopAll } as unknown as EmbeddedSystem;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
