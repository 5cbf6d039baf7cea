export { createCustomerCenterService, type CustomerCenterService, type CustomerCenterInternals } from './main.ts';
export { customercenterMigrations } from './adapters/db/migrations.ts';
export { customercenterErrorStatus } from './adapters/http/customercenter.routes.ts';
export type { CustomerCenterTables } from './adapters/db/schema.ts';
export type { ReservationPageStore, ReservationPageDetail, PageQuery, PageUpdates } from './application/ports.ts';
export type { ReservationPage, TimelineEntry, PageChange, PageEventType } from './domain/reservation-page.ts';
