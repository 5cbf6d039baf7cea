import type { ReservationStatus } from '@bstore/contracts';

export const DEFAULT_REDIS_KEY_PREFIX = 'bstore:customercenter:';

/**
 * Where the read model lives in Redis: every key and the pub/sub channel start with one prefix,
 * so that several systems can share a server and a rebuild can empty exactly this read model.
 *
 * | key | type | holds |
 * |---|---|---|
 * | `page:<reservationId>` | hash | the page's fields; a null field is absent; times in epoch ms |
 * | `timeline:<reservationId>` | hash | event id -> entry JSON (eventType, status, source, occurredAt, traceId when known) |
 * | `index:all` | sorted set | every page |
 * | `index:customer:<customerId>` | sorted set | one customer's pages |
 * | `index:status:<status>` | sorted set | the pages in a status |
 * | `index:status:<status>:customer:<customerId>` | sorted set | one customer's pages in a status |
 * | `waiting:<bookId>` | sorted set | the book's `bookWaiting` pages, scored by queueTicket: its waiting line |
 * | `deadletter:<id>`, `deadletters`, `deadletters:next-id` | hash, sorted set, counter | parked events |
 * | `pages` | pub/sub channel | page changes, for the live stream of every replica |
 *
 * Index members are the reservation id zero-padded to 16 digits and scored by the page's
 * `updatedAt`: Redis orders equal scores by member bytes, so a reverse range is "updatedAt
 * descending, then reservationId descending" with no second lookup. The status comes before the
 * customer in the combined index, and statuses have no colon, so no customer id can make one
 * index's key collide with another's. A waiting line has the same members, scored by the page's
 * queue ticket instead: a page's place in line is 1 + `ZCOUNT` of the tickets below its own.
 */
export class ReadModelKeys {
  readonly prefix: string;

  constructor(prefix = DEFAULT_REDIS_KEY_PREFIX) {
    if (prefix.length === 0) throw new Error('the Redis key prefix must not be empty');
    this.prefix = prefix;
  }

  page(reservationId: number): string {
    return `${this.prefix}page:${reservationId}`;
  }

  timeline(reservationId: number): string {
    return `${this.prefix}timeline:${reservationId}`;
  }

  /** Every index key starts with this; the merge script appends the rest (see the table above). */
  get indexPrefix(): string {
    return `${this.prefix}index:`;
  }

  /** The one index that answers a list query with these filters. */
  index(filter: { customerId?: string; status?: ReservationStatus }): string {
    const { customerId, status } = filter;
    if (status !== undefined && customerId !== undefined) return `${this.indexPrefix}status:${status}:customer:${customerId}`;
    if (status !== undefined) return `${this.indexPrefix}status:${status}`;
    if (customerId !== undefined) return `${this.indexPrefix}customer:${customerId}`;
    return `${this.indexPrefix}all`;
  }

  /** Every waiting line's key starts with this; the merge script appends the book id. */
  get waitingLinePrefix(): string {
    return `${this.prefix}waiting:`;
  }

  /** The waiting line of a book: its `bookWaiting` pages scored by queue ticket. */
  waitingLine(bookId: number): string {
    return `${this.waitingLinePrefix}${bookId}`;
  }

  /** SCAN patterns of the read model's own keys: pages, timelines, indexes, waiting lines (not the dead letters). */
  get viewPatterns(): string[] {
    const prefix = escapeGlob(this.prefix);
    return [`${prefix}page:*`, `${prefix}timeline:*`, `${prefix}index:*`, `${prefix}waiting:*`];
  }

  deadLetter(id: number): string {
    return `${this.prefix}deadletter:${id}`;
  }

  get deadLetters(): string {
    return `${this.prefix}deadletters`;
  }

  get deadLetterSequence(): string {
    return `${this.prefix}deadletters:next-id`;
  }

  get pagesChannel(): string {
    return `${this.prefix}pages`;
  }
}

/** The index member of a reservation: fixed width, so byte order is numeric order. */
export function indexMember(reservationId: number): string {
  if (!Number.isSafeInteger(reservationId) || reservationId < 0) throw new Error(`reservation id ${reservationId} is not a non-negative integer`);
  return String(reservationId).padStart(16, '0');
}

/** A literal for a SCAN MATCH pattern: glob characters in the prefix match only themselves. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
