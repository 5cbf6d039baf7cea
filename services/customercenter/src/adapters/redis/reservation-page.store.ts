import type { ChainableCommander, Redis } from 'ioredis';
import { STATUS_RANK, type ReservationStatus } from '@bstore/contracts';
import { compareTimelineEntries, serviceOf, type PageChange, type PageEventType, type ReservationPage, type TimelineEntry } from '../../domain/reservation-page.ts';
import type { PageQuery, ReservationPageDetail, ReservationPageStore, WaitingLineQuery } from '../../application/ports.ts';
import { ReadModelKeys, indexMember } from './keys.ts';

/** What one change did: the page after it, and whether its event was applied for the first time. */
export interface RecordedChange {
  readonly page: ReservationPage;
  /** False when the event's timeline entry was already there: the event had been applied before. */
  readonly firstTime: boolean;
}

/**
 * The timeline entry as stored (the event id is its hash field). Entries written before `traceId`
 * existed have no such field: their trace id is unknown, so null.
 */
interface StoredEntry {
  eventType: PageEventType;
  status: ReservationStatus;
  source: string;
  occurredAt: number;
  traceId?: string | null;
}

/** STATUS_RANK as a Lua table, so the script compares statuses exactly as the domain does. */
const LUA_RANKS = Object.entries(STATUS_RANK)
  .map(([status, rank]) => `[${JSON.stringify(status)}] = ${rank}`)
  .join(', ');

/**
 * `mergePages` in Lua, with the timeline entry, the list indexes and the waiting lines, as one
 * script: Redis runs a script alone, so a change from any replica is applied whole and in
 * isolation, and concurrent changes to one page serialize instead of overwriting each other.
 *
 * KEYS: page, timeline. ARGV: index prefix, index member, reservationId, bookId, customerId,
 * status, occurredAt (epoch ms), eventId, timeline entry JSON, waiting line prefix, then name/value
 * pairs of the optional fields the change knows (bookName, libraryId, libraryName, pickupBy and
 * dueAt in epoch ms, queueTicket).
 * Returns {1 if the timeline entry is new else 0, the page hash as a flat list}.
 *
 * A page is in its book's waiting line (`waiting:<bookId>`, scored by its queue ticket) exactly
 * while its status is bookWaiting: added when the merge leaves it bookWaiting, removed when the
 * merge moves it on. The ticket comes with the status (ReservationWaitlisted carries both).
 *
 * The index and line keys depend on the stored customer, status and book, so the script builds
 * them from the prefixes instead of receiving them; that is fine on a standalone or replicated
 * Redis, not on Redis Cluster (which would need every key in one hash slot).
 */
const MERGE_SCRIPT = `
local RANK = { ${LUA_RANKS} }
local pageKey, timelineKey = KEYS[1], KEYS[2]
local indexPrefix, member = ARGV[1], ARGV[2]
local incoming, at = ARGV[6], ARGV[7]
if RANK[incoming] == nil then return redis.error_reply('unknown status ' .. incoming) end

local known = redis.call('HMGET', pageKey, 'customerId', 'status', 'createdAt', 'updatedAt', 'bookId')
local customer, status, createdAt, updatedAt, bookId, before
if known[1] then
  customer, status, createdAt, updatedAt, bookId = known[1], known[2], known[3], known[4], known[5]
  before = status
  -- The status only moves forward; on equal rank the known one stays.
  if RANK[incoming] > RANK[status] then
    redis.call('ZREM', indexPrefix .. 'status:' .. status, member)
    redis.call('ZREM', indexPrefix .. 'status:' .. status .. ':customer:' .. customer, member)
    status = incoming
  end
  -- The times widen to the earliest and the latest event.
  if tonumber(at) < tonumber(createdAt) then createdAt = at end
  if tonumber(at) > tonumber(updatedAt) then updatedAt = at end
else
  customer, status, createdAt, updatedAt, bookId = ARGV[5], incoming, at, at, ARGV[4]
  redis.call('HSET', pageKey, 'reservationId', ARGV[3], 'bookId', bookId, 'customerId', customer)
end
redis.call('HSET', pageKey, 'status', status, 'createdAt', createdAt, 'updatedAt', updatedAt)
-- A known value is never replaced, and a null (an absent pair) never replaces anything.
for i = 11, #ARGV, 2 do redis.call('HSETNX', pageKey, ARGV[i], ARGV[i + 1]) end

redis.call('ZADD', indexPrefix .. 'all', updatedAt, member)
redis.call('ZADD', indexPrefix .. 'customer:' .. customer, updatedAt, member)
redis.call('ZADD', indexPrefix .. 'status:' .. status, updatedAt, member)
redis.call('ZADD', indexPrefix .. 'status:' .. status .. ':customer:' .. customer, updatedAt, member)

local line = ARGV[10] .. bookId
if status == 'bookWaiting' then
  local ticket = redis.call('HGET', pageKey, 'queueTicket')
  if ticket then redis.call('ZADD', line, ticket, member) end
elseif before == 'bookWaiting' then
  redis.call('ZREM', line, member)
end

local firstTime = redis.call('HSETNX', timelineKey, ARGV[8], ARGV[9])
return { firstTime, redis.call('HGETALL', pageKey) }
`;

