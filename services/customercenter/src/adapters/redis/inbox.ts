import type { Redis } from 'ioredis';
import type { IntegrationEvent } from '@bstore/contracts';
import type { DeadLetterInput, Inbox } from '@bstore/platform';
import type { PageChange, ReservationPage, TimelineEntry } from '../../domain/reservation-page.ts';
import type { PageQuery, ReservationPageDetail, ReservationPageStore } from '../../application/ports.ts';
import { execAll, type RedisReservationPageStore } from './reservation-page.store.ts';

/** A parked event, as listed. */
export interface DeadLetter extends DeadLetterInput {
  readonly id: number;
  readonly createdAt: Date;
}

/**
 * The inbox of the read model on Redis. There is no inbox record apart from the effect: the
 * effect is idempotent by construction (the merge rule, and one timeline entry per event id), and
 * each change is applied by one atomic script that also says whether its event's timeline entry
 * was new. That entry is the record of the event, written in the same step as the change, so a
 * process that dies at any point loses nothing: the redelivered event is applied again, or found
 * already applied. An event is reported as handled before (runOnce returns false) when its entry
 * was already there; the effect did run then, but changed nothing.
 *
 * Handlers get a ReservationPageStore (the context `Ctx`) and must apply their event through its
 * `applyChange`, which every read-model handler does exactly once. The timeline belongs to the
 * page, not to a consumer: this inbox serves the read model's one consumer (customercenter).
 *
 * Dead letters: a hash per letter (`deadletter:<id>`), indexed by id in `deadletters`.
 */
export class RedisInbox implements Inbox<ReservationPageStore> {
  readonly #redis: Redis;
  readonly #store: RedisReservationPageStore;

  constructor(redis: Redis, store: RedisReservationPageStore) {
    this.#redis = redis;
    this.#store = store;
  }

  async runOnce(_consumer: string, _event: IntegrationEvent, effect: (store: ReservationPageStore) => Promise<void>): Promise<boolean> {
    const run = new FirstTimeStore(this.#store);
    await effect(run);
    return run.appliedFirstTime;
  }

  async park(letter: DeadLetterInput): Promise<void> {
    const keys = this.#store.keys;
    // A crash between the two steps only leaves a gap in the ids.
    const id = await this.#redis.incr(keys.deadLetterSequence);
    await execAll(
      this.#redis
        .multi()
        .hset(keys.deadLetter(id), {
          consumer: letter.consumer,
          eventId: letter.eventId,
          eventType: letter.eventType,
          subject: letter.subject,
          envelope: JSON.stringify(letter.envelope),
          error: letter.error,
          deliveries: String(letter.deliveries),
          createdAt: String(Date.now()),
        })
        .zadd(keys.deadLetters, id, String(id)),
    );
  }

  /** The parked events, oldest first. */
  async listDeadLetters(page: { limit: number; offset: number }): Promise<{ items: DeadLetter[]; total: number }> {
    const keys = this.#store.keys;
    const total = await this.#redis.zcard(keys.deadLetters);
    if (page.limit <= 0) return { items: [], total };
    const ids = (await this.#redis.zrange(keys.deadLetters, String(page.offset), String(page.offset + page.limit - 1))).map(Number);
    if (ids.length === 0) return { items: [], total };
    const multi = this.#redis.multi();
    for (const id of ids) multi.hgetall(keys.deadLetter(id));
    const hashes = (await execAll(multi)) as Record<string, string>[];
    return { items: hashes.map((hash, i) => deadLetterOf(ids[i]!, hash)), total };
  }
}

function deadLetterOf(id: number, hash: Record<string, string>): DeadLetter {
  return {
    id,
    consumer: hash.consumer!,
    eventId: hash.eventId!,
    eventType: hash.eventType!,
    subject: hash.subject!,
    envelope: JSON.parse(hash.envelope!) as unknown,
    error: hash.error!,
    deliveries: Number(hash.deliveries),
    createdAt: new Date(Number(hash.createdAt)),
  };
}

/** The store as one run of an effect sees it: notes whether a change it applied was new. */
class FirstTimeStore implements ReservationPageStore {
  readonly #store: RedisReservationPageStore;
  appliedFirstTime = false;

  constructor(store: RedisReservationPageStore) {
    this.#store = store;
  }

  async applyChange(change: PageChange): Promise<ReservationPage> {
    const { page, firstTime } = await this.#store.record(change);
    if (firstTime) this.appliedFirstTime = true;
    return page;
  }

  get(reservationId: number): Promise<ReservationPageDetail | null> {
    return this.#store.get(reservationId);
  }

  list(query: PageQuery): Promise<{ items: ReservationPageDetail[]; total: number }> {
    return this.#store.list(query);
  }

  timeline(reservationId: number): Promise<TimelineEntry[]> {
    return this.#store.timeline(reservationId);
  }
}
