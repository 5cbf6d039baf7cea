import type { Kysely, Transaction } from 'kysely';
import {
  EventConsumer,
  KyselyInbox,
  KyselyTransactionRunner,
  OutboxRelay,
  PeriodicTask,
  ServiceRuntime,
  createHttpApp,
  openServiceDatabase,
  systemClock,
  type Clock,
  type ServiceDeps,
} from '@bstore/platform';
import { ApplyAssignmentOutcome } from './application/apply-assignment/apply-assignment.service.ts';
import { BrowseReservations } from './application/browse-reservations/browse-reservations.service.ts';
import { CancelReservation } from './application/cancel-reservation/cancel-reservation.service.ts';
import { PlaceReservation } from './application/place-reservation/place-reservation.service.ts';
import { RequestHold } from './application/place-reservation/request-hold.ts';
import type { BookClient } from './application/ports.ts';
import { RecoverPendingReservations } from './application/recover-pending/recover-pending.service.ts';
import { HttpBookClient } from './adapters/clients/book.http-client.ts';
import { reservationMigrations } from './adapters/db/migrations.ts';
import { KyselyReservationRepository } from './adapters/db/reservation.repository.ts';
import type { ReservationTables } from './adapters/db/schema.ts';
import { reservationUnitOfWork } from './adapters/db/unit-of-work.ts';
import { reservationErrorStatus, reservationRoutes } from './adapters/http/reservation.routes.ts';
import { reservationEventHandlers } from './adapters/messaging/reservation.handlers.ts';

export interface ReservationConfig {
  /** Base URL of the book service. */
  bookUrl: string;
  bookTimeoutMs?: number;
  /** The recovery sweep: how often it runs, when a pending reservation counts as abandoned, how often it is retried. */
  sweepIntervalMs?: number;
  staleAfterMs?: number;
  maxHoldAttempts?: number;
  /** A BookClient to use instead of HTTP (tests of the saga's faults). */
  bookClient?: BookClient;
  clock?: Clock;
}

export interface ReservationInternals {
  db: Kysely<ReservationTables>;
  consumer: EventConsumer<Transaction<ReservationTables>>;
  recoverPending: RecoverPendingReservations;
}

export type ReservationService = ServiceRuntime<ReservationInternals>;

/** Composition root of the reservation service: reservations and the state of their sagas. */
export async function createReservationService(deps: ServiceDeps, config: ReservationConfig): Promise<ReservationService> {
  const logger = deps.logger.child({ service: 'reservation' });
  const clock = config.clock ?? systemClock;
  const database = await openServiceDatabase<ReservationTables>(deps.database, reservationMigrations, logger);
  const relay = new OutboxRelay({ db: database.db, bus: deps.bus, logger });
  const tx = new KyselyTransactionRunner(database.db, reservationUnitOfWork, () => relay.kick());

  const bookTimeoutMs = config.bookTimeoutMs ?? 1500;
  const book = config.bookClient ?? new HttpBookClient({ baseUrl: config.bookUrl, timeoutMs: bookTimeoutMs });
  const requestHold = new RequestHold(tx, book, clock);
  // The sweep must not take a reservation whose request is still waiting for book.
  const minimumStale = bookTimeoutMs * 2;
  const staleAfterMs = Math.max(config.staleAfterMs ?? Math.max(10_000, bookTimeoutMs * 4), minimumStale);
  if (config.staleAfterMs !== undefined && config.staleAfterMs < minimumStale) {
    logger.warn({ configured: config.staleAfterMs, used: staleAfterMs }, 'pending reservations count as abandoned only after twice the book timeout');
  }
  const recoverPending = new RecoverPendingReservations(
    tx,
    requestHold,
    clock,
    { staleAfterMs, maxAttempts: config.maxHoldAttempts ?? 5, batchSize: 50 },
    logger,
  );

  const consumer = new EventConsumer({
    name: 'reservation',
    inbox: new KyselyInbox(database.db),
    bus: deps.bus,
    logger,
    handlers: reservationEventHandlers(new ApplyAssignmentOutcome(clock)),
    afterCommit: () => relay.kick(),
  });

  const app = createHttpApp({
    service: 'reservation',
    logger,
    errorStatus: reservationErrorStatus,
    readiness: { database: async () => void (await database.db.selectFrom('reservations').select('reservation_id').limit(1).execute()) },
  });
  await app.register(reservationRoutes, {
    placeReservation: new PlaceReservation(tx, requestHold, clock),
    cancelReservation: new CancelReservation(tx, clock),
    browse: new BrowseReservations(new KyselyReservationRepository(database.db)),
    retryAfterSeconds: 2,
  });

  const sweep = new PeriodicTask('recover-pending', config.sweepIntervalMs ?? 5000, () => recoverPending.execute(), logger);

  return new ServiceRuntime({
    name: 'reservation',
    logger,
    app,
    database,
    relay,
    consumers: [consumer],
    tasks: [sweep],
    internals: { db: database.db, consumer, recoverPending },
  });
}
