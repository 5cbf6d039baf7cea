import { setting } from '@bstore/platform';
import { DEFAULT_REDIS_KEY_PREFIX } from './adapters/redis/keys.ts';

/** The customer center's own settings (README: "Environment of a service process"). */
export const customercenterSettings = {
  /** Where the read model lives outside embedded mode: Redis, shared by the replicas, or the service's PostgreSQL database. */
  readModel: setting.choice('BSTORE_READ_MODEL', ['redis', 'postgres'], 'redis'),
  redisUrl: setting.url('REDIS_URL', ['redis:', 'rediss:'], 'redis://127.0.0.1:6379'),
  redisKeyPrefix: setting.name('BSTORE_REDIS_PREFIX', /^[A-Za-z0-9_:.-]{1,64}$/, DEFAULT_REDIS_KEY_PREFIX),
};
