import type { DatabaseConfig } from '../db/config.ts';
import { readSettings, setting, type Env } from './settings.ts';

/**
 * The settings of the infrastructure a service process connects to, the same for every service
 * and every host (a service process, the migration job, the rebuild command): the bus and a
 * service's own PostgreSQL database.
 */

/** NATS JetStream: the servers, the stream, and the stream's replicas when this process creates or updates it. */
export const natsSettings = {
  servers: setting.urlList('NATS_URL', ['nats:', 'tls:'], 'nats://127.0.0.1:4222'),
  stream: setting.name('BSTORE_STREAM', /^[A-Za-z0-9_-]{1,64}$/, 'BSTORE'),
  /** Unset: a new stream gets 1 and an existing one keeps its own (3 on a three-server NATS cluster). */
  streamReplicas: setting.optionalInt('BSTORE_STREAM_REPLICAS', { min: 1, max: 5 }, '—'),
};

export type NatsSettings = ReturnType<typeof readNatsSettings>;

export function readNatsSettings(env: Env) {
  return readSettings(natsSettings, env);
}

/** A service's PostgreSQL database; `DATABASE_URL`'s default names the service (`bstore_<service>`). */
export function databaseSettings(service: string) {
  return {
    url: setting.url('DATABASE_URL', ['postgres:', 'postgresql:'], `postgres://postgres@127.0.0.1:5432/bstore_${service}`),
    schema: setting.optionalName('DATABASE_SCHEMA', /^[a-z_][a-z0-9_]{0,62}$/),
    poolSize: setting.int('DATABASE_POOL_SIZE', 10, { min: 1, max: 500 }),
    createIfMissing: setting.bool('DATABASE_CREATE', true),
    /** false: a migration job changes the schema; the service only checks it is current. */
    migrate: setting.bool('DATABASE_MIGRATE', true),
  };
}

export type PostgresConfig = Extract<DatabaseConfig, { kind: 'postgres' }>;

/** The PostgreSQL database of `service` from DATABASE_URL, DATABASE_SCHEMA, DATABASE_POOL_SIZE, DATABASE_CREATE and DATABASE_MIGRATE. */
export function readDatabaseSettings(env: Env, service: string): PostgresConfig {
  const s = readSettings(databaseSettings(service), env);
  return {
    kind: 'postgres',
    url: s.url,
    poolSize: s.poolSize,
    createIfMissing: s.createIfMissing,
    migrations: s.migrate ? 'apply' : 'verify',
    ...(s.schema !== undefined ? { schema: s.schema } : {}),
  };
}
