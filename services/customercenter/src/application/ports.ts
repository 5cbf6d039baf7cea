import type { ReservationStatus } from '@bstore/contracts';
import type { PageChange, ReservationPage, TimelineEntry } from '../domain/reservation-page.ts';

/** A page with its history, oldest entry first, and its place in line: what the routes and the live stream show. */
export interface ReservationPageDetail extends ReservationPage {
  /** Computed when read, by the rule of `queuePositionOf`: 1 = next in its book's line; null unless bookWaiting. */
  readonly queuePosition: number | null;
  readonly timeline: readonly TimelineEntry[];
}

/** Which part of a book's waiting line to read. */
export interface WaitingLineQuery {
  bookId: number;
  /** Only the pages behind this ticket (a larger queueTicket); all when absent. */
  afterTicket?: number;
  limit: number;
}

export interface PageQuery {
  /** Only this patron's pages. */
  customerId?: string;
  status?: ReservationStatus;
  limit: number;
  offset: number;
}

/**
 * The read model's storage, neutral about what holds it (PGlite/PostgreSQL in embedded mode, Redis
 * in cluster mode). A store given to the projector is bound to the consumer's transaction, so the
 * change commits with the inbox record of its event.
 *
 * @example
 * const page = await store.applyChange(change);          // upsert by the merge rule + one timeline entry
 * const detail = await store.get(page.reservationId);    // with its timeline
 */
export interface ReservationPageStore {
  /**
   * Merges the change into its page by the rule of `mergePages` (creating the page if needed) and
   * records its timeline entry once per event id. Returns the page after the change.
   */
  applyChange(change: PageChange): Promise<ReservationPage>;
  get(reservationId: number): Promise<ReservationPageDetail | null>;
  /** Newest first: updatedAt descending, then reservationId descending. */
  list(query: PageQuery): Promise<{ items: ReservationPageDetail[]; total: number }>;
  /** Oldest first: by occurredAt, then eventId. */
  timeline(reservationId: number): Promise<TimelineEntry[]>;
  /** The book's `bookWaiting` pages in line order (queueTicket ascending), at most `limit`. */
  waitingLine(query: WaitingLineQuery): Promise<ReservationPageDetail[]>;
}

/**
 * Live page changes for whoever watches (the SSE route). Publishers call it only after the change
 * committed. In-process in embedded mode; a replicated service needs a shared channel instead.
 *
 * @example
 * const stop = updates.subscribe((page) => send(page));
 * updates.publish(detail);
 * stop();
 */
export interface PageUpdates {
  publish(page: ReservationPageDetail): void;
  /** Returns the function that ends the subscription. */
  subscribe(listener: (page: ReservationPageDetail) => void): () => void;
}

/** The stages of the saga the read model times, each from the event that opens it to the one that ends it. */
export type SagaStage = 'reserve' | 'cancel';

/**
 * Where the durations of saga stages go (a histogram, `bstore_saga_stage_duration_seconds`).
 *
 * @example
 * timings.observe('reserve', 0.42);
 */
export interface SagaStageTimings {
  observe(stage: SagaStage, seconds: number): void;
}
