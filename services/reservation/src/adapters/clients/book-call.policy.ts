import {
  BrokenCircuitError,
  BulkheadRejectedError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  TaskCancelledError,
  TimeoutStrategy,
  bulkhead,
  circuitBreaker,
  handleWhen,
  retry,
  timeout,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
  type RetryPolicy,
  type TimeoutPolicy,
} from 'cockatiel';

export interface BookCallPolicyOptions {
  /** One attempt gives up after this long (its answer is then unknown). */
  attemptTimeoutMs: number;
  /** Attempts after the first, for transient failures only. */
  retries: number;
  /** The whole call (queue, attempts and backoff) gives up after this long. */
  totalTimeoutMs: number;
  /** Consecutive failed attempts that open the circuit. */
  circuitThreshold: number;
  /** How long the circuit stays open before one probe may go through. */
  circuitHalfOpenAfterMs: number;
  /** Calls to book at once; more wait in a queue of `maxQueuedCalls`, beyond that they are refused. */
  maxConcurrentCalls: number;
  maxQueuedCalls: number;
}

/** The longest backoff between two attempts. */
export const MAX_BACKOFF_MS = 500;

/**
 * An attempt that brought no usable answer. `retryable` marks transient failures (connection
 * refused or reset, timeout, 502/503/504): repeating them is safe because the hold is idempotent by
 * reservation id. Every BookCallFailure counts against the circuit; business answers never do.
 */
export class BookCallFailure extends Error {
  readonly kind: 'failed' | 'timeout';
  readonly retryable: boolean;

  constructor(kind: 'failed' | 'timeout', message: string, retryable: boolean) {
    super(message);
    this.name = 'BookCallFailure';
    this.kind = kind;
    this.retryable = retryable;
  }
}

/** The call's budget ran out during a backoff: no further attempt is started. */
class BudgetSpent extends Error {}

export type CircuitStateName = 'closed' | 'half-open' | 'open' | 'isolated';

/** Why a call through the policy brought no answer. `circuitOpen` and `bulkheadFull` never reached the network. */
export interface CallFailure {
  kind: 'failed' | 'timeout' | 'circuitOpen' | 'bulkheadFull';
  reason: string;
}

export type CallResult<T> = { ok: true; value: T } | { ok: false; failure: CallFailure };

const STATE_NAMES: Record<CircuitState, CircuitStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Open]: 'open',
  [CircuitState.Isolated]: 'isolated',
};

/**
 * The resilience policy of the call to book (ADR 0013), outermost first:
 * total timeout -> bulkhead -> retry -> circuit breaker -> attempt timeout.
 * The breaker sits inside the retry, so it counts every failed attempt, and once it opens the call
 * ends instead of being retried.
 *
 * @example
 * const policy = new BookCallPolicy({ attemptTimeoutMs: 1500, retries: 2, totalTimeoutMs: 5500, circuitThreshold: 5, circuitHalfOpenAfterMs: 5000, maxConcurrentCalls: 32, maxQueuedCalls: 8 });
 * const result = await policy.execute((signal) => fetchHold(signal));
 * if (!result.ok) console.log(result.failure.kind);
 */
export class BookCallPolicy {
  readonly options: Readonly<BookCallPolicyOptions>;
  readonly #total: TimeoutPolicy;
  readonly #bulkhead: BulkheadPolicy;
  readonly #retry: RetryPolicy;
  readonly #breaker: CircuitBreakerPolicy;
  readonly #attemptTimeout: TimeoutPolicy;
  #openedAt = 0;

