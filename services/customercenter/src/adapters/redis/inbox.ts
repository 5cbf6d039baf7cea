import type { Redis } from 'ioredis';
import type { IntegrationEvent } from '@bstore/contracts';
import type { DeadLetter as StoredDeadLetter, DeadLetterInput, DeadLetterQuery, DeadLetterStore, Inbox } from '@bstore/platform';
import type { PageChange, ReservationPage, TimelineEntry } from '../../domain/reservation-page.ts';
import type { PageQuery, ReservationPageDetail, ReservationPageStore, WaitingLineQuery } from '../../application/ports.ts';
import { execAll, type RedisReservationPageStore } from './reservation-page.store.ts';

/** A parked event, as `listDeadLetters` lists it (the operator's routes use the store methods, which add `replayedAt`). */
export interface DeadLetter extends DeadLetterInput {
  readonly id: number;
  readonly createdAt: Date;
}

/**
 * The letters not replayed yet, newest first: those of `KEYS[1]` (all, scored by id) that are not
 * in `KEYS[2]` (the replayed ones), skipping `ARGV[1]` and taking at most `ARGV[2]`; with their
 * count. One script, so the page and the count agree. Dead letters are few (each is a fault that
 * needs a person), so walking the index is cheap.
 */
const PENDING_PAGE = `
local offset, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local total = redis.call('ZCARD', KEYS[1]) - redis.call('ZCARD', KEYS[2])
local ids, skipped, start = {}, 0, 0
while #ids < limit do
  local chunk = redis.call('ZREVRANGE', KEYS[1], start, start + 99)
  if #chunk == 0 then break end
  for _, id in ipairs(chunk) do
    if not redis.call('ZSCORE', KEYS[2], id) then
      if skipped < offset then skipped = skipped + 1 else
        ids[#ids + 1] = id
        if #ids >= limit then break end
      end
    end
  end
  start = start + 100
end
return {total, ids}
`;

/** Marks letter `KEYS[1]` replayed at `ARGV[1]` unless it is missing or marked already; adds it to `KEYS[2]`. */
const MARK_REPLAYED = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'replayedAt', ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[2])
return 1
`;

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
 * Dead letters: a hash per letter (`deadletter:<id>`, with `replayedAt` once a replay dealt with
 * it), indexed by id in the sorted set `deadletters`; the replayed ones also in
 * `deadletters:replayed`. It is also the read model's `DeadLetterStore` (the operator's
 * `/admin/dead-letters` routes).
 */
export class RedisInbox implements Inbox<ReservationPageStore>, DeadLetterStore {
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

  /** The parked events, oldest first, as parked (see `list` for the newest first, with their replay state). */
  async listDeadLetters(page: { limit: number; offset: number }): Promise<{ items: DeadLetter[]; total: number }> {
    const keys = this.#store.keys;
    const total = await this.#redis.zcard(keys.deadLetters);
    if (page.limit <= 0) return { items: [], total };
    const ids = (await this.#redis.zrange(keys.deadLetters, String(page.offset), String(page.offset + page.limit - 1))).map(Number);
    if (ids.length === 0) return { items: [], total };
    const multi = this.#redis.multi();
    for (const id of ids) multi.hgetall(keys.deadLetter(id));
    const hashes = (await execAll(multi)) as Record<string, string>[];
    return { items: hashes.map((hash, i) => deadLetterOf(ids[i]!, hash)).map(({ replayedAt: _replayedAt, ...letter }) => letter), total };
  }

  /** The parked events, newest first; `pending`: only those not replayed yet. */
  async list(query: DeadLetterQuery): Promise<{ items: StoredDeadLetter[]; total: number }> {
    const keys = this.#store.keys;
    let ids: number[];
    let total: number;
    if (query.pending) {
      const [count, members] = (await this.#redis.eval(PENDING_PAGE, 2, keys.deadLetters, this.#replayedKey, query.offset, query.limit)) as [number, string[]];
      [ids, total] = [members.map(Number), count];
    } else {
      const [members, count] = await execAll(this.#redis.multi().zrevrange(keys.deadLetters, query.offset, query.offset + query.limit - 1).zcard(keys.deadLetters));
      [ids, total] = [(members as string[]).map(Number), count as number];
    }
    return { items: await this.#letters(ids), total };
  }

  async get(id: number): Promise<StoredDeadLetter | null> {
    const hash = await this.#redis.hgetall(this.#store.keys.deadLetter(id));
    return hash.eventId === undefined ? null : deadLetterOf(id, hash);
  }

  async markReplayed(id: number, at: Date): Promise<boolean> {
    const marked = await this.#redis.eval(MARK_REPLAYED, 2, this.#store.keys.deadLetter(id), this.#replayedKey, String(at.getTime()), String(id));
    return marked === 1;
  }

  /** Two ZCARDs in one transaction: every letter is in the index, the replayed ones also in the replayed set. */
  async counts(): Promise<{ pending: number; replayed: number }> {
    const [total, replayed] = (await execAll(this.#redis.multi().zcard(this.#store.keys.deadLetters).zcard(this.#replayedKey))) as [number, number];
    return { pending: Math.max(0, total - replayed), replayed };
  }

  get #replayedKey(): string {
    return `${this.#store.keys.deadLetters}:replayed`;
  }

  async #letters(ids: number[]): Promise<StoredDeadLetter[]> {
    if (ids.length === 0) return [];
    const multi = this.#redis.multi();
    for (const id of ids) multi.hgetall(this.#store.keys.deadLetter(id));
    const hashes = (await execAll(multi)) as Record<string, string>[];
    // A letter deleted by hand between the index and its hash is left out.
    return hashes.flatMap((hash, i) => (hash.eventId === undefined ? [] : [deadLetterOf(ids[i]!, hash)]));
  }
}

function deadLetterOf(id: number, hash: Record<string, string>): StoredDeadLetter {
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
    replayedAt: hash.replayedAt === undefined ? null : new Date(Number(hash.replayedAt)),
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

  waitingLine(query: WaitingLineQuery): Promise<ReservationPageDetail[]> {
    return this.#store.waitingLine(query);
  }
}
