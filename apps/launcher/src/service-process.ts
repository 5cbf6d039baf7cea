import { DEMO_USERS, NatsJetStreamBus, REPLICA_STATE_HEADER, ServiceTracing, createHttpApp, createServiceAuth, HttpProblem, type Logger, type MessageBus, type ServiceAuth, type ServiceRuntime } from '@bstore/platform';
import type { ServiceProcessConfig } from './service-config.ts';

export interface RunningService {
  readonly url: string;
  readonly runtime: ServiceRuntime;
  /** Graceful stop: readiness fails, work in flight finishes, the bus and database close. */
  stop(): Promise<void>;
}

/** Builds one service by its module, with the database and bus its settings say it uses. */
async function buildService(config: ServiceProcessConfig, bus: MessageBus | undefined, logger: Logger, auth: ServiceAuth): Promise<ServiceRuntime> {
  const { module } = config;
  // Made with the service (a start that is retried makes a new one): the runtime shuts it down.
  const tracing = new ServiceTracing(config.service, config.tracing);
  const runtime = await module.build({ logger, auth, tracing, ...(config.database ? { database: config.database } : {}), ...(bus ? { bus } : {}) }, config.settings);
  if (config.demoData && module.seedDemoData) {
    try {
      await module.seedDemoData(runtime);
    } catch (err) {
      await runtime.stop();
      throw err;
    }
  }
  return runtime;
}

/**
 * What answers on the service's port while it cannot start yet (its database or the bus is down):
 * live, not ready (with the reason), and 503 with Retry-After for everything else, so an operator
 * and a load balancer both see a service that is waiting, not one that is crash-looping.
 */
async function startWaitingRoom(config: ServiceProcessConfig, logger: Logger, reason: () => string) {
  const app = createHttpApp({
    service: config.service,
    logger,
    readiness: {
      startup: async () => {
        throw new Error(reason());
      },
    },
  });
  app.all('/*', async () => {
    // The reason stays in the log and the readiness check: it may name internal hosts.
    // The header tells a gateway that nothing was done here: it may send the request to another replica.
    throw new HttpProblem(503, 'SERVICE_STARTING', `${config.service} is starting; try again shortly`, { headers: { 'retry-after': '2', [REPLICA_STATE_HEADER]: 'starting' } });
  });
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  return { app, port: typeof address === 'object' && address ? address.port : config.port };
}

/** Says plainly when the demo identity is on, or when real configuration turned it off. */
export function warnAboutIdentity(auth: ServiceProcessConfig['auth'], logger: Logger): void {
  if (auth.settings.demo) {
    logger.warn(
      { users: DEMO_USERS.map((u) => `${u.username}/${u.password} (${u.role})`) },
      'DEMO IDENTITY: anyone can sign in as the demo users, and the demo signing key is published in the repository; never expose this beyond your own machine (docs/security.md)',
    );
  } else if (auth.demoOverridden) {
    logger.warn('BSTORE_DEMO_AUTH is ignored: real identity configuration (BSTORE_AUTH_*) is set, so the demo users and key are off');
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts one service as its own process would: connects to the bus and the database, retrying
 * with backoff (and reporting not-ready meanwhile) while either is down, then serves on its port.
 * `signal` aborts a start that is still waiting.
 */
export async function runService(config: ServiceProcessConfig, rootLogger: Logger, signal?: AbortSignal): Promise<RunningService> {
  // The services name themselves in their log lines; the launcher's own lines get the name here.
  const logger = rootLogger;
  const own = rootLogger.child({ service: config.service });
  // Built once, before anything else: a bad key fails the start at once, not on the first request.
  const auth = await createServiceAuth(config.auth.settings);
  warnAboutIdentity(config.auth, own);
  let lastError = 'connecting to its database and the bus';
  // A service that waits for nothing (no database, no bus: the gateway) has no waiting room.
  const waiting = !config.nats && !config.database ? undefined : await startWaitingRoom(config, own, () => lastError);

  let bus: NatsJetStreamBus | undefined;
  let runtime: ServiceRuntime | undefined;
  try {
    for (let attempt = 1; !runtime; attempt++) {
      if (signal?.aborted) throw new Error(`${config.service} stopped before it started`);
      try {
        if (config.nats && !bus) {
          bus = await NatsJetStreamBus.connect({
            servers: config.nats.servers,
            streamName: config.nats.stream,
            ...(config.nats.streamReplicas !== undefined ? { streamReplicas: config.nats.streamReplicas } : {}),
            name: `${config.service}-${process.pid}`,
            logger: own.child({ component: 'bus' }),
          });
        }
        runtime = await buildService(config, bus, logger, auth);
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        const delay = Math.min(500 * 2 ** (attempt - 1), config.startRetryMaxMs);
        own.warn({ err, attempt, retryInMs: delay }, 'cannot start yet; retrying');
        await sleep(delay);
      }
    }
  } catch (err) {
    await waiting?.app.close();
    await bus?.close();
    throw err;
  }

  const port = waiting ? waiting.port : config.port;
  await waiting?.app.close();
  const activeBus = bus;
  if (activeBus) {
    runtime.app.addReadinessCheck('bus', async () => {
      if (!(await activeBus.healthy())) throw new Error('the bus is not connected');
    });
  }
  const url = await runtime.start({ port, host: config.host });

  // What a previous run left behind (the module says what: pending reservations, passed deadlines).
  await config.module.afterStart?.(runtime, own);

  let stopping: Promise<void> | undefined;
  const started = runtime;
  return {
    url,
    runtime: started,
    stop: () =>
      (stopping ??= (async () => {
        await started.stop({ drainDelayMs: config.drainDelayMs });
        await activeBus?.close();
      })()),
  };
}
