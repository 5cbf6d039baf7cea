import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { withinScrapeTimeout } from '../metrics.ts';

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

/** A consumer that counts its redeliveries (deliveries whose delivery count was above 1). */
export interface CountsRedeliveries {
  readonly name: string;
  redeliveries(): number;
}

/** A consumer that can say how many events wait for it on the bus. */
export interface ReportsLag {
  readonly name: string;
  lag(): Promise<number | undefined>;
}

function countsRedeliveries(consumer: object): consumer is CountsRedeliveries {
  return typeof (consumer as Partial<CountsRedeliveries>).redeliveries === 'function' && typeof (consumer as Partial<CountsRedeliveries>).name === 'string';
}

function reportsLag(consumer: object): consumer is ReportsLag {
  return typeof (consumer as Partial<ReportsLag>).lag === 'function' && typeof (consumer as Partial<ReportsLag>).name === 'string';
}

const METRIC = 'bstore_consumer_events_total';
const REDELIVERIES = 'bstore_consumer_redeliveries_total';
const LAG = 'bstore_consumer_lag';

/**
 * Exports the consumers' metrics on a service's registry, each read from the consumers at scrape
 * time; consumers that lack what a metric reads are left out of it, and a metric none of them
 * feeds is not registered. A second call on the same registry does nothing.
 * - `bstore_consumer_events_total{consumer,result}`: deliveries by result (every result of every
 *   consumer appears, 0 until seen);
 * - `bstore_consumer_redeliveries_total{consumer}`: deliveries whose delivery count was above 1;
 * - `bstore_consumer_lag{consumer}`: events the bus holds for the consumer, not acknowledged yet
 *   (`MessageBus.lag`). A consumer whose bus does not answer within SCRAPE_READ_TIMEOUT_MS, or
 *   fails, is logged (with `logger`) and left out of that scrape, which still succeeds.
 */
export function registerConsumerMetrics(registry: Registry, consumers: readonly object[], logger?: Logger): void {
  const counting = consumers.filter(countsEvents);
  if (counting.length > 0 && !registry.getSingleMetric(METRIC)) {
    registry.registerMetric(
      new Counter({
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
      }),
    );
  }
  const redelivering = consumers.filter(countsRedeliveries);
  if (redelivering.length > 0 && !registry.getSingleMetric(REDELIVERIES)) {
    registry.registerMetric(
      new Counter({
        name: REDELIVERIES,
        help: 'Event deliveries to a consumer whose delivery count was above 1 (retries after a failure, redeliveries of unacknowledged events)',
        labelNames: ['consumer'],
        registers: [],
        collect() {
          this.reset();
          for (const consumer of redelivering) this.inc({ consumer: consumer.name }, consumer.redeliveries());
        },
      }),
    );
  }
  const lagging = consumers.filter(reportsLag);
  if (lagging.length > 0 && !registry.getSingleMetric(LAG)) {
    registry.registerMetric(
      new Gauge({
        name: LAG,
        help: 'Events the bus holds for a consumer and the consumer has not acknowledged yet',
        labelNames: ['consumer'],
        registers: [],
        async collect() {
          this.reset();
          const lags = await Promise.allSettled(lagging.map((consumer) => withinScrapeTimeout(() => consumer.lag(), `the bus's lag of ${consumer.name}`)));
          lags.forEach((lag, i) => {
            const consumer = lagging[i]!.name;
            if (lag.status === 'rejected') logger?.warn({ err: lag.reason as unknown, consumer, metric: LAG }, 'could not read the consumer lag for a scrape; the series is left out');
            else if (lag.value !== undefined) this.set({ consumer }, lag.value);
          });
        },
      }),
    );
  }
}
