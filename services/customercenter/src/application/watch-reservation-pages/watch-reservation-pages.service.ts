import { movedThroughWaiting } from '../../domain/reservation-page.ts';
import { canSee, type Viewer } from '../../domain/viewer.ts';
import type { PageUpdates, ReservationPageDetail, ReservationPageStore } from '../ports.ts';

/** At most this many other waiting pages are announced when one page joins or leaves its book's line. */
export const LINE_ANNOUNCEMENT_LIMIT = 100;

/**
 * Live page changes. `announce` is called after a projected change committed and publishes the
 * page as it now stands, and the pages whose place in line it moved; `watch` delivers to one
 * viewer the pages that viewer may see.
 */
export class WatchReservationPages {
  readonly #store: ReservationPageStore;
  readonly #updates: PageUpdates;
  readonly #lineLimit: number;

  constructor(store: ReservationPageStore, updates: PageUpdates, options: { lineLimit?: number } = {}) {
    this.#store = store;
    this.#updates = updates;
    this.#lineLimit = options.lineLimit ?? LINE_ANNOUNCEMENT_LIMIT;
  }

  /**
   * Reads the committed page (with its timeline) and publishes it; returns it (its timeline serves
   * the saga stage timing too), or null if it does not exist. `eventId`: the event just stored;
   * when it moved the page into or out of `bookWaiting`, the waiting pages of the same book behind
   * it (a larger queue ticket: only their place changed) are published too, nearest first, at most
   * `lineLimit` of them, so a patron watching a waiting card sees the place move.
   */
  async announce(reservationId: number, eventId?: string): Promise<ReservationPageDetail | null> {
    const page = await this.#store.get(reservationId);
    if (!page) return null;
    this.#updates.publish(page);
    if (eventId !== undefined && movedThroughWaiting(page.timeline, eventId)) {
      const behind = await this.#store.waitingLine({
        bookId: page.bookId,
        ...(page.queueTicket !== null ? { afterTicket: page.queueTicket } : {}),
        limit: this.#lineLimit + 1,
      });
      for (const other of behind.filter((p) => p.reservationId !== reservationId).slice(0, this.#lineLimit)) this.#updates.publish(other);
    }
    return page;
  }

  /** Returns the function that stops watching. */
  watch(viewer: Viewer, listener: (page: ReservationPageDetail) => void): () => void {
    return this.#updates.subscribe((page) => {
      if (canSee(viewer, page)) listener(page);
    });
  }
}
