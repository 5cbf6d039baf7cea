import type { Registry } from 'prom-client';
import type { AppLogger } from '@bstore/platform/kernel';
import { SpanKind, inSpan, tagCorrelation, untracedTracer, withTraceHeaders, type Tracer } from '@bstore/platform';
import type { BookAvailability, BookClient, HoldOutcome } from '../../application/ports.ts';
import { registerBookCallMetrics, type BookCallMetrics, type BookCallOutcome } from './book-call.metrics.ts';
import { BookCallFailure, BookCallPolicy, MAX_BACKOFF_MS, type CallFailure, type CircuitStateName } from './book-call.policy.ts';

export interface HttpBookClientOptions {
  /**
   * Base URL of the book service (http://127.0.0.1:8083, or a Kubernetes Service), or its replicas'
   * URLs (BOOK_URL's comma-separated list): attempts go to them in turn, so a retry after a
   * transient failure goes to the next replica (the hold is idempotent: the same PUT on any replica).
   */
  baseUrl: string | readonly string[];
  /** One attempt gives up after this long; its answer is then unknown. */
  timeoutMs: number;
  /** The service token book's internal hold route requires (docs/security.md). */
  credentials?: () => Promise<string>;
  /** Retries of a transient failure (connection refused or reset, timeout, 502/503/504); default 2. */
  retries?: number;
  /** The whole call gives up after this long; default (retries + 1) x timeoutMs + retries x 500 ms of backoff. */
  totalTimeoutMs?: number;
  /** Consecutive failed attempts that open the circuit; default 5. */
  circuitThreshold?: number;
  /** How long the circuit stays open before a probe; default 5000 ms. */
  circuitHalfOpenAfterMs?: number;
  /** Calls to book at once; default 32. */
  maxConcurrentCalls?: number;
  /** Calls waiting for one of those; beyond this they are refused at once. Default 8. */
  maxQueuedCalls?: number;
  logger?: AppLogger;
  /** The service's tracer: each attempt is a CLIENT span whose context book's span continues. */
  tracer?: Tracer;
}

/** Failures of the connection itself that are worth another attempt. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);
const TRANSIENT_STATUSES = new Set([502, 503, 504]);

const OUTCOME_OF_ANSWER: Record<HoldOutcome['kind'], BookCallOutcome> = {
  held: 'held',
  waiting: 'waiting',
  outOfStock: 'out_of_stock',
  bookNotFound: 'book_not_found',
  holdReleased: 'hold_released',
  tooManyHeld: 'too_many_held',
  unavailable: 'unexpected_answer',
};
const OUTCOME_OF_FAILURE: Record<CallFailure['kind'], BookCallOutcome> = {
  failed: 'failed',
  timeout: 'timeout',
  circuitOpen: 'circuit_open',
  bulkheadFull: 'bulkhead_full',
};

function connectionFailure(err: unknown, signal: AbortSignal, timeoutMs: number): BookCallFailure {
  if (signal.aborted) return new BookCallFailure('timeout', `no answer within ${timeoutMs} ms`, true);
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  return new BookCallFailure('failed', `not reachable${code ? ` (${code})` : ''}`, code !== undefined && TRANSIENT_CODES.has(code));
}

/** The body as JSON, or null when it is not JSON (the answer is then not understood). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/**
 * BookClient over HTTP: PUT /books/{bookId}/holds/{reservationId}, through a resilience policy
 * (ADR 0013): a bulkhead, retries of transient failures with backoff, a circuit breaker and
 * per-attempt and total timeouts. Every call that ends without a clear answer is `unavailable`,
 * which the saga compensates with ReservationRejected in case the copy was taken after all.
 */
export class HttpBookClient implements BookClient {
  readonly #baseUrls: readonly string[];
  #nextReplica = 0;
  readonly #policy: BookCallPolicy;
  readonly #credentials: (() => Promise<string>) | undefined;
  readonly #tracer: Tracer;
  #metrics: BookCallMetrics | undefined;

