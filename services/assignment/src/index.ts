export { createAssignmentService, type AssignmentConfig, type AssignmentService, type AssignmentOperations } from './main.ts';
export { DEMO_LIBRARIES, seedLibraries } from './demo-libraries.ts';
export { assignmentMigrations } from './adapters/db/migrations.ts';
export type { AssignmentTables } from './adapters/db/schema.ts';
export type { LibraryProps, NewLibrary } from './domain/library.ts';
export type { AssignmentProps, AssignmentStatus } from './domain/assignment.ts';
export { assignmentService, assignmentSettings } from './module.ts';
