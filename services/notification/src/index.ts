export { createNotificationService, type NotificationConfig, type NotificationService, type NotificationOperations } from './main.ts';
export { notificationMigrations } from './adapters/db/migrations.ts';
export type { NotificationTables } from './adapters/db/schema.ts';
export { notificationService, notificationSettings } from './module.ts';
export { NOTICE_KINDS, type NoticeKind } from './domain/notice.ts';