/**
 * Pages with their timelines and places in line, read at one moment (a script runs alone).
 * KEYS: page and timeline key of each page, in pairs. ARGV: the waiting line prefix.
 * Returns, per page, {page hash, timeline hash, place in line or 0}, flat lists of hashes. The
 * place of a bookWaiting page is 1 + the number of tickets below its own in its book's line
 * (`queuePositionOf`: equal tickets share a place, as in SQL).
 */
const READ_SCRIPT = `
local out = {}
for i = 1, #KEYS, 2 do
  local page = redis.call('HGETALL', KEYS[i])
  local status, bookId, ticket
  for j = 1, #page, 2 do
    local field = page[j]
    if field == 'status' then status = page[j + 1] elseif field == 'bookId' then bookId = page[j + 1] elseif field == 'queueTicket' then ticket = page[j + 1] end
  end
  local position = 0
  if status == 'bookWaiting' and ticket then position = redis.call('ZCOUNT', ARGV[1] .. bookId, '-inf', '(' .. ticket) + 1 end
  out[#out + 1] = page
  out[#out + 1] = redis.call('HGETALL', KEYS[i + 1])
  out[#out + 1] = position
end
return out
`;

const MERGE_COMMAND = 'customercenterMergePage';
const READ_COMMAND = 'customercenterReadPages';

/** The client with the scripts defined on it (ioredis adds the methods at run time). */
type WithMergeCommand = Redis & {
  [MERGE_COMMAND](...args: (string | number)[]): Promise<[number, string[]]>;
  /** The number of keys first (pages vary), then the keys and arguments. */
  [READ_COMMAND](...args: (string | number)[]): Promise<(string[] | number)[]>;
};

/**
 * ReservationPageStore on Redis (cluster mode): the merge of `mergePages`, the timeline entry, the
 * list indexes and the waiting lines in one Lua script (key layout in `keys.ts`). The store test
 * runs it through the same contract as the SQL adapter, against the domain rule for every order of
 * events.
 */
export class RedisReservationPageStore implements ReservationPageStore {
  readonly #redis: WithMergeCommand;
  readonly keys: ReadModelKeys;

  constructor(redis: Redis, keys = new ReadModelKeys()) {
    // ioredis sends EVALSHA and falls back to EVAL when the server does not have the script yet.
    redis.defineCommand(MERGE_COMMAND, { numberOfKeys: 2, lua: MERGE_SCRIPT });
    redis.defineCommand(READ_COMMAND, { lua: READ_SCRIPT });
    this.#redis = redis as WithMergeCommand;
    this.keys = keys;
  }

  async applyChange(change: PageChange): Promise<ReservationPage> {
    return (await this.record(change)).page;
  }

