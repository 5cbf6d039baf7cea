import { buildSqlService, type ServiceDeps, type ServiceRuntime, withDefaults } from '@bstore/platform';
import { AssignLibrary } from './application/assign-library/assign-library.service.ts';
import { CloseAssignment } from './application/close-assignment/close-assignment.service.ts';
import { BrowseAssignments } from './application/browse-assignments/browse-assignments.service.ts';
import { BrowseLibraries } from './application/browse-libraries/browse-libraries.service.ts';
import { CreateLibrary } from './application/create-library/create-library.service.ts';
import { EnsureLibraries } from './application/ensure-libraries/ensure-libraries.service.ts';
import { ReleaseAssignment } from './application/release-assignment/release-assignment.service.ts';
import { KyselyAssignmentRepository } from './adapters/db/assignment.repository.ts';
import { KyselyLibraryRepository } from './adapters/db/library.repository.ts';
import { assignmentMigrations } from './adapters/db/migrations.ts';
import type { AssignmentTables } from './adapters/db/schema.ts';
import { assignmentUnitOfWork } from './adapters/db/unit-of-work.ts';
import { assignmentErrorStatus, assignmentRoutes } from './adapters/http/assignment.routes.ts';
import { assignmentEventHandlers } from './adapters/messaging/assignment.handlers.ts';
import { assignmentSettings } from './settings.ts';

/** Composition root of the assignment service: library branches and the assignment of reservations to them. */
export interface AssignmentOperations {
  /** Idempotent insert of branches by name: the launcher seeds the demo branches with it. */
  ensureLibraries: EnsureLibraries;
}

export type AssignmentService = ServiceRuntime<AssignmentOperations>;

export interface AssignmentConfig {
  /**
   * How long an assigned copy waits on the branch's hold shelf for pickup: ReservationAccepted
   * carries `pickupBy` = the assignment's time + this (BSTORE_PICKUP_PERIOD; default 7 days, ADR 0022).
   */
  pickupPeriodMs?: number;
}

export async function createAssignmentService(deps: ServiceDeps, config: AssignmentConfig = {}): Promise<AssignmentService> {
  return buildSqlService<AssignmentTables, AssignmentOperations>('assignment', deps, assignmentMigrations, async (kit) => {
    const tx = kit.transactions(assignmentUnitOfWork);
    kit.consumer(
      assignmentEventHandlers(new AssignLibrary({ pickupPeriodMs: withDefaults(assignmentSettings, config).pickupPeriodMs }), new ReleaseAssignment(), new CloseAssignment()),
    );
    const app = await kit.app({ errorStatus: assignmentErrorStatus, readinessTable: 'libraries' });
    await app.register(assignmentRoutes, {
      createLibrary: new CreateLibrary(tx),
      libraries: new BrowseLibraries(new KyselyLibraryRepository(kit.db)),
      assignments: new BrowseAssignments(new KyselyAssignmentRepository(kit.db)),
    });
    return kit.runtime({ app, operations: { ensureLibraries: new EnsureLibraries(tx) } });
  });
}
