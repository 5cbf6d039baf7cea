import { defineService, sqlServiceDeps } from '@bstore/platform';
import { assignmentMigrations } from './adapters/db/migrations.ts';
import { seedLibraries } from './demo-libraries.ts';
import { createAssignmentService } from './main.ts';
import { assignmentSettings } from './settings.ts';

export { assignmentSettings };

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
