import type { EventEnvelope } from '@bstore/contracts';

/** One delivery of a message to a consumer. `deliveryCount` starts at 1. */
export interface Delivery {
  readonly subject: string;
  readonly envelope: EventEnvelope;
  readonly deliveryCount: number;
}

/** What a handler tells the bus about a delivery: done, or try again after a delay. */
export type DeliveryOutcome = { readonly kind: 'ack' } | { readonly kind: 'nak'; readonly delayMs: number };

export interface ConsumerSpec {
  /** Durable name, shared by every replica of the consuming service. */
  readonly durableName: string;
  /** Exact subjects to receive (`bstore.<service>.<EventType>`). */
  readonly subjects: readonly string[];
}

export interface Subscription {
  /** Stops receiving. The durable consumer stays: what arrives meanwhile waits for the next subscribe. */
  stop(): Promise<void>;
}

/** The publishing side of the bus: all an outbox relay needs. */
export interface EventPublisher {
  /** Resolves once the bus has durably accepted the message; a message id seen before is accepted again without a second copy. */
  publish(subject: string, envelope: EventEnvelope): Promise<void>;
}

/** The consuming side: durable consumers (shared by a service's replicas) and what waits for them. */
export interface EventSubscriber {
  subscribe(spec: ConsumerSpec, handler: (delivery: Delivery) => Promise<DeliveryOutcome>): Promise<Subscription>;
  /**
   * Creates the durable consumer without receiving yet (idempotent): from now on messages are kept
   * for it, so a service that starts with its consumer paused loses nothing.
   */
  declareConsumer(spec: ConsumerSpec): Promise<void>;
  /**
   * How many messages wait for the durable consumer `durableName`: stored for it and not yet
   * acknowledged (those being delivered or waiting for a retry included). Undefined when the bus
   * does not know that consumer. For the `bstore_consumer_lag` metric, read at scrape time.
   */
  lag(durableName: string): Promise<number | undefined>;
}

/** Reading the stream back, for an operator's rebuild of a read model. */
export interface StreamReplayer {
  /**
   * Delivers to `handler`, one at a time and in stream order, every stored message on `subjects`
   * from the first one kept up to the last one stored when the replay began; then resolves with how
   * many it delivered (at once with 0 for an empty stream). For rebuilding a read model: it creates
   * nothing durable and acknowledges nothing, so durable consumers are unaffected, and messages
   * published meanwhile are left to them. Each delivery has `deliveryCount` 1. A handler that
   * throws ends the replay with its error.
   */
  replay(subjects: readonly string[], handler: (delivery: Delivery) => Promise<void>): Promise<number>;
}

/** The connection itself: readiness and shutdown, the host's concern. */
export interface BusConnection {
  /** Whether the bus can accept messages now (for readiness). */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * The broker-neutral bus, as an adapter implements it: the four narrow ports together. Code that
 * uses the bus takes only the port it needs (the relay an `EventPublisher`, a consumer an
 * `EventSubscriber`, the rebuild a `StreamReplayer`), so its test double has only that to fake.
 * Delivery is at least once, to every durable consumer whose subjects match, until its handler acks.
 *
 * @example
 * await bus.publish(subjectOf('ReservationRequested'), envelope);
 * const sub = await bus.subscribe({ durableName: 'assignment', subjects: [...] }, async (d) => ({ kind: 'ack' }));
 */
export interface MessageBus extends EventPublisher, EventSubscriber, StreamReplayer, BusConnection {}
