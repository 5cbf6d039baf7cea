import { resolve } from 'node:path';
import type { DatabaseConfig, TracingSettings } from '@bstore/platform';
import { DEFAULT_PORTS, DEFAULT_WEB_ROOT, type ServiceName } from './embedded-system.ts';
import { ConfigError, boolSetting, choiceSetting, durationSetting, intSetting, nameSetting, urlListSetting, urlSetting } from './env.ts';
import { readAuthConfig, type AuthConfig } from './auth-config.ts';
import { readTracingConfig } from './tracing-config.ts';

export const SERVICE_NAMES = Object.keys(DEFAULT_PORTS) as ServiceName[];

/** Services with a SQL database of their own (customercenter has one only with BSTORE_READ_MODEL=postgres). */
const SQL_SERVICES: readonly ServiceName[] = ['book', 'reservation', 'assignment'];

export interface ServiceProcessConfig {
  service: ServiceName;
  host: string;
  port: number;
  database?: Extract<DatabaseConfig, { kind: 'postgres' }>;
  redis?: { url: string; keyPrefix: string };
  /** Absent for the gateway, which reads no events. */
  /** `streamReplicas` undefined: create the stream with 1, and leave an existing one's as they are. */
  nats?: { servers: string[]; stream: string; streamReplicas?: number };
  reservation: {
    bookUrl: string;
    bookTimeoutMs: number;
    sweepIntervalMs: number;
    staleAfterMs: number;
    maxHoldAttempts: number;
    maxActiveReservationsPerCustomer: number;
    /** Absent: max(60 s, 10 x bookTimeoutMs). */
    idempotencyLockMs?: number;
    bookRetries: number;
    bookCircuitThreshold: number;
    bookCircuitHalfOpenAfterMs: number;
    bookMaxConcurrentCalls: number;
  } & LendingSettings;
  assignment: Pick<LendingSettings, 'pickupPeriodMs'>;
  book: {
    /** Copies one patron may hold at once: BSTORE_MAX_ACTIVE_RESERVATIONS, the same number as reservation's limit (ADR 0021). */
    maxHeldCopiesPerCustomer: number;
  };
  gateway: {
    /** Each upstream's replicas (one URL, such as a Kubernetes Service, or several to balance over). */
    upstreams: Record<Exclude<ServiceName, 'gateway'>, string[]>;
    timeoutMs: number;
    loginAttemptsPerMinute: number;
    /** The built web app served at GET / (BSTORE_WEB_ROOT); absent: none. */
    webRoot?: string;
  } & GatewayProtectionSettings;
  /** Add the demo catalogue (book) and libraries (assignment) that are missing. */
  demoData: boolean;
  /** How callers are authenticated: demo identity or BSTORE_AUTH_* (docs/security.md). */
  auth: AuthConfig;
  /** Spans exported over OTLP when the OTEL_* variables ask for it (tracing-config.ts); off by default. */
  tracing: TracingSettings;
  log: { level: string; format: 'json' | 'pretty' };
  /** Longest a graceful stop may take before the process exits anyway. */
  shutdownGraceMs: number;
  /** How long readiness fails before the service stops taking requests (a Kubernetes endpoint update). */
  drainDelayMs: number;
  /** Cap of the backoff between attempts to reach the database and the bus at start. */
  startRetryMaxMs: number;
}

/** The gateway's edge protections (both modes read them the same way). */
export interface GatewayProtectionSettings {
  rateLimit: { perTokenPerMinute: number; perIpPerMinute: number };
  corsOrigins: string[];
}

/** The library's deadlines (ADR 0022), read the same way by every launcher. */
export interface LendingSettings {
  /** BSTORE_PICKUP_PERIOD: how long a copy waits for pickup once a library is assigned (ISO 8601, default P7D). */
  pickupPeriodMs: number;
  /** BSTORE_LOAN_PERIOD: how long a loan lasts from check-out (ISO 8601, default P14D). */
  loanPeriodMs: number;
  /** BSTORE_DEADLINE_SWEEP_INTERVAL_MS: how often copies not picked up are expired (default 60000). */
  deadlineSweepIntervalMs: number;
}

export function readLendingSettings(env: NodeJS.ProcessEnv): LendingSettings {
  const range = { minMs: 1000, maxMs: 366 * 86_400_000 };
  return {
    pickupPeriodMs: durationSetting(env, 'BSTORE_PICKUP_PERIOD', 'P7D', range),
    loanPeriodMs: durationSetting(env, 'BSTORE_LOAN_PERIOD', 'P14D', range),
    deadlineSweepIntervalMs: intSetting(env, 'BSTORE_DEADLINE_SWEEP_INTERVAL_MS', 60_000, { min: 100, max: 86_400_000 }),
  };
}

