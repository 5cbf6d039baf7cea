import { PeriodicTask, buildSqlService, systemClock, type Clock, type ServiceDeps, type ServiceRuntime, withDefaults } from '@bstore/platform';
import { ApplyAssignmentOutcome } from './application/apply-assignment/apply-assignment.service.ts';
import { BrowseReservations } from './application/browse-reservations/browse-reservations.service.ts';
import { CancelReservation } from './application/cancel-reservation/cancel-reservation.service.ts';
import { ExpireUncollected } from './application/expire-uncollected/expire-uncollected.service.ts';
import { LendAtDesk } from './application/lend-at-desk/lend-at-desk.service.ts';
import { PlaceReservation } from './application/place-reservation/place-reservation.service.ts';
import { RequestHold } from './application/place-reservation/request-hold.ts';
import type { BookClient } from './application/ports.ts';
import { RecoverPendingReservations } from './application/recover-pending/recover-pending.service.ts';
import { HttpBookClient } from './adapters/clients/book.http-client.ts';
import { reservationMigrations } from './adapters/db/migrations.ts';
import { KyselyReservationRepository } from './adapters/db/reservation.repository.ts';
import type { ReservationTables } from './adapters/db/schema.ts';
import { reservationUnitOfWork } from './adapters/db/unit-of-work.ts';
import { KyselyIdempotencyStore } from './adapters/db/idempotency.store.ts';
import { idempotencyHooks } from './adapters/http/idempotency.ts';
import { reservationErrorStatus, reservationRoutes } from './adapters/http/reservation.routes.ts';
import { reservationEventHandlers } from './adapters/messaging/reservation.handlers.ts';
import { reservationSettings } from './settings.ts';

export interface ReservationConfig {
  /** Base URL of the book service, or its replicas' URLs (taken in turn; BOOK_URL's comma-separated list). */
  bookUrl: string | readonly string[];
  /** One attempt of the hold call gives up after this long; default 1500 ms. */
  bookTimeoutMs?: number;
  /** Retries of a transient failure of the hold call (ADR 0013); default 2. */
  bookRetries?: number;
  /** The whole hold call's budget; default (bookRetries + 1) x bookTimeoutMs + bookRetries x 500 ms. */
  bookTotalTimeoutMs?: number;
  /** Consecutive failed attempts that open the circuit to book; default 5. */
  bookCircuitThreshold?: number;
  /** How long the circuit stays open before one probe goes through; default 5000 ms. */
  bookCircuitHalfOpenAfterMs?: number;
  /** Hold calls to book at once; default 32. */
  bookMaxConcurrentCalls?: number;
  /** Hold calls waiting for one of those; beyond, a call is refused at once. Default 8. */
  bookMaxQueuedCalls?: number;
  /** The recovery sweep: how often it runs, when a pending reservation counts as abandoned, how often it is retried. */
  sweepIntervalMs?: number;
  staleAfterMs?: number;
  maxHoldAttempts?: number;
  /** A BookClient to use instead of HTTP (tests of the saga's faults). */
  bookClient?: BookClient;
  clock?: Clock;
  /** Active reservations one customer may have at once (anti-hoarding); default 5. */
  maxActiveReservationsPerCustomer?: number;
  /** How long an Idempotency-Key and its first answer are kept; default 24 h. */
  idempotencyTtlMs?: number;
  /**
   * How long a request owns its Idempotency-Key before a retry with the key may take it over;
   * default max(60 s, 10 x bookTimeoutMs), longer than any placement. Shorter only in tests.
   */
  idempotencyLockMs?: number;
  /**
   * How long a copy waits for pickup (BSTORE_PICKUP_PERIOD, default 7 days): used only for a
   * ReservationAccepted without its own pickupBy (assignment sets it, ADR 0022).
   */
  pickupPeriodMs?: number;
  /** How long a loan lasts from check-out (BSTORE_LOAN_PERIOD, default 14 days). */
  loanPeriodMs?: number;
  /** How often the deadline sweep expires copies not picked up (BSTORE_DEADLINE_SWEEP_INTERVAL_MS, default 60 s). */
  deadlineSweepIntervalMs?: number;
}

export interface ReservationOperations {
  /** The recovery sweep of reservations left pending, also run once at start. */
  recoverPending: RecoverPendingReservations;
  /** The deadline sweep, also run once at start (tests run it after moving their clock). */
  expireUncollected: ExpireUncollected;
}

export type ReservationService = ServiceRuntime<ReservationOperations>;

