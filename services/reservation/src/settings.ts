import { setting } from '@bstore/platform';

const HTTP = ['http:', 'https:'];
const DEADLINE_RANGE = { minMs: 1000, maxMs: 366 * 86_400_000 };

/** Reservation's own settings (README: "Environment of a service process"). */
export const reservationSettings = {
  /** The book service: one URL (a Kubernetes Service) or its replicas, comma-separated, taken in turn. */
  bookUrl: setting.urlList('BOOK_URL', HTTP, 'http://127.0.0.1:8083'),
  bookTimeoutMs: setting.int('BOOK_TIMEOUT_MS', 1500, { min: 50, max: 60_000 }),
  bookRetries: setting.int('BOOK_RETRIES', 2, { min: 0, max: 10 }),
  bookCircuitThreshold: setting.int('BOOK_CIRCUIT_THRESHOLD', 5, { min: 1, max: 1000 }),
  bookCircuitHalfOpenAfterMs: setting.int('BOOK_CIRCUIT_HALF_OPEN_AFTER_MS', 5000, { min: 100, max: 600_000 }),
  bookMaxConcurrentCalls: setting.int('BOOK_MAX_CONCURRENT_CALLS', 32, { min: 1, max: 10_000 }),
  sweepIntervalMs: setting.int('BSTORE_SWEEP_INTERVAL_MS', 5000, { min: 100, max: 3_600_000 }),
  /** Unset: derived from the call to book (createReservationService), so it is never shorter than a call can last. */
  staleAfterMs: setting.optionalInt('BSTORE_PENDING_STALE_AFTER_MS', { min: 0, max: 86_400_000 }, 'max(10000, 4 x BOOK_TIMEOUT_MS)'),
  maxHoldAttempts: setting.int('BSTORE_MAX_HOLD_ATTEMPTS', 5, { min: 1, max: 1000 }),
  maxActiveReservationsPerCustomer: setting.int('BSTORE_MAX_ACTIVE_RESERVATIONS', 5, { min: 1, max: 10_000 }),
  idempotencyLockMs: setting.optionalInt('BSTORE_IDEMPOTENCY_LOCK_MS', { min: 1000, max: 86_400_000 }, 'max(60000, 10 x BOOK_TIMEOUT_MS)'),
  pickupPeriodMs: setting.duration('BSTORE_PICKUP_PERIOD', 'P7D', DEADLINE_RANGE),
  loanPeriodMs: setting.duration('BSTORE_LOAN_PERIOD', 'P14D', DEADLINE_RANGE),
  deadlineSweepIntervalMs: setting.int('BSTORE_DEADLINE_SWEEP_INTERVAL_MS', 60_000, { min: 100, max: 86_400_000 }),
};