/**
 * BSTORE_RATE_LIMIT_PER_MINUTE (per caller: bearer token, else X-Customer-Id; default 600),
 * BSTORE_RATE_LIMIT_IP_PER_MINUTE (per client address; default 1200), 0 turning one off, and
 * BSTORE_CORS_ORIGINS (comma-separated exact origins such as `https://app.example.org`; default none).
 */
export function readGatewayProtections(env: NodeJS.ProcessEnv): GatewayProtectionSettings {
  const corsOrigins = (env.BSTORE_CORS_ORIGINS ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin.length > 0);
  for (const origin of corsOrigins) {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== origin) {
      throw new ConfigError(`BSTORE_CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin (scheme://host[:port], no path or trailing slash, e.g. https://app.example.org)`);
    }
  }
  return {
    rateLimit: {
      perTokenPerMinute: intSetting(env, 'BSTORE_RATE_LIMIT_PER_MINUTE', 600, { min: 0, max: 1_000_000 }),
      perIpPerMinute: intSetting(env, 'BSTORE_RATE_LIMIT_IP_PER_MINUTE', 1200, { min: 0, max: 1_000_000 }),
    },
    corsOrigins,
  };
}

/**
 * BSTORE_WEB_ROOT: the folder of the built web app the gateway serves at GET / (default the
 * repository's web/dist, built by `npm run build:web`; a relative path is taken from the current
 * directory); set but empty: no web app (GET / is a 404). Undefined when there is none.
 */
export function readWebRoot(env: NodeJS.ProcessEnv): string | undefined {
  const value = env.BSTORE_WEB_ROOT;
  if (value === undefined) return DEFAULT_WEB_ROOT;
  return value.trim() === '' ? undefined : resolve(value.trim());
}

/**
 * The service's PostgreSQL database from DATABASE_URL, DATABASE_SCHEMA, DATABASE_POOL_SIZE,
 * DATABASE_CREATE and DATABASE_MIGRATE; undefined for a service that keeps none (the gateway, and
 * customercenter unless BSTORE_READ_MODEL=postgres). What the service and its migration job share.
 */