  constructor(options: HttpBookClientOptions) {
    this.#baseUrls = (typeof options.baseUrl === 'string' ? [options.baseUrl] : [...options.baseUrl]).map((url) => url.replace(/\/+$/, ''));
    if (this.#baseUrls.length === 0) throw new RangeError('HttpBookClient needs at least one URL of book');
    this.#tracer = options.tracer ?? untracedTracer();
    this.#credentials = options.credentials;
    const retries = options.retries ?? 2;
    this.#policy = new BookCallPolicy({
      attemptTimeoutMs: options.timeoutMs,
      retries,
      totalTimeoutMs: options.totalTimeoutMs ?? (retries + 1) * options.timeoutMs + retries * MAX_BACKOFF_MS,
      circuitThreshold: options.circuitThreshold ?? 5,
      circuitHalfOpenAfterMs: options.circuitHalfOpenAfterMs ?? 5000,
      maxConcurrentCalls: options.maxConcurrentCalls ?? 32,
      maxQueuedCalls: options.maxQueuedCalls ?? 8,
    });
    const logger = options.logger;
    if (logger) {
      this.#policy.onStateChange((state) => {
        const detail = { target: 'book', circuit: state, halfOpenAfterMs: this.#policy.options.circuitHalfOpenAfterMs };
        if (state === 'open' || state === 'isolated') logger.warn(detail, 'circuit to book opened: calls are refused until a probe succeeds');
        else logger.info(detail, `circuit to book ${state}`);
      });
    }
    this.#policy.onRetry(() => this.#metrics?.retry());
  }

  /** The longest one hold() can take; the recovery sweep waits longer before it re-drives a reservation. */
  get maxCallDurationMs(): number {
    return this.#policy.options.totalTimeoutMs;
  }

  get circuitState(): CircuitStateName {
    return this.#policy.circuitState;
  }

  /** Adds this client's metrics to the service's registry (once). */
  registerMetrics(registry: Registry): void {
    this.#metrics ??= registerBookCallMetrics(registry, () => this.#policy.circuitState);
  }

  /** A refusal is counted as a call refused by the open circuit (`outcome="circuit_open"`). */
  availability(): BookAvailability {
    const wait = this.#policy.msUntilCallable();
    if (wait === 0) return { callable: true };
    this.#metrics?.call('circuit_open', null);
    return { callable: false, retryAfterMs: wait };
  }

  async hold(request: { bookId: number; reservationId: number; customerId: string; waitlist?: boolean }): Promise<HoldOutcome> {
    tagCorrelation(request.reservationId);
    const started = performance.now();
    const result = await this.#policy.execute((signal) => this.#attempt(request, signal));
    const seconds = (performance.now() - started) / 1000;
    if (result.ok) {
      this.#metrics?.call(OUTCOME_OF_ANSWER[result.value.kind], seconds);
      return result.value;
    }
    this.#metrics?.call(OUTCOME_OF_FAILURE[result.failure.kind], seconds);
    return { kind: 'unavailable', reason: result.failure.reason };
  }

  /** One request. Throws a BookCallFailure when book gave no usable answer; returns every answer it understands. */
  async #attempt(request: { bookId: number; reservationId: number; customerId: string; waitlist?: boolean }, signal: AbortSignal): Promise<HoldOutcome> {
    // Round robin over the replicas, attempt by attempt (a retry goes to the next one).
    const baseUrl = this.#baseUrls[this.#nextReplica++ % this.#baseUrls.length];
    const url = `${baseUrl}/books/${request.bookId}/holds/${request.reservationId}`;
    const timeoutMs = this.#policy.options.attemptTimeoutMs;
    let response: Response;
    let text: string;
    try {
      const token = this.#credentials ? await this.#credentials() : undefined;
      // A CLIENT span per attempt; its context goes in the traceparent header, so book's span is its child.
      const attributes = { 'http.request.method': 'PUT', 'url.full': url };
      ({ response, text } = await inSpan(this.#tracer, 'PUT /books/{bookId}/holds/{reservationId}', { kind: SpanKind.CLIENT, attributes }, async (span) => {
        const answer = await fetch(url, {
          method: 'PUT',
          headers: withTraceHeaders({ 'content-type': 'application/json', accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }),
          body: JSON.stringify(request.waitlist ? { customerId: request.customerId, waitlist: true } : { customerId: request.customerId }),
          signal,
        });
        span.setAttribute('http.response.status_code', answer.status);
        return { response: answer, text: await answer.text() };
      }));
    } catch (err) {
      throw connectionFailure(err, signal, timeoutMs);
    }
    if (response.status >= 500) throw new BookCallFailure('failed', `book answered ${response.status}`, TRANSIENT_STATUSES.has(response.status));
    const body = parseJson(text) as { bookName?: unknown; code?: unknown; status?: unknown; queueTicket?: unknown; queuePosition?: unknown } | null;
    const bookName = typeof body?.bookName === 'string' ? body.bookName : null;
    if ((response.status === 200 || response.status === 201) && bookName !== null) {
      if (body?.status === 'waiting') {
        // In line without its place is no answer we can record (taking it for a copy would skip the line).
        if (typeof body.queueTicket === 'number' && typeof body.queuePosition === 'number') {
          return { kind: 'waiting', bookName, queueTicket: body.queueTicket, queuePosition: body.queuePosition };
        }
        return { kind: 'unavailable', reason: 'book answered waiting without a place in line' };
      }
      return { kind: 'held', bookName };
    }
    if (response.status === 409 && body?.code === 'BOOK_OUT_OF_STOCK') return { kind: 'outOfStock', bookName };
    if (response.status === 409 && body?.code === 'HOLD_RELEASED') return { kind: 'holdReleased' };
    if (response.status === 404 && body?.code === 'BOOK_NOT_FOUND') return { kind: 'bookNotFound' };
    if (response.status === 409 && body?.code === 'TOO_MANY_HELD_COPIES') {
      const { held, limit } = body as { held?: unknown; limit?: unknown };
      return { kind: 'tooManyHeld', held: typeof held === 'number' ? held : null, limit: typeof limit === 'number' ? limit : null };
    }
    // Understood as "no usable answer", but book is up: not a failure for the circuit. A 401 here
    // means the services do not share BSTORE_INTERNAL_KEY: a configuration error, said plainly.
    if (response.status === 401) return { kind: 'unavailable', reason: 'book refused the service token (do reservation and book share BSTORE_INTERNAL_KEY?)' };
    return { kind: 'unavailable', reason: `unexpected answer ${response.status}` };
  }
}
