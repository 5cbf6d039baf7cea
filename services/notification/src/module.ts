import { defineService, sqlServiceDeps } from '@bstore/platform';
import { notificationMigrations } from './adapters/db/migrations.ts';
import { createNotificationService, type NotificationConfig } from './main.ts';
import { notificationSettings } from './settings.ts';

export { notificationSettings };

/** The notification service as every host runs it: patrons' notices of their reservations (port 8085). */
export const notificationService = defineService({
  name: 'notification',
  defaultPort: 8085,
  settings: notificationSettings,
  migrations: notificationMigrations,
  usesBus: true,
  build: (deps, config: NotificationConfig) => createNotificationService(sqlServiceDeps('notification', deps), config),
  // Reminders that came due while the service was down are sent now, not an interval later.
  afterStart: async (notification, logger) => {
    await notification.operations.sendDueReminders.execute().catch((err: unknown) => logger.error({ err }, 'start-up reminder sweep failed'));
  },
});
