import type { Transaction } from 'kysely';
import type { Logger } from 'pino';
import { trace, type Span, type Tracer } from '@opentelemetry/api';
import { runWithLogFields } from '../log-context.ts';
import { SpanKind, untracedTracer, contextOfTraceparent, inSpan, markSpanFailed, tagEventCorrelation } from '../tracing.ts';
import { InvalidEventError, isEventType, parseEvent, subjectOf, type EventEnvelope, type EventType, type IntegrationEvent } from '@bstore/contracts';
import type { Delivery, DeliveryOutcome, EventSubscriber, Subscription } from './bus.ts';
import type { Inbox } from './inbox.ts';

/** A handler's effect runs in the inbox's unit of work (`Ctx`), which also records the event. */
export type ContextEventHandler<T extends EventType, Ctx> = (event: IntegrationEvent<T>, ctx: Ctx) => Promise<void>;

export type ContextEventHandlers<Ctx> = { [T in EventType]?: ContextEventHandler<T, Ctx> };

/** Handlers of a service with a SQL database: each runs in the transaction that records the event in the inbox. */
export type EventHandlers<DB> = ContextEventHandlers<Transaction<DB>>;

export interface EventConsumerOptions<Ctx> {
  /** Durable consumer name, one per consuming service (its replicas share it). */
  name: string;
  /** Remembers handled events and parks dead letters (`KyselyInbox` for a SQL database). */
  inbox: Inbox<Ctx>;
  bus: EventSubscriber;
  logger: Logger;
  handlers: ContextEventHandlers<Ctx>;
  /**
   * Deliveries before an event is parked as a dead letter. The default, 20, with the default
   * backoff (capped at 30 s) keeps retrying for about eight minutes: long enough to ride out a
   * restart or a short outage, so that parking means a fault that needs a person.
   */
  maxDeliver?: number;
  /** Delay before redelivery number n+1, after n failed deliveries. */
  backoffMs?: (deliveries: number) => number;
  /**
   * Called with each handled event once its transaction committed (never for a duplicate or a
   * failure): wakes the outbox relay, feeds live views. A failure here is logged; the change stays.
   */
  afterCommit?: (event: IntegrationEvent) => void | Promise<void>;
  /** The service's tracer (ServiceTracing): each delivery is a CONSUMER span, child of the envelope's `traceparent`. */
  tracer?: Tracer;
}

export type HandleResult = 'handled' | 'duplicate' | 'ignored' | 'retry' | 'dead-lettered';

/**
 * What a redelivery of a parked event came to: done (`handled`, or `duplicate` when its effect was
 * already in place), `ignored` (this consumer does not read that type), or `failed` with the error,
 * `malformed` when the event itself is invalid.
 */
export type RedeliveryResult =
  | { readonly outcome: 'handled' | 'duplicate' | 'ignored' }
  | { readonly outcome: 'failed'; readonly error: string; readonly malformed: boolean };

/** Something that can redeliver a parked event: an `EventConsumer` (the dead-letter routes need no more). */
export interface Redeliverer {
  redeliver(envelope: unknown): Promise<RedeliveryResult>;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 2000);

/** Marks the active span (the delivery's) as failed. */
function failSpan(err: unknown): void {
  const span = trace.getActiveSpan();
  if (span) markSpanFailed(span, err);
}

const defaultBackoff = (n: number): number => Math.min(250 * 2 ** (n - 1), 30_000);

/**
 * Receives integration events for one service, exactly once in effect: the inbox records the event
 * id with the handler's changes (for SQL, in the same transaction), so a redelivered event is
 * acknowledged and skipped. A failing handler is retried with backoff; after `maxDeliver`
 * deliveries, or at once when the event is malformed, it is parked as a dead letter with its error
 * and acknowledged, so it never blocks the events behind it.
 */
