import { setting } from '@bstore/platform';

/** The notification service's own settings (README: "Environment of a service process"). */
export const notificationSettings = {
  /** How often the reminder sweep looks for reminders that are due (pickup tomorrow, loan due soon, overdue). */
  reminderSweepIntervalMs: setting.int('BSTORE_REMINDER_SWEEP_INTERVAL_MS', 60_000, { min: 100, max: 86_400_000 }),
};
