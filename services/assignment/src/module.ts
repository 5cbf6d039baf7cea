import { defineService, setting, sqlServiceDeps } from '@bstore/platform';
import { assignmentMigrations } from './adapters/db/migrations.ts';
import { seedLibraries } from './demo-libraries.ts';
import { createAssignmentService } from './main.ts';

/** Assignment's own settings (README: "Environment of a service process"). */
export const assignmentSettings = {
  /** How long an assigned copy waits for pickup: stamped on ReservationAccepted as `pickupBy` (ADR 0022). */
  pickupPeriodMs: setting.duration('BSTORE_PICKUP_PERIOD', 'P7D', { minMs: 1000, maxMs: 366 * 86_400_000 }),
};

/** The assignment service as every host runs it: library branches and assignments (the seed's port 8082). */
export const assignmentService = defineService({
  name: 'assignment',
  defaultPort: 8082,
  settings: assignmentSettings,
  migrations: assignmentMigrations,
  usesBus: true,
  build: (deps, config) => createAssignmentService(sqlServiceDeps('assignment', deps), config),
  seedDemoData: async (assignment) => ({ libraries: (await seedLibraries(assignment)).length }),
});