export class EventConsumer<Ctx> implements Redeliverer {
  readonly name: string;
  readonly #inbox: Inbox<Ctx>;
  readonly #bus: EventSubscriber;
  readonly #logger: Logger;
  readonly #handlers: ContextEventHandlers<Ctx>;
  readonly #maxDeliver: number;
  readonly #backoffMs: (deliveries: number) => number;
  readonly #afterCommit: (event: IntegrationEvent) => void | Promise<void>;
  /** Deliveries from the bus by result, for the `bstore_consumer_events_total` metric. */
  readonly #counts: Record<string, number> = {};
  /** Deliveries from the bus that were not the first of their event, for `bstore_consumer_redeliveries_total`. */
  #redeliveries = 0;
  #subscription: Subscription | undefined;
  readonly #tracer: Tracer;

  constructor(options: EventConsumerOptions<Ctx>) {
    this.#tracer = options.tracer ?? untracedTracer();
    this.name = options.name;
    this.#inbox = options.inbox;
    this.#bus = options.bus;
    this.#logger = options.logger.child({ consumer: options.name });
    this.#handlers = options.handlers;
    this.#maxDeliver = options.maxDeliver ?? 20;
    this.#backoffMs = options.backoffMs ?? defaultBackoff;
    this.#afterCommit = options.afterCommit ?? (() => {});
  }

  get subjects(): string[] {
    return (Object.keys(this.#handlers) as EventType[]).map(subjectOf);
  }

  get running(): boolean {
    return this.#subscription !== undefined;
  }

  async start(): Promise<void> {
    if (this.#subscription) return;
    this.#subscription = await this.#bus.subscribe({ durableName: this.name, subjects: this.subjects }, (d) => this.#onDelivery(d));
  }

  /** Registers the durable consumer without consuming: events are kept for it until it starts. */
  async declare(): Promise<void> {
    await this.#bus.declareConsumer({ durableName: this.name, subjects: this.subjects });
  }

  async stop(): Promise<void> {
    const sub = this.#subscription;
    this.#subscription = undefined;
    await sub?.stop();
  }

  /**
   * Handles one event as if delivered for the `deliveryCount`-th time. The bus calls this through
   * the subscription; tests call it directly to deliver the same event twice.
   */
  async handle(envelope: EventEnvelope, deliveryCount = 1, subject = ''): Promise<HandleResult> {
    // A type this service does not read makes no span (on nats-server 2.9 a consumer receives every type).
    if (this.#ignores(envelope)) return 'ignored';
    return this.#traced(envelope, 'process', subject, async (span) => {
      span.setAttribute('messaging.delivery.count', deliveryCount);
      const result = await this.#handleOnce(envelope, deliveryCount, subject);
      span.setAttribute('bstore.consumer.result', result);
      return result;
    });
  }

  /**
   * Runs one delivery of `envelope` in its CONSUMER span, the child of the span that wrote the
   * event (its `traceparent`), so the saga is one trace across services; and with the event's
   * ids on every log line it writes. What the handler writes to the outbox carries this span on.
   */
  #traced<T>(envelope: EventEnvelope, operation: 'process' | 'redeliver', subject: string, fn: (span: Span) => Promise<T>): Promise<T> {
    const type = typeof envelope.type === 'string' ? envelope.type : 'unknown';
    const attributes = {
      'messaging.operation.type': 'process',
      'messaging.operation.name': operation,
      'messaging.destination.name': subject || String(envelope.type),
      'messaging.consumer.group.name': this.name,
      'messaging.message.id': String(envelope.id),
    };
    const parent = contextOfTraceparent(envelope.traceparent);
    return runWithLogFields({ eventId: envelope.id, type }, () =>
      inSpan(this.#tracer, `${operation} ${type}`, { kind: SpanKind.CONSUMER, attributes, parent }, (span) => {
        tagEventCorrelation(envelope.data);
        return fn(span);
      }),
    );
  }