/** Composition root of the reservation service: reservations and the state of their sagas. */
export async function createReservationService(deps: ServiceDeps, config: ReservationConfig): Promise<ReservationService> {
  return buildSqlService<ReservationTables, ReservationOperations>('reservation', deps, reservationMigrations, async (kit) => {
    const { logger } = kit;
    // Every setting the schema has, with the schema's default where the caller gave none.
    const settings = withDefaults(reservationSettings, config);
    const clock = config.clock ?? systemClock;
    const tx = kit.transactions(reservationUnitOfWork);

    const periods = { pickupMs: settings.pickupPeriodMs, loanMs: settings.loanPeriodMs };
    const expireUncollected = new ExpireUncollected(tx, clock, logger, { pickupMs: periods.pickupMs });
    const { bookTimeoutMs } = settings;
    const book =
      config.bookClient ??
      new HttpBookClient({
        baseUrl: config.bookUrl,
        timeoutMs: bookTimeoutMs,
        credentials: () => deps.auth.internalFor('reservation').token(),
        retries: settings.bookRetries,
        totalTimeoutMs: config.bookTotalTimeoutMs,
        circuitThreshold: settings.bookCircuitThreshold,
        circuitHalfOpenAfterMs: settings.bookCircuitHalfOpenAfterMs,
        maxConcurrentCalls: settings.bookMaxConcurrentCalls,
        maxQueuedCalls: config.bookMaxQueuedCalls,
        logger,
        tracer: kit.tracing.tracer,
      });
    const httpBook = book instanceof HttpBookClient ? book : undefined;
    const requestHold = new RequestHold(tx, book, clock);
    // The sweep must not take a reservation whose request is still waiting for book (all its attempts).
    const minimumStale = Math.max(bookTimeoutMs * 2, (httpBook?.maxCallDurationMs ?? bookTimeoutMs) + bookTimeoutMs);
    const staleAfterMs = Math.max(config.staleAfterMs ?? Math.max(10_000, bookTimeoutMs * 4), minimumStale);
    if (config.staleAfterMs !== undefined && config.staleAfterMs < minimumStale) {
      logger.warn({ configured: config.staleAfterMs, used: staleAfterMs }, 'pending reservations count as abandoned only after the longest call to book and one more timeout');
    }
    const recoverPending = new RecoverPendingReservations(tx, requestHold, clock, { staleAfterMs, maxAttempts: settings.maxHoldAttempts, batchSize: 50 }, logger);

    kit.consumer(reservationEventHandlers(new ApplyAssignmentOutcome(clock, periods)));

    // Longer than a placement can take (book's timeout, its retries and the pending write), so only
    // a request whose process died is taken over by a retry with the same key.
    const idempotencyStore = new KyselyIdempotencyStore(kit.db, {
      ttlMs: config.idempotencyTtlMs ?? 24 * 60 * 60_000,
      lockMs: config.idempotencyLockMs ?? Math.max(60_000, bookTimeoutMs * 10),
    });

    const app = await kit.app({ errorStatus: reservationErrorStatus, readinessTable: 'reservations' });
    if (httpBook) {
      // Shown, never failing: an open circuit is book's trouble, and failing here would take every replica out.
      app.addReadinessCheck('bookCircuit', async () => httpBook.circuitState);
      httpBook.registerMetrics(app.metrics);
    }
    await app.register(reservationRoutes, {
      placeReservation: new PlaceReservation(tx, requestHold, clock, { maxActivePerCustomer: settings.maxActiveReservationsPerCustomer }),
      cancelReservation: new CancelReservation(tx, clock),
      lendAtDesk: new LendAtDesk(tx, clock, periods),
      browse: new BrowseReservations(new KyselyReservationRepository(kit.db)),
      retryAfterSeconds: 2,
      // Answers that depend on the moment (the limit of active reservations; a request whose
      // reservation was withdrawn while it waited) are not the key's final answer.
      // ACTIVE_RESERVATION_EXISTS too: once the other reservation of the book ends, a retry may place one.
      idempotency: idempotencyHooks(idempotencyStore, clock, { transientCodes: ['TOO_MANY_ACTIVE_RESERVATIONS', 'IDEMPOTENCY_KEY_IN_USE', 'ACTIVE_RESERVATION_EXISTS'] }),
    });

    const pruneKeys = new PeriodicTask('prune-idempotency-keys', 10 * 60_000, async () => {
      while ((await idempotencyStore.prune(clock.now(), 500)) === 500);
    }, logger);
    const sweep = new PeriodicTask('recover-pending', settings.sweepIntervalMs, () => recoverPending.execute(), logger);
    const deadlines = new PeriodicTask('expire-uncollected', settings.deadlineSweepIntervalMs, () => expireUncollected.execute(), logger);

    return kit.runtime({ app, tasks: [sweep, deadlines, pruneKeys], operations: { recoverPending, expireUncollected } });
  });
}
