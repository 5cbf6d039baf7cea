import { subjectOf, type EventEnvelope, type EventType } from '@bstore/contracts';
import type { EmbeddedBus, HandleResult, ServiceRuntime } from '@bstore/platform';
import { eventually } from './harness.ts';
import { samplesOf, scrape } from './metrics.ts';

const RESULTS = 'bstore_consumer_events_total';

/**
 * Drives a service through its bus, as the services that publish to it do: `deliver` publishes an
 * event on the real embedded bus the service consumes from, waits until the service's consumer
 * has taken it, and answers how that delivery ended (handled, duplicate, ignored, retry,
 * dead-lettered) as the service's own metrics count it (`bstore_consumer_events_total` at GET
 * /metrics, what an operator watches). Nothing of the service's wiring is reached into.
 *
 * The service's consumer must be running (`DeliveredService.start`, or `runtime.startConsumers()`).
 */
export class BusDriver {
  readonly bus: EmbeddedBus;
  readonly service: ServiceRuntime<unknown>;

  constructor(bus: EmbeddedBus, service: ServiceRuntime<unknown>) {
    this.bus = bus;
    this.service = service;
  }

  /** Starts the service's consumers on `bus` and returns a driver for it. */
  static async start(bus: EmbeddedBus, service: ServiceRuntime<unknown>): Promise<BusDriver> {
    await service.startConsumers();
    return new BusDriver(bus, service);
  }

  /**
   * Publishes `envelope` and waits for the service's consumer to finish one delivery of it.
   * Delivering an envelope again is a redelivery: the bus's deduplication window is let pass first
   * (the log forgets what every consumer acknowledged), as when a publisher repeats an event late
   * or an acknowledgement was lost, so the service's inbox is what must recognise it.
   */
  async deliver(envelope: EventEnvelope, subject = subjectOf(envelope.type as EventType)): Promise<HandleResult> {
    await this.bus.prune(0);
    const before = await this.#results();
    await this.bus.publish(subject, envelope);
    const result = await eventually(`${this.service.name} to take ${String(envelope.type)} ${String(envelope.id)}`, async () => {
      const after = await this.#results();
      const grew = [...after].filter(([result, n]) => n > (before.get(result) ?? 0)).map(([result]) => result);
      if (grew.length === 0) return undefined;
      // A retried delivery ends before the next delivery of the same event: if that one ended too, the first was the retry.
      if (grew.length > 1 && grew.includes('retry')) return 'retry';
      if (grew.length > 1) throw new Error(`${this.service.name} ended several deliveries meanwhile (${grew.join(', ')}): deliver one event at a time`);
      return grew[0] as HandleResult;
    });
    // Anything but a retry is acknowledged next: wait for it, so that the next delivery finds the bus settled.
    if (result !== 'retry') await this.settled();
    return result;
  }

  /** Delivers each envelope in turn; the results in the same order. */
  async deliverAll(envelopes: readonly EventEnvelope[]): Promise<HandleResult[]> {
    const results: HandleResult[] = [];
    for (const envelope of envelopes) results.push(await this.deliver(envelope));
    return results;
  }

  /**
   * Publishes `envelopes` at once and waits until the service has finished a delivery of each
   * (its consumer's lag back to 0): for events that race each other, or a burst.
   */
  async publishAll(envelopes: readonly EventEnvelope[]): Promise<void> {
    await this.bus.prune(0);
    for (const envelope of envelopes) await this.bus.publish(subjectOf(envelope.type as EventType), envelope);
    await this.settled();
  }

  /** Waits until the bus holds nothing for the service's consumer that it has not acknowledged. */
  async settled(): Promise<void> {
    await eventually(`${this.service.name} to acknowledge everything on the bus`, async () => ((await this.bus.lag(this.service.name)) === 0 ? true : undefined));
  }

  /** Deliveries so far by result, as GET /metrics reports them for the service's consumer. */
  async #results(): Promise<Map<string, number>> {
    const samples = samplesOf(await scrape(this.service.app), RESULTS, { consumer: this.service.name });
    return new Map(samples.map((s) => [s.labels.result ?? '', s.value]));
  }
}
