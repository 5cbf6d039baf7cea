import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { EventEnvelope } from '@bstore/contracts';
import type { ConsumerSpec, Delivery, DeliveryOutcome, MessageBus, Subscription } from './bus.ts';

export interface NatsBusOptions {
  /** nats://host:port, one or several. */
  servers: string | string[];
  logger: Logger;
  /** Connection name shown by the server (the service and its replica). */
  name?: string;
  /** The stream every bstore event goes to. */
  streamName?: string;
  /** Publishing the same event id again within this window is ignored by the server. */
  duplicateWindowMs?: number;
  /** How long an unacknowledged delivery waits before the server sends it again. */
  ackWaitMs?: number;
  /**
   * Create or update the stream at connect (the default). `false`: the stream must already exist
   * (a tool that only reads it, like the read model's rebuild, must not create an empty one).
   */
  manageStream?: boolean;
  /**
   * Copies of the stream kept by a NATS cluster (3 on a three-server cluster, so a publish is
   * acknowledged once a quorum holds it). Applied when the stream is created (1 when unset) or
   * updated; unset, an existing stream keeps its replicas (a process started without the setting
   * never lowers them).
   */
  streamReplicas?: number;
}

const STREAM_SUBJECTS = ['bstore.>'];

/** The longest each step of `close()` waits (stopping the subscriptions, draining). */
const CLOSE_STEP_MS = 3000;

/** Notifications after which a pull consumer no longer receives anything until it is recreated. */
const FATAL_STATUSES = new Set(['heartbeats_missed', 'consumer_deleted', 'consumer_not_found', 'stream_not_found', 'no_responders']);

/**
 * The bus of cluster mode: NATS JetStream. One stream (limits retention, because several services
 * read the same events), subjects `bstore.<service>.<EventType>`, publish with `Nats-Msg-Id` = the
 * event id (the server drops a duplicate within its window), one durable pull consumer per
 * consuming service shared by its replicas, explicit acks, `nak(delay)` for a retry.
 *
 * Works on nats-server 2.9: a consumer of several subjects uses `filter_subjects` only on 2.10+;
 * on 2.9 it reads the narrowest single filter covering them (`coveringSubject`: all of one
 * producer's events, say, or the whole stream) and acknowledges at once what it does not want.
 */
export class NatsJetStreamBus implements MessageBus {
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #logger: Logger;
  readonly #stream: string;
  readonly #ackWaitMs: number;
  readonly #multiFilter: boolean;
  readonly #subscriptions = new Set<Subscription>();