export function readDatabaseConfig(env: NodeJS.ProcessEnv, name: ServiceName): ServiceProcessConfig['database'] {
  const readModel = choiceSetting(env, 'BSTORE_READ_MODEL', ['redis', 'postgres'], 'redis');
  if (!SQL_SERVICES.includes(name) && !(name === 'customercenter' && readModel === 'postgres')) return undefined;
  const url = urlSetting(env, 'DATABASE_URL', ['postgres:', 'postgresql:'], `postgres://postgres@127.0.0.1:5432/bstore_${name}`);
  const schema = nameSetting(env, 'DATABASE_SCHEMA', /^[a-z_][a-z0-9_]{0,62}$/, undefined);
  return {
    kind: 'postgres',
    url,
    poolSize: intSetting(env, 'DATABASE_POOL_SIZE', 10, { min: 1, max: 500 }),
    createIfMissing: boolSetting(env, 'DATABASE_CREATE', true),
    // false: a migration job (migrate.ts) changes the schema; the service only checks it is current.
    migrations: boolSetting(env, 'DATABASE_MIGRATE', true) ? 'apply' : 'verify',
    ...(schema !== undefined ? { schema } : {}),
  };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const localUrl = (service: ServiceName) => `http://127.0.0.1:${DEFAULT_PORTS[service]}`;

/**
 * The configuration of one service process, from its environment (see the README's table). Every
 * variable has a default that points at this machine's local servers; a bad value throws a
 * ConfigError naming the variable.
 *
 * @example
 * const config = readServiceConfig(process.env, 'book'); // DATABASE_URL, NATS_URL, PORT, ...
 */
export function readServiceConfig(env: NodeJS.ProcessEnv, service: string): ServiceProcessConfig {
  if (!(SERVICE_NAMES as string[]).includes(service)) {
    throw new ConfigError(`unknown service ${JSON.stringify(service)} (BSTORE_SERVICE or the first argument; known: ${SERVICE_NAMES.join(', ')})`);
  }
  const name = service as ServiceName;
  const webRoot = readWebRoot(env);
  const readModel = choiceSetting(env, 'BSTORE_READ_MODEL', ['redis', 'postgres'], 'redis');
  const database = readDatabaseConfig(env, name);
  const lending = readLendingSettings(env);

  return {
    service: name,
    host: env.HOST || '127.0.0.1',
    port: intSetting(env, 'PORT', DEFAULT_PORTS[name], { min: 0, max: 65_535 }),
    ...(database ? { database } : {}),
    ...(name === 'customercenter' && readModel === 'redis'
      ? {
          redis: {
            url: urlSetting(env, 'REDIS_URL', ['redis:', 'rediss:'], 'redis://127.0.0.1:6379'),
            keyPrefix: nameSetting(env, 'BSTORE_REDIS_PREFIX', /^[A-Za-z0-9_:.-]{1,64}$/, 'bstore:customercenter:') as string,
          },
        }
      : {}),
    ...(name !== 'gateway'
      ? {
          nats: {
            servers: urlListSetting(env, 'NATS_URL', ['nats:', 'tls:'], 'nats://127.0.0.1:4222'),
            stream: nameSetting(env, 'BSTORE_STREAM', /^[A-Za-z0-9_-]{1,64}$/, 'BSTORE') as string,
            // 3 on a three-server NATS cluster: each event is on a quorum before its publish is acknowledged.
            ...(env.BSTORE_STREAM_REPLICAS ? { streamReplicas: intSetting(env, 'BSTORE_STREAM_REPLICAS', 1, { min: 1, max: 5 }) } : {}),
          },
        }
      : {}),
    reservation: {
      bookUrl: urlSetting(env, 'BOOK_URL', ['http:', 'https:'], localUrl('book')),
      bookTimeoutMs: intSetting(env, 'BOOK_TIMEOUT_MS', 1500, { min: 50, max: 60_000 }),
      sweepIntervalMs: intSetting(env, 'BSTORE_SWEEP_INTERVAL_MS', 5000, { min: 100, max: 3_600_000 }),
      staleAfterMs: intSetting(env, 'BSTORE_PENDING_STALE_AFTER_MS', 10_000, { min: 0, max: 86_400_000 }),
      maxHoldAttempts: intSetting(env, 'BSTORE_MAX_HOLD_ATTEMPTS', 5, { min: 1, max: 1000 }),
      maxActiveReservationsPerCustomer: intSetting(env, 'BSTORE_MAX_ACTIVE_RESERVATIONS', 5, { min: 1, max: 10_000 }),
      ...(env.BSTORE_IDEMPOTENCY_LOCK_MS ? { idempotencyLockMs: intSetting(env, 'BSTORE_IDEMPOTENCY_LOCK_MS', 60_000, { min: 1000, max: 86_400_000 }) } : {}),
      bookRetries: intSetting(env, 'BOOK_RETRIES', 2, { min: 0, max: 10 }),
      bookCircuitThreshold: intSetting(env, 'BOOK_CIRCUIT_THRESHOLD', 5, { min: 1, max: 1000 }),
      bookCircuitHalfOpenAfterMs: intSetting(env, 'BOOK_CIRCUIT_HALF_OPEN_AFTER_MS', 5000, { min: 100, max: 600_000 }),
      bookMaxConcurrentCalls: intSetting(env, 'BOOK_MAX_CONCURRENT_CALLS', 32, { min: 1, max: 10_000 }),
      ...lending,
    },
    assignment: { pickupPeriodMs: lending.pickupPeriodMs },
    book: {
      maxHeldCopiesPerCustomer: intSetting(env, 'BSTORE_MAX_ACTIVE_RESERVATIONS', 5, { min: 1, max: 10_000 }),
    },
    gateway: {
      upstreams: {
        reservation: urlListSetting(env, 'RESERVATION_URL', ['http:', 'https:'], localUrl('reservation')),
        assignment: urlListSetting(env, 'ASSIGNMENT_URL', ['http:', 'https:'], localUrl('assignment')),
        book: urlListSetting(env, 'BOOK_URL', ['http:', 'https:'], localUrl('book')),
        customercenter: urlListSetting(env, 'CUSTOMERCENTER_URL', ['http:', 'https:'], localUrl('customercenter')),
      },
      timeoutMs: intSetting(env, 'UPSTREAM_TIMEOUT_MS', 10_000, { min: 100, max: 300_000 }),
      loginAttemptsPerMinute: intSetting(env, 'BSTORE_LOGIN_ATTEMPTS_PER_MINUTE', 10, { min: 0, max: 1_000_000 }),
      ...readGatewayProtections(env),
      ...(webRoot !== undefined ? { webRoot } : {}),
    },
    demoData: boolSetting(env, 'BSTORE_DEMO_DATA', false),
    // A service started on its own (Kubernetes) never falls back to the demo identity.
    auth: readAuthConfig(env, name, false),
    tracing: readTracingConfig(env),
    log: { level: choiceSetting(env, 'LOG_LEVEL', LOG_LEVELS, 'info'), format: choiceSetting(env, 'LOG_FORMAT', ['json', 'pretty'], 'json') },
    shutdownGraceMs: intSetting(env, 'BSTORE_SHUTDOWN_GRACE_MS', 10_000, { min: 100, max: 600_000 }),
    drainDelayMs: intSetting(env, 'BSTORE_DRAIN_DELAY_MS', 0, { min: 0, max: 120_000 }),
    startRetryMaxMs: intSetting(env, 'BSTORE_START_RETRY_MAX_MS', 15_000, { min: 100, max: 600_000 }),
  };
}
