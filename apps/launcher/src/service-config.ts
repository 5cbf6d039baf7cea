import { databaseSettings, describeSettings, natsSettings, readDatabaseSettings, readNatsSettings, readSettings, setting, usesSql, type Env, type PostgresConfig, type ServiceModule, type TracingSettings } from '@bstore/platform';
import { ConfigError } from './env.ts';
import { readAuthConfig, type AuthConfig } from './auth-config.ts';
import { readTracingConfig } from './tracing-config.ts';
import { MODULES, type ServiceName } from './registry.ts';

export { SERVICE_NAMES } from './registry.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The settings every service process reads, whatever the service (README: "Environment of a service process"). */
export function processSettings(module: ServiceModule) {
  return {
    host: setting.custom('HOST', '127.0.0.1', (text) => (text && text.trim() !== '' ? text.trim() : '127.0.0.1')),
    port: { ...setting.int('PORT', module.defaultPort, { min: 0, max: 65_535 }), defaultText: "the seed's port" },
    demoData: setting.bool('BSTORE_DEMO_DATA', false),
    logLevel: setting.choice('LOG_LEVEL', LOG_LEVELS, 'info'),
    logFormat: setting.choice('LOG_FORMAT', ['json', 'pretty'], 'json'),
    /** Longest a graceful stop may take before the process exits anyway. */
    shutdownGraceMs: setting.int('BSTORE_SHUTDOWN_GRACE_MS', 10_000, { min: 100, max: 600_000 }),
    /** How long readiness fails before the service stops taking requests (a Kubernetes endpoint update). */
    drainDelayMs: setting.int('BSTORE_DRAIN_DELAY_MS', 0, { min: 0, max: 120_000 }),
    /** Cap of the backoff between attempts to reach the database and the bus at start. */
    startRetryMaxMs: setting.int('BSTORE_START_RETRY_MAX_MS', 15_000, { min: 100, max: 600_000 }),
  };
}

export interface ServiceProcessConfig {
  service: ServiceName;
  module: ServiceModule;
  host: string;
  port: number;
  /** Present when the service keeps its data in SQL with these settings. */
  database?: PostgresConfig;
  /** Present when the service uses the bus. `streamReplicas` undefined: a new stream gets 1, an existing one keeps its own. */
  nats?: { servers: string[]; stream: string; streamReplicas?: number };
  /** The service's own settings, read by its module's schema. */
  settings: Record<string, unknown>;
  /** Add the demo data that is missing (the module's `seedDemoData`). */
  demoData: boolean;
  /** How callers are authenticated: demo identity or BSTORE_AUTH_* (docs/security.md). */
  auth: AuthConfig;
  /** Spans exported over OTLP when the OTEL_* variables ask for it (tracing-config.ts); off by default. */
  tracing: TracingSettings;
  log: { level: string; format: 'json' | 'pretty' };
  shutdownGraceMs: number;
  drainDelayMs: number;
  startRetryMaxMs: number;
}

function moduleOf(service: string, modules: readonly ServiceModule[] = MODULES): ServiceModule {
  const module = modules.find((m) => m.name === service);
  if (!module) throw new ConfigError(`unknown service ${JSON.stringify(service)} (BSTORE_SERVICE or the first argument; known: ${modules.map((m) => m.name).join(', ')})`);
  return module;
}

/**
 * The service's PostgreSQL database from DATABASE_URL, DATABASE_SCHEMA, DATABASE_POOL_SIZE,
 * DATABASE_CREATE and DATABASE_MIGRATE; undefined for a service that keeps none with these settings
 * (the gateway; customercenter unless BSTORE_READ_MODEL=postgres). What the service and its
 * migration job share.
 */
export function readDatabaseConfig(env: Env, service: string): PostgresConfig | undefined {
  return keepsSqlDatabase(env, service) ? readDatabaseSettings(env, service) : undefined;
}

/** Whether `service`, with these settings, keeps its data in a SQL database (its module says). */
export function keepsSqlDatabase(env: Env, service: string): boolean {
  const module = moduleOf(service);
  return usesSql(module, readSettings(module.settings, env));
}

/** The services that may keep a SQL database (they have migrations), for the migration job. */
export const SQL_CAPABLE_SERVICES: readonly string[] = MODULES.filter((m) => m.migrations).map((m) => m.name);

/**
 * The configuration of one service process, from its environment (see the README's table): the
 * process's own settings, the database and bus it uses, and its module's settings, nothing else.
 * Every variable has a default that points at this machine's local servers; a bad value throws a
 * ConfigError naming the variable.
 *
 * @example
 * const config = readServiceConfig(process.env, 'book'); // DATABASE_URL, NATS_URL, PORT, ...
 */
export function readServiceConfig(env: Env, service: string, modules: readonly ServiceModule[] = MODULES): ServiceProcessConfig {
  const module = moduleOf(service, modules);
  const own = readSettings(processSettings(module), env);
  const settings = readSettings(module.settings, env) as Record<string, unknown>;
  const nats = module.usesBus ? readNatsSettings(env) : undefined;
  return {
    service: module.name as ServiceName,
    module,
    host: own.host,
    port: own.port,
    ...(usesSql(module, settings) ? { database: readDatabaseSettings(env, module.name) } : {}),
    ...(nats ? { nats: { servers: nats.servers, stream: nats.stream, ...(nats.streamReplicas !== undefined ? { streamReplicas: nats.streamReplicas } : {}) } } : {}),
    settings,
    demoData: own.demoData,
    // A service started on its own (Kubernetes) never falls back to the demo identity.
    auth: readAuthConfig(env, module.name, false),
    tracing: readTracingConfig(env),
    log: { level: own.logLevel, format: own.logFormat },
    shutdownGraceMs: own.shutdownGraceMs,
    drainDelayMs: own.drainDelayMs,
    startRetryMaxMs: own.startRetryMaxMs,
  };
}

/**
 * The variables a process of `service` reads through schemas: the process's own, its module's, and
 * those of the bus and the database it may use. Identity (`BSTORE_AUTH_*`, auth-config.ts) and
 * tracing (`OTEL_*`, tracing-config.ts) have readers of their own.
 */
export function schemaVariablesOf(service: string): string[] {
  const module = moduleOf(service);
  const schemas = [processSettings(module), module.settings, ...(module.usesBus ? [natsSettings] : []), ...(module.migrations ? [databaseSettings(module.name)] : [])];
  return [...new Set(schemas.flatMap((schema) => describeSettings(schema).map((s) => s.variable)))];
}