  constructor(options: BookCallPolicyOptions) {
    for (const [name, value, min] of [
      ['attemptTimeoutMs', options.attemptTimeoutMs, 1],
      ['retries', options.retries, 0],
      ['totalTimeoutMs', options.totalTimeoutMs, 1],
      ['circuitThreshold', options.circuitThreshold, 1],
      ['circuitHalfOpenAfterMs', options.circuitHalfOpenAfterMs, 1],
      ['maxConcurrentCalls', options.maxConcurrentCalls, 1],
      ['maxQueuedCalls', options.maxQueuedCalls, 0],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${name} must be a whole number of at least ${min}, got ${value}`);
    }
    this.options = { ...options };
    // Aggressive timeouts answer at the deadline even if the work ignores its signal; the signal
    // still aborts the fetch, so nothing keeps running for long. Not aborted when the work
    // returns (abortOnReturn: false): an attempt returns only once it has read book's answer, so
    // nothing is left to stop then, and each abort built a DOMException (with its stack) and
    // dispatched it to the finished fetch's listeners, twice per call.
    this.#total = timeout(options.totalTimeoutMs, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false });
    this.#bulkhead = bulkhead(options.maxConcurrentCalls, options.maxQueuedCalls);
    // Retry transient failures while the circuit is closed; the attempt that opened it (or a failed
    // probe) ends the call at once with its own failure.
    this.#retry = retry(
      handleWhen((err) => err instanceof BookCallFailure && err.retryable && this.#breaker.state === CircuitState.Closed),
      { maxAttempts: options.retries, backoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: MAX_BACKOFF_MS }) },
    );
    this.#breaker = circuitBreaker(
      handleWhen((err) => err instanceof BookCallFailure),
      { halfOpenAfter: options.circuitHalfOpenAfterMs, breaker: new ConsecutiveBreaker(options.circuitThreshold) },
    );
    this.#breaker.onBreak(() => {
      this.#openedAt = Date.now();
    });
    this.#attemptTimeout = timeout(options.attemptTimeoutMs, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false });
  }

  get circuitState(): CircuitStateName {
    return STATE_NAMES[this.#breaker.state];
  }

  /**
   * 0 when a call may go to book now; otherwise how long until the circuit lets a probe through
   * (while a probe is in flight: at most one attempt's timeout).
   */
  msUntilCallable(): number {
    switch (this.#breaker.state) {
      case CircuitState.Closed:
        return 0;
      case CircuitState.Open:
        return Math.max(0, this.#openedAt + this.options.circuitHalfOpenAfterMs - Date.now());
      case CircuitState.HalfOpen:
        return this.options.attemptTimeoutMs;
      case CircuitState.Isolated:
        return this.options.circuitHalfOpenAfterMs;
    }
  }

  /** Called with every change of the circuit's state. */
  onStateChange(listener: (state: CircuitStateName) => void): void {
    this.#breaker.onStateChange((state) => listener(STATE_NAMES[state]));
  }

  /** Called before every retry, with the failure that caused it. */
  onRetry(listener: (attempt: number, reason: string) => void): void {
    this.#retry.onRetry((event) => listener(event.attempt, 'error' in event && event.error instanceof Error ? event.error.message : 'unknown'));
  }

  /**
   * Runs `attempt` under the policy. A failed attempt must throw a BookCallFailure; anything it
   * returns is a usable answer (a success for the breaker). Never throws.
   */
  async execute<T>(attempt: (signal: AbortSignal) => Promise<T>): Promise<CallResult<T>> {
    // An open circuit refuses before the queue: a refused call waits for nothing.
    if (this.msUntilCallable() > 0) return { ok: false, failure: { kind: 'circuitOpen', reason: `the circuit to book is ${this.circuitState}` } };
    try {
      const value = await this.#total.execute((_ctx, callSignal) =>
        this.#bulkhead.execute(
          () =>
            this.#retry.execute(({ signal }) => {
              if (signal.aborted) throw new BudgetSpent();
              return this.#breaker.execute(
                () =>
                  this.#attemptTimeout.execute((_attemptCtx, attemptSignal) => attempt(attemptSignal), signal).catch((err: unknown) => {
                    if (err instanceof TaskCancelledError) throw new BookCallFailure('timeout', `no answer within ${this.options.attemptTimeoutMs} ms`, true);
                    throw err;
                  }),
                signal,
              );
            }, callSignal),
          callSignal,
        ),
      );
      return { ok: true, value };
    } catch (err) {
      return { ok: false, failure: this.#failureOf(err) };
    }
  }

  #failureOf(err: unknown): CallFailure {
    if (err instanceof BookCallFailure) return { kind: err.kind, reason: err.message };
    if (err instanceof BrokenCircuitError) return { kind: 'circuitOpen', reason: `the circuit to book is ${this.circuitState}` };
    if (err instanceof BulkheadRejectedError) {
      return { kind: 'bulkheadFull', reason: `${this.options.maxConcurrentCalls} calls to book in flight and ${this.options.maxQueuedCalls} waiting` };
    }
    if (err instanceof TaskCancelledError || err instanceof BudgetSpent) return { kind: 'timeout', reason: `no answer within the call's ${this.options.totalTimeoutMs} ms` };
    return { kind: 'failed', reason: err instanceof Error ? err.message : String(err) };
  }
}
