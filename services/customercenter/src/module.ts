import { defineService } from '@bstore/platform';
import { customercenterMigrations } from './adapters/db/migrations.ts';
import { createCustomerCenterService, type CustomerCenterConfig } from './main.ts';
import { customercenterSettings } from './settings.ts';

export { customercenterSettings };

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
