import type { Redis } from 'ioredis';
import type { Logger } from '@bstore/platform';
import type { TimelineEntry } from '../../domain/reservation-page.ts';
import type { PageUpdates, ReservationPageDetail } from '../../application/ports.ts';
import { InProcessPageUpdates } from '../live/in-process.page-updates.ts';

export interface RedisPageUpdatesOptions {
  /** A connection in normal mode, used to publish; shared with the store, not owned. */
  redis: Redis;
  /** The channel every replica publishes to and listens on (`ReadModelKeys.pagesChannel`). */
  channel: string;
  logger: Logger;
}

/**
 * PageUpdates shared by every replica through Redis pub/sub: `publish` sends the page to the
 * channel, and each replica's own subscriber connection hands what arrives to its local listeners,
 * the publisher's included (so a replica never delivers its own change twice). An SSE client thus
 * sees the changes any replica projected.
 *
 * Pub/sub keeps nothing: a message published while a replica is disconnected is lost to it, as it
 * is to a client between two connections of its stream (which reads the list again, ADR 0010).
 */
export class RedisPageUpdates implements PageUpdates {
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #channel: string;
  readonly #logger: Logger;
  // Fans a received page out to this replica's listeners; one that throws does not stop the others.
  readonly #local: InProcessPageUpdates;

  private constructor(options: RedisPageUpdatesOptions, subscriber: Redis) {
    this.#publisher = options.redis;
    this.#subscriber = subscriber;
    this.#channel = options.channel;
    this.#logger = options.logger;
    this.#local = new InProcessPageUpdates(options.logger);
  }

  /** Opens the dedicated subscriber connection and resolves once it listens on the channel. */
  static async start(options: RedisPageUpdatesOptions): Promise<RedisPageUpdates> {
    // A connection that subscribed can run no other command, hence a connection of its own.
    const subscriber = options.redis.duplicate();
    subscriber.on('error', (err: Error) => options.logger.warn({ err }, 'Redis subscriber connection error'));
    const updates = new RedisPageUpdates(options, subscriber);
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === options.channel) updates.#receive(message);
    });
    try {
      await subscriber.subscribe(options.channel);
    } catch (err) {
      subscriber.disconnect();
      throw err;
    }
    return updates;
  }

  get listenerCount(): number {
    return this.#local.listenerCount;
  }

  publish(page: ReservationPageDetail): void {
    this.#publisher.publish(this.#channel, JSON.stringify(page)).catch((err: unknown) => {
      this.#logger.warn({ err, reservationId: page.reservationId }, 'could not publish a page change');
    });
  }

  subscribe(listener: (page: ReservationPageDetail) => void): () => void {
    return this.#local.subscribe(listener);
  }

  /** Stops listening and closes the subscriber connection; the publishing connection stays open. */
  async close(): Promise<void> {
    await this.#subscriber.quit().catch(() => this.#subscriber.disconnect());
  }

  #receive(message: string): void {
    let page: ReservationPageDetail;
    try {
      page = pageFromJson(message);
    } catch (err) {
      this.#logger.warn({ err }, 'ignored a page change that is not a page');
      return;
    }
    this.#local.publish(page);
  }
}

/**
 * A page as `JSON.stringify` sends it: times become ISO strings; `traceId`, `pickupBy`, `dueAt`,
 * `queueTicket` and `queuePosition` may be missing (below).
 */
type PageMessage = Omit<ReservationPageDetail, 'createdAt' | 'updatedAt' | 'pickupBy' | 'dueAt' | 'queueTicket' | 'queuePosition' | 'timeline'> & {
  createdAt: string;
  updatedAt: string;
  pickupBy?: string | null;
  dueAt?: string | null;
  queueTicket?: number | null;
  queuePosition?: number | null;
  timeline: (Omit<TimelineEntry, 'occurredAt' | 'traceId'> & { occurredAt: string; traceId?: string | null })[];
};

const dateOrNull = (iso: string | null | undefined): Date | null => (iso === null || iso === undefined ? null : new Date(iso));

/** The page a message carries, with its times as Dates again. */
function pageFromJson(message: string): ReservationPageDetail {
  const raw = JSON.parse(message) as PageMessage;
  if (typeof raw.reservationId !== 'number' || !Array.isArray(raw.timeline)) throw new Error('not a reservation page');
  return {
    ...raw,
    createdAt: new Date(raw.createdAt),
    updatedAt: new Date(raw.updatedAt),
    // A replica still on an older shape sends pages without the lifecycle's fields: unknown, so null.
    pickupBy: dateOrNull(raw.pickupBy),
    dueAt: dateOrNull(raw.dueAt),
    queueTicket: raw.queueTicket ?? null,
    queuePosition: raw.queuePosition ?? null,
    // A replica still on the older shape sends entries without traceId: unknown, so null.
    timeline: raw.timeline.map((entry) => ({ ...entry, occurredAt: new Date(entry.occurredAt), traceId: entry.traceId ?? null })),
  };
}
