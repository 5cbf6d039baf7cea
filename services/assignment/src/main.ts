import type { Kysely, Transaction } from 'kysely';
import {
  EventConsumer,
  KyselyDeadLetterStore,
  KyselyInbox,
  KyselyTransactionRunner,
  OutboxRelay,
  ServiceRuntime,
  createHttpApp,
  deadLetterRoutes,
  openServiceDatabase,
  type ServiceDeps,
  tracingOf,
} from '@bstore/platform';
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

/** Composition root of the assignment service: library branches and the assignment of reservations to them. */
export interface AssignmentInternals {
  db: Kysely<AssignmentTables>;
  consumer: EventConsumer<Transaction<AssignmentTables>>;
  /** Idempotent insert of branches by name: the launcher seeds the demo branches with it. */
  ensureLibraries: EnsureLibraries;
}

export type AssignmentService = ServiceRuntime<AssignmentInternals>;

export interface AssignmentConfig {
  /**
   * How long an assigned copy waits on the branch's hold shelf for pickup: ReservationAccepted
   * carries `pickupBy` = the assignment's time + this (BSTORE_PICKUP_PERIOD; default 7 days, ADR 0022).
   */
  pickupPeriodMs?: number;
}

export async function createAssignmentService(deps: ServiceDeps, config: AssignmentConfig = {}): Promise<AssignmentService> {
  const logger = deps.logger.child({ service: 'assignment' });
  const tracing = tracingOf(deps, 'assignment');
  const database = await openServiceDatabase<AssignmentTables>(deps.database, assignmentMigrations, logger);
  const relay = new OutboxRelay({ db: database.db, bus: deps.bus, logger, tracer: tracing.tracer });
  const tx = new KyselyTransactionRunner(database.db, assignmentUnitOfWork, () => relay.kick());

  const consumer = new EventConsumer({
    name: 'assignment',
    tracer: tracing.tracer,
    inbox: new KyselyInbox(database.db, { afterOutboxCommit: () => relay.kick() }),
    bus: deps.bus,
    logger,
    handlers: assignmentEventHandlers(new AssignLibrary({ pickupPeriodMs: config.pickupPeriodMs ?? 7 * 86_400_000 }), new ReleaseAssignment(), new CloseAssignment()),
  });

  const app = createHttpApp({
    service: 'assignment',
    tracing,
    auth: deps.auth,
    logger,
    errorStatus: assignmentErrorStatus,
    readiness: { database: async () => void (await database.db.selectFrom('libraries').select('library_id').limit(1).execute()) },
  });
  await app.register(assignmentRoutes, {
    createLibrary: new CreateLibrary(tx),
    libraries: new BrowseLibraries(new KyselyLibraryRepository(database.db)),
    assignments: new BrowseAssignments(new KyselyAssignmentRepository(database.db)),
  });
  await app.register(deadLetterRoutes, { service: 'assignment', store: new KyselyDeadLetterStore(database.db), consumer });

  return new ServiceRuntime({
    name: 'assignment',
    tracing,
    logger,
    app,
    database,
    relay,
    consumers: [consumer],
    internals: { db: database.db, consumer, ensureLibraries: new EnsureLibraries(tx) },
  });
}
