import { defineService, setting } from '@bstore/platform';
import { customercenterMigrations } from './adapters/db/migrations.ts';
import { DEFAULT_REDIS_KEY_PREFIX } from './adapters/redis/keys.ts';
import { createCustomerCenterService, type CustomerCenterConfig } from './main.ts';

/** The customer center's own settings (README: "Environment of a service process"). */
export const customercenterSettings = {
  /** Where the read model lives outside embedded mode: Redis, shared by the replicas, or the service's PostgreSQL database. */
  readModel: setting.choice('BSTORE_READ_MODEL', ['redis', 'postgres'], 'redis'),
  redisUrl: setting.url('REDIS_URL', ['redis:', 'rediss:'], 'redis://127.0.0.1:6379'),
  redisKeyPrefix: setting.name('BSTORE_REDIS_PREFIX', /^[A-Za-z0-9_:.-]{1,64}$/, DEFAULT_REDIS_KEY_PREFIX),
};

/** The customer center as every host runs it: the read model of reservations, with live updates (the seed's port 8084). */
export const customercenterService = defineService({
  name: 'customercenter',
  defaultPort: 8084,
  settings: customercenterSettings,
  migrations: customercenterMigrations,
  // On a server its pages are in Redis unless told otherwise; embedded mode gives it PGlite.
  usesSql: (settings) => settings.readModel === 'postgres',
  usesBus: true,
  build: (deps, config: CustomerCenterConfig & { redisUrl: string; redisKeyPrefix: string }) => {
    if (!deps.bus) throw new Error('customercenter needs the bus');
    const { logger, auth, tracing, bus } = deps;
    return createCustomerCenterService(
      deps.database ? { bus, logger, auth, tracing, database: deps.database } : { bus, logger, auth, tracing, redis: { url: config.redisUrl, keyPrefix: config.redisKeyPrefix } },
      config,
    );
  },
});
