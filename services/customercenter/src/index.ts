export {
  createCustomerCenterService,
  type CustomerCenterService,
  type CustomerCenterDeps,
  type CustomerCenterConfig,
  type RedisReadModelConfig,
} from './main.ts';
export { customercenterService, customercenterSettings } from './module.ts';
export { rebuildReadModel, PAGE_EVENT_SUBJECTS, type RebuildOptions, type RebuildResult } from './rebuild.ts';
export { customercenterMigrations } from './adapters/db/migrations.ts';
export { customercenterErrorStatus } from './adapters/http/customercenter.routes.ts';
export { DEFAULT_REDIS_KEY_PREFIX, ReadModelKeys } from './adapters/redis/keys.ts';
export { RedisReservationPageStore, type RecordedChange } from './adapters/redis/reservation-page.store.ts';
export { RedisInbox, type DeadLetter } from './adapters/redis/inbox.ts';
export { RedisPageUpdates, type RedisPageUpdatesOptions } from './adapters/redis/page-updates.ts';
export type { CustomerCenterTables } from './adapters/db/schema.ts';
export type { ReservationPageStore, ReservationPageDetail, PageQuery, PageUpdates } from './application/ports.ts';
export type { ReservationPage, TimelineEntry, PageChange, PageEventType } from './domain/reservation-page.ts';