  /** `applyChange`, also telling whether the change's event was new to this page. */
  async record(change: PageChange): Promise<RecordedChange> {
    const entry: StoredEntry = {
      eventType: change.eventType,
      status: change.status,
      source: change.source,
      occurredAt: change.occurredAt.getTime(),
      traceId: change.traceId,
    };
    const known: string[] = [];
    if (change.bookName !== null) known.push('bookName', change.bookName);
    if (change.libraryId !== null) known.push('libraryId', String(change.libraryId));
    if (change.libraryName !== null) known.push('libraryName', change.libraryName);
    if (change.pickupBy !== null) known.push('pickupBy', String(change.pickupBy.getTime()));
    if (change.dueAt !== null) known.push('dueAt', String(change.dueAt.getTime()));
    if (change.queueTicket !== null) known.push('queueTicket', String(change.queueTicket));
    const [firstTime, fields] = await this.#redis[MERGE_COMMAND](
      this.keys.page(change.reservationId),
      this.keys.timeline(change.reservationId),
      this.keys.indexPrefix,
      indexMember(change.reservationId),
      String(change.reservationId),
      String(change.bookId),
      change.customerId,
      change.status,
      String(entry.occurredAt),
      change.eventId,
      JSON.stringify(entry),
      this.keys.waitingLinePrefix,
      ...known,
    );
    return { page: pageOf(pairsToRecord(fields)), firstTime: firstTime === 1 };
  }

  async get(reservationId: number): Promise<ReservationPageDetail | null> {
    const [detail] = await this.#details([reservationId]);
    return detail ?? null;
  }

  async list(query: PageQuery): Promise<{ items: ReservationPageDetail[]; total: number }> {
    const index = this.keys.index(query);
    // ZREVRANGE 0 -1 would be everything, not nothing.
    if (query.limit <= 0) return { items: [], total: await this.#redis.zcard(index) };
    const [members, total] = await execAll(this.#redis.multi().zrevrange(index, query.offset, query.offset + query.limit - 1).zcard(index));
    return { items: await this.#details((members as string[]).map(Number)), total: total as number };
  }

  async timeline(reservationId: number): Promise<TimelineEntry[]> {
    return timelineOf(await this.#redis.hgetall(this.keys.timeline(reservationId)));
  }

  async waitingLine(query: WaitingLineQuery): Promise<ReservationPageDetail[]> {
    if (query.limit <= 0) return [];
    const from = query.afterTicket === undefined ? '-inf' : `(${query.afterTicket}`;
    const members = await this.#redis.zrangebyscore(this.keys.waitingLine(query.bookId), from, '+inf', 'LIMIT', 0, query.limit);
    // A page that left the line between the two reads is no longer in it.
    return (await this.#details(members.map(Number))).filter((page) => page.status === 'bookWaiting');
  }

  /**
   * Deletes the read model's keys (pages, timelines, indexes, waiting lines; not the dead
   * letters) with SCAN and UNLINK, a batch at a time, so the server never blocks on one big
   * command. Returns how many.
   */
  async clear(): Promise<number> {
    let deleted = 0;
    for (const pattern of this.keys.viewPatterns) {
      let cursor = '0';
      do {
        const [next, keys] = await this.#redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        if (keys.length > 0) deleted += await this.#redis.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
    }
    return deleted;
  }

  /**
   * Pages with their timelines and places in line, in the order asked, in one script so that each
   * page, its timeline and its place are read at the same moment. A page gone meanwhile (a
   * rebuild) is left out.
   */
  async #details(reservationIds: number[]): Promise<ReservationPageDetail[]> {
    if (reservationIds.length === 0) return [];
    const keys = reservationIds.flatMap((id) => [this.keys.page(id), this.keys.timeline(id)]);
    const replies = await this.#redis[READ_COMMAND](keys.length, ...keys, this.keys.waitingLinePrefix);
    const details: ReservationPageDetail[] = [];
    for (let i = 0; i < replies.length; i += 3) {
      const page = pairsToRecord(replies[i] as string[]);
      if (page.reservationId === undefined) continue;
      const position = replies[i + 2] as number;
      details.push({ ...pageOf(page), queuePosition: position > 0 ? position : null, timeline: timelineOf(pairsToRecord(replies[i + 1] as string[])) });
    }
    return details;
  }
}

/** Runs a MULTI and returns its replies, failing with the first command's error. */
export async function execAll(multi: ChainableCommander): Promise<unknown[]> {
  const results = await multi.exec();
  if (!results) throw new Error('Redis transaction was aborted');
  return results.map(([err, reply]) => {
    if (err) throw err;
    return reply;
  });
}

function pairsToRecord(fields: string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
  return record;
}

function pageOf(hash: Record<string, string>): ReservationPage {
  return {
    reservationId: Number(hash.reservationId),
    bookId: Number(hash.bookId),
    bookName: hash.bookName ?? null,
    customerId: hash.customerId!,
    status: hash.status as ReservationStatus,
    libraryId: hash.libraryId === undefined ? null : Number(hash.libraryId),
    libraryName: hash.libraryName ?? null,
    pickupBy: hash.pickupBy === undefined ? null : new Date(Number(hash.pickupBy)),
    dueAt: hash.dueAt === undefined ? null : new Date(Number(hash.dueAt)),
    queueTicket: hash.queueTicket === undefined ? null : Number(hash.queueTicket),
    createdAt: new Date(Number(hash.createdAt)),
    updatedAt: new Date(Number(hash.updatedAt)),
  };
}

/** A timeline hash as entries, oldest first. */
function timelineOf(hash: Record<string, string>): TimelineEntry[] {
  return Object.entries(hash)
    .map(([eventId, json]) => {
      const stored = JSON.parse(json) as StoredEntry;
      return {
        eventId,
        eventType: stored.eventType,
        status: stored.status,
        service: serviceOf(stored.source),
        occurredAt: new Date(stored.occurredAt),
        traceId: stored.traceId ?? null,
      };
    })
    .sort(compareTimelineEntries);
}