  async #handleOnce(envelope: EventEnvelope, deliveryCount: number, subject: string): Promise<HandleResult> {
    try {
      return await this.#deliver(envelope);
    } catch (err) {
      failSpan(err);
      const poison = err instanceof InvalidEventError;
      if (!poison && deliveryCount < this.#maxDeliver) {
        this.#logger.warn({ err, eventId: envelope.id, type: envelope.type, deliveryCount }, 'event handler failed; will retry');
        return 'retry';
      }
      this.#logger.error({ err, eventId: envelope.id, type: envelope.type, deliveryCount }, 'event parked as dead letter');
      await this.#inbox.park({
        consumer: this.name,
        eventId: String(envelope.id),
        eventType: String(envelope.type),
        subject,
        envelope,
        error: errorText(err),
        deliveries: deliveryCount,
      });
      return 'dead-lettered';
    }
  }

  /**
   * Delivers a parked event once more (an operator's replay), through the same inbox and handler
   * as the bus, so an event whose effect is already in place is a `duplicate`, never a double.
   * Unlike `handle`, a failure is reported, not retried or parked again: the caller keeps the
   * dead letter as it is. `malformed` says the event itself is invalid (no retry can help).
   */
  async redeliver(envelope: unknown): Promise<RedeliveryResult> {
    const traceable = (typeof envelope === 'object' && envelope !== null ? envelope : {}) as EventEnvelope;
    return this.#traced(traceable, 'redeliver', '', async (span) => {
      const result = await this.#redeliverOnce(envelope);
      span.setAttribute('bstore.consumer.result', result.outcome);
      return result;
    });
  }

  async #redeliverOnce(envelope: unknown): Promise<RedeliveryResult> {
    const { id, type } = (typeof envelope === 'object' && envelope !== null ? envelope : {}) as { id?: unknown; type?: unknown };
    try {
      if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) {
        throw new InvalidEventError('the stored envelope is not a JSON object');
      }
      const outcome = await this.#deliver(envelope as EventEnvelope);
      this.#logger.info({ eventId: id, type, outcome }, 'dead letter redelivered');
      return { outcome };
    } catch (err) {
      failSpan(err);
      this.#logger.warn({ err, eventId: id, type }, 'dead letter redelivery failed; it stays parked');
      return { outcome: 'failed', error: errorText(err), malformed: err instanceof InvalidEventError };
    }
  }

  /** Whether the event is of a known type this consumer has no handler for. */
  #ignores(envelope: EventEnvelope): boolean {
    return isEventType(envelope.type) && this.#handlers[envelope.type] === undefined;
  }

  /** One delivery through the inbox: throws on a malformed event (InvalidEventError) or a failing handler. */
  async #deliver(envelope: EventEnvelope): Promise<'handled' | 'duplicate' | 'ignored'> {
    // An unknown type is a malformed event (parked by `handle`); a known one this service does not read is skipped.
    if (!isEventType(envelope.type)) throw new InvalidEventError(`unknown event type ${JSON.stringify(envelope.type)}`);
    if (this.#ignores(envelope)) return 'ignored';
    const handler = this.#handlers[envelope.type] as ContextEventHandler<EventType, Ctx>;
    const event = parseEvent(envelope);
    const fresh = await this.#inbox.runOnce(this.name, event, (ctx) => handler(event, ctx));
    if (!fresh) {
      this.#logger.debug({ eventId: envelope.id, type: envelope.type }, 'duplicate event skipped');
      return 'duplicate';
    }
    try {
      await this.#afterCommit(event);
    } catch (err) {
      this.#logger.warn({ err, eventId: event.id, type: event.type }, 'after-commit hook failed; the change stays committed');
    }
    this.#logger.debug({ eventId: event.id, type: event.type }, 'event handled');
    return 'handled';
  }

  /** How many deliveries from the bus ended in each result (handled, duplicate, retry, ...). */
  eventCounts(): Readonly<Record<string, number>> {
    return { ...this.#counts };
  }

  /** How many deliveries from the bus came with a delivery count above 1 (a retry or an unacknowledged redelivery). */
  redeliveries(): number {
    return this.#redeliveries;
  }

  /** Events the bus holds for this consumer, not yet acknowledged (undefined: the bus does not know it yet). */
  lag(): Promise<number | undefined> {
    return this.#bus.lag(this.name);
  }

  async #onDelivery(delivery: Delivery): Promise<DeliveryOutcome> {
    if (delivery.deliveryCount > 1) this.#redeliveries++;
    const result = await this.handle(delivery.envelope, delivery.deliveryCount, delivery.subject);
    this.#counts[result] = (this.#counts[result] ?? 0) + 1;
    return result === 'retry' ? { kind: 'nak', delayMs: this.#backoffMs(delivery.deliveryCount) } : { kind: 'ack' };
  }
}