  private constructor(nc: NatsConnection, jsm: JetStreamManager, options: NatsBusOptions) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#logger = options.logger;
    this.#stream = options.streamName ?? 'BSTORE';
    this.#ackWaitMs = options.ackWaitMs ?? 30_000;
    const [major = 0, minor = 0] = (nc.info?.version ?? '0.0').split('.').map(Number);
    this.#multiFilter = major > 2 || (major === 2 && minor >= 10);
  }

  static async connect(options: NatsBusOptions): Promise<NatsJetStreamBus> {
    // noAsyncTraces: no Error (and its stack) made up front for every request, on the chance that
    // it fails: each publish and each ackAck is a request, several per saga. A failed request still
    // rejects with its error and message, its stack then inside the client.
    const nc = await connect({ servers: options.servers, name: options.name ?? 'bstore', maxReconnectAttempts: -1, noAsyncTraces: true });
    try {
      const jsm = await jetstreamManager(nc);
      const bus = new NatsJetStreamBus(nc, jsm, options);
      if (options.manageStream === false) await bus.#requireStream();
      else await bus.#ensureStream(options.duplicateWindowMs ?? 2 * 60_000, options.streamReplicas);
      return bus;
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  async publish(subject: string, envelope: EventEnvelope): Promise<void> {
    await this.#js.publish(subject, JSON.stringify(envelope), { msgID: envelope.id });
  }

  async declareConsumer(spec: ConsumerSpec): Promise<void> {
    const config: Partial<ConsumerConfig> = {
      durable_name: spec.durableName,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(this.#ackWaitMs),
      // Redelivery is bounded by the EventConsumer, which parks the event as a dead letter.
      max_deliver: -1,
      ...(this.#multiFilter ? { filter_subjects: [...spec.subjects] } : { filter_subject: coveringSubject(spec.subjects) }),
    };
    try {
      await this.#jsm.consumers.info(this.#stream, spec.durableName);
      await this.#jsm.consumers.update(this.#stream, spec.durableName, config);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.#jsm.consumers.add(this.#stream, config);
    }
  }

  async subscribe(spec: ConsumerSpec, handler: (delivery: Delivery) => Promise<DeliveryOutcome>): Promise<Subscription> {
    await this.declareConsumer(spec);
    const wanted = new Set(spec.subjects);
    let running = true;
    let current: ConsumerMessages | undefined;

    const loop = (async () => {
      while (running) {
        try {
          const consumer = await this.#js.consumers.get(this.#stream, spec.durableName);
          const messages = await consumer.consume({ max_messages: 64, idle_heartbeat: 5000, expires: 30_000 });
          current = messages;
          // Watch for the known stalls of pull consumers and start over when one happens.
          void (async () => {
            for await (const status of messages.status()) {
              if (FATAL_STATUSES.has(status.type)) {
                this.#logger.warn({ consumer: spec.durableName, status: status.type }, 'JetStream consumer stalled; recreating it');
                await messages.close();
                break;
              }
            }
          })().catch((err: unknown) => {
            // The status stream ended with an error: the consume loop below sees the same end and starts over.
            this.#logger.warn({ err, consumer: spec.durableName }, 'JetStream consumer status watch ended with an error');
          });
          for await (const msg of messages) {
            if (!running) break;
            await this.#deliver(msg, wanted, handler);
          }
        } catch (err) {
          if (!running) break;
          this.#logger.error({ err, consumer: spec.durableName }, 'JetStream consumer failed; retrying');
        }
        if (running) {
          await new Promise((r) => setTimeout(r, 1000));
          await this.declareConsumer(spec).catch((err: unknown) => this.#logger.warn({ err }, 'could not recreate the consumer yet'));
        }
      }
    })();

    const subscription: Subscription = {
      stop: async () => {
        running = false;
        await current?.close();
        await loop;
        this.#subscriptions.delete(subscription);
      },
    };
    this.#subscriptions.add(subscription);
    return subscription;
  }

  /**
   * Reads the stream with an ordered consumer: ephemeral, in memory, unacknowledged, recreated by
   * the client from the last sequence seen if it stalls, and deleted at the end. nats-server 2.9
   * takes a single `filter_subject`, so it reads all of `bstore.>` and skips the other subjects
   * here. It stops at the stream's last sequence as read before it began, or earlier once nothing
   * more is stored (that last message may have been removed meanwhile).
   */
  async replay(subjects: readonly string[], handler: (delivery: Delivery) => Promise<void>): Promise<number> {
    const { state } = await this.#jsm.streams.info(this.#stream);
    if (state.messages === 0 || subjects.length === 0) return 0;
    const consumer = await this.#js.consumers.get(this.#stream, { filter_subjects: STREAM_SUBJECTS[0], opt_start_seq: state.first_seq });
    try {
      if ((await consumer.info(true)).num_pending === 0) return 0;
      const wanted = new Set(subjects);
      const messages = await consumer.consume({ max_messages: 256 });
      let delivered = 0;
      try {
        for await (const msg of messages) {
          if (wanted.has(msg.subject)) {
            await handler({ subject: msg.subject, envelope: envelopeOf(msg), deliveryCount: 1 });
            delivered++;
          }
          if (msg.seq >= state.last_seq || msg.info.pending === 0) break;
        }
      } finally {
        await messages.close();
      }
      return delivered;
    } finally {
      await consumer.delete().catch((err: unknown) => this.#logger.debug({ err }, 'replay consumer already gone'));
    }
  }

  /**
   * The durable consumer's `num_pending` (stored, not delivered yet) plus `num_ack_pending`
   * (delivered, not acknowledged yet), from its consumer info. On nats-server 2.9 the consumer
   * reads the whole stream, so other subjects count too until it acknowledges them.
   */
  async lag(durableName: string): Promise<number | undefined> {
    try {
      const info = await this.#jsm.consumers.info(this.#stream, durableName);
      return info.num_pending + info.num_ack_pending;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async healthy(): Promise<boolean> {
    if (this.#nc.isClosed()) return false;
    await this.#jsm.streams.info(this.#stream);
    return true;
  }

  /**
   * Stops the subscriptions and drains the connection (what was published gets flushed). While the
   * server is unreachable a drain would wait for a reconnect that may never come, so each step is
   * bounded and the connection is then closed as it is.
   */
  async close(): Promise<void> {
    const within = (promise: Promise<unknown>, ms: number) =>
      Promise.race([promise.then(() => undefined, () => undefined), new Promise<void>((r) => setTimeout(r, ms).unref())]);
    await within(Promise.all([...this.#subscriptions].map((s) => s.stop())), CLOSE_STEP_MS);
    if (!this.#nc.isClosed()) await within(this.#nc.drain(), CLOSE_STEP_MS);
    if (!this.#nc.isClosed()) await this.#nc.close();
  }

  async #deliver(msg: JsMsg, wanted: Set<string>, handler: (delivery: Delivery) => Promise<DeliveryOutcome>): Promise<void> {
    if (!wanted.has(msg.subject)) {
      msg.ack(); // only on nats-server 2.9, which cannot filter by several subjects
      return;
    }
    const envelope = envelopeOf(msg);
    let outcome: DeliveryOutcome;
    try {
      outcome = await handler({ subject: msg.subject, envelope, deliveryCount: msg.info.deliveryCount });
    } catch (err) {
      this.#logger.error({ err, eventId: envelope.id }, 'handler threw; redelivering');
      outcome = { kind: 'nak', delayMs: 1000 };
    }
    if (outcome.kind === 'ack') await msg.ackAck();
    else msg.nak(outcome.delayMs);
  }

  async #requireStream(): Promise<void> {
    try {
      await this.#jsm.streams.info(this.#stream);
    } catch (err) {
      if (isNotFound(err)) throw new Error(`JetStream stream ${this.#stream} does not exist on this server`, { cause: err });
      throw err;
    }
  }

  async #ensureStream(duplicateWindowMs: number, replicas: number | undefined): Promise<void> {
    const config = {
      name: this.#stream,
      subjects: STREAM_SUBJECTS,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      duplicate_window: nanos(duplicateWindowMs),
    };
    let existing: number | undefined;
    try {
      existing = (await this.#jsm.streams.info(this.#stream)).config.num_replicas;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.#jsm.streams.add({ ...config, num_replicas: replicas ?? 1 });
      return;
    }
    await this.#jsm.streams.update(this.#stream, { ...config, num_replicas: replicas ?? existing });
  }
}

/**
 * The envelope a message carries. One that is not a JSON object becomes an envelope of type
 * `unparseable` with the raw text, which the consumer parks as a dead letter.
 */
function envelopeOf(msg: JsMsg): EventEnvelope {
  let parsed: unknown;
  try {
    parsed = msg.json<unknown>();
  } catch {
    parsed = undefined;
  }
  if (typeof parsed === 'object' && parsed !== null) return parsed as EventEnvelope;
  return { specversion: '1.0', id: `nats-${msg.seq}`, source: 'unknown', type: 'unparseable', subject: '', time: '', datacontenttype: 'application/json', data: msg.string() };
}

/**
 * The narrowest single subject filter that covers every one of `subjects` (nats-server 2.9 takes
 * one filter per consumer): the subject itself when there is one, else their common leading
 * tokens followed by `>` (`bstore.reservation.>` for two of reservation's events), else the whole
 * stream. Every message it lets through that is not wanted is acknowledged and skipped; each it
 * keeps out is a delivery and an acknowledgement saved.
 */
export function coveringSubject(subjects: readonly string[]): string {
  const whole = STREAM_SUBJECTS[0] as string;
  const [first, ...rest] = subjects;
  if (first === undefined) return whole;
  if (rest.length === 0 || rest.every((s) => s === first)) return first;
  const split = subjects.map((s) => s.split('.'));
  const common: string[] = [];
  for (let i = 0; ; i++) {
    const token = split[0]?.[i];
    // A token every subject shares, that is no wildcard, with at least one token after it in each.
    if (token === undefined || token === '*' || token === '>' || split.some((parts) => parts[i] !== token || parts.length <= i + 1)) break;
    common.push(token);
  }
  const covering = `${common.join('.')}.>`;
  // Within the stream's subjects (bstore.>) and narrower than them; otherwise the whole stream.
  return common.length >= 2 && common[0] === 'bstore' ? covering : whole;
}

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.status === 404;
}
