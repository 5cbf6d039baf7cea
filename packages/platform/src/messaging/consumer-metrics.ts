import { Counter, type Registry } from 'prom-client';

/** What can become of one delivery: `EventConsumer`'s `HandleResult`s. */
export const CONSUMER_RESULTS = ['handled', 'duplicate', 'ignored', 'retry', 'dead-lettered'] as const;

/** A consumer that counts what became of its deliveries, by result (`CONSUMER_RESULTS`). */
export interface CountsEvents {
  readonly name: string;
  /** Deliveries so far by result; a result not yet seen may be left out. */
  eventCounts(): Readonly<Record<string, number>>;
}

export function countsEvents(consumer: object): consumer is CountsEvents {
  return typeof (consumer as Partial<CountsEvents>).eventCounts === 'function' && typeof (consumer as Partial<CountsEvents>).name === 'string';
}

const METRIC = 'bstore_consumer_events_total';

/**
 * Exports `bstore_consumer_events_total{consumer,result}` on a service's registry, read from the
 * consumers' own counts at each scrape (every result of every consumer appears, 0 until seen).
 * Consumers that do not count their deliveries are left out; with none, nothing is registered.
 * A second call on the same registry does nothing.
 */
export function registerConsumerMetrics(registry: Registry, consumers: readonly object[]): void {
  const counting = consumers.filter(countsEvents);
  if (counting.length === 0 || registry.getSingleMetric(METRIC)) return;
  const counter = new Counter({
    name: METRIC,
    help: 'Event deliveries handled by a consumer, by result: handled, duplicate, ignored, retry, dead-lettered',
    labelNames: ['consumer', 'result'],
    registers: [],
    collect() {
      this.reset();
      for (const consumer of counting) {
        const counts = consumer.eventCounts();
        const results = new Set<string>([...CONSUMER_RESULTS, ...Object.keys(counts)]);
        for (const result of results) this.inc({ consumer: consumer.name, result }, counts[result] ?? 0);
      }
    },
  });
  registry.registerMetric(counter);
}
