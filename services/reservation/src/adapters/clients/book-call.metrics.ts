import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CircuitStateName } from './book-call.policy.ts';

/** How one call to book ended: a business answer, or why there was none. */
export type BookCallOutcome =
  | 'held'
  | 'waiting'
  | 'out_of_stock'
  | 'book_not_found'
  | 'hold_released'
  | 'too_many_held'
  | 'unexpected_answer'
  | 'failed'
  | 'timeout'
  | 'circuit_open'
  | 'bulkhead_full';

/** The gauge's value per state: 0 closed, 1 half-open, 2 open (a manually isolated circuit is open too). */
const CIRCUIT_VALUE: Record<CircuitStateName, number> = { closed: 0, 'half-open': 1, open: 2, isolated: 2 };

export interface BookCallMetrics {
  call(outcome: BookCallOutcome, seconds: number | null): void;
  retry(): void;
}

/**
 * The metrics of the call to book, on the service's registry (whose default label gives
 * `service="reservation"`): `bstore_circuit_state{target="book"}`, read at each scrape,
 * `bstore_book_calls_total{outcome}`, `bstore_book_call_duration_seconds{outcome}` and
 * `bstore_book_call_retries_total`.
 */
export function registerBookCallMetrics(registry: Registry, circuitState: () => CircuitStateName): BookCallMetrics {
  new Gauge({
    name: 'bstore_circuit_state',
    help: 'State of the circuit breaker of a synchronous call: 0 closed, 1 half-open, 2 open',
    labelNames: ['target'],
    registers: [registry],
    collect() {
      this.set({ target: 'book' }, CIRCUIT_VALUE[circuitState()]);
    },
  });
  const calls = new Counter({
    name: 'bstore_book_calls_total',
    help: 'Hold calls to book by outcome (circuit_open and bulkhead_full never reached the network)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'bstore_book_call_duration_seconds',
    help: 'Duration of hold calls to book, retries and backoff included, by outcome',
    labelNames: ['outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5, 10],
    registers: [registry],
  });
  const retries = new Counter({ name: 'bstore_book_call_retries_total', help: 'Attempts of hold calls to book repeated after a transient failure', registers: [registry] });
  return {
    call(outcome, seconds) {
      calls.inc({ outcome });
      if (seconds !== null) duration.observe({ outcome }, seconds);
    },
    retry() {
      retries.inc();
    },
  };
}
