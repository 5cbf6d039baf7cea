import { PeriodicTask, buildSqlService, systemClock, withDefaults, type Clock, type ServiceDeps, type ServiceRuntime } from '@bstore/platform';
import { RecordReservationEvent } from './application/record-reservation-event.ts';
import { SendDueReminders } from './application/send-due-reminders.ts';
import { ViewNotices } from './application/view-notices.ts';
import { notificationMigrations } from './adapters/db/migrations.ts';
import { KyselyNoticeStore, notificationUnitOfWork } from './adapters/db/notification.store.ts';
import type { NotificationTables } from './adapters/db/schema.ts';
import { notificationErrorStatus, notificationRoutes } from './adapters/http/notification.routes.ts';
import { notificationEventHandlers } from './adapters/messaging/notification.handlers.ts';
import { notificationSettings } from './settings.ts';

export interface NotificationOperations {
  /** The reminder sweep, also run once at start (tests run it after moving their clock). */
  sendDueReminders: SendDueReminders;
}

export type NotificationService = ServiceRuntime<NotificationOperations>;

export interface NotificationConfig {
  /** Default: the schema's (settings.ts). */
  reminderSweepIntervalMs?: number;
  /** What "now" is for reminders (tests move it); default the system clock. */
  clock?: Clock;
}

/** Composition root of the notification service: the patrons' notices, from the lifecycle events (issue 20). */
export async function createNotificationService(deps: ServiceDeps, config: NotificationConfig = {}): Promise<NotificationService> {
  return buildSqlService<NotificationTables, NotificationOperations>('notification', deps, notificationMigrations, async (kit) => {
    const settings = withDefaults(notificationSettings, config);
    const clock = config.clock ?? systemClock;
    const tx = kit.transactions(notificationUnitOfWork);
    kit.consumer(notificationEventHandlers(new RecordReservationEvent(clock)));
    const app = await kit.app({ errorStatus: notificationErrorStatus, readinessTable: 'notices' });
    await app.register(notificationRoutes, { notices: new ViewNotices(new KyselyNoticeStore(kit.db), clock) });
    const sendDueReminders = new SendDueReminders(tx, clock);
    const reminders = new PeriodicTask('send-due-reminders', settings.reminderSweepIntervalMs, () => sendDueReminders.execute(), kit.logger);
    return kit.runtime({ app, tasks: [reminders], operations: { sendDueReminders } });
  });
}
