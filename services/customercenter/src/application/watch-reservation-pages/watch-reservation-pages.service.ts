import { canSee, type Viewer } from '../../domain/viewer.ts';
import type { PageUpdates, ReservationPageDetail, ReservationPageStore } from '../ports.ts';

/**
 * Live page changes. `announce` is called after a projected change committed and publishes the
 * page as it now stands; `watch` delivers to one viewer the pages that viewer may see.
 */
export class WatchReservationPages {
  readonly #store: ReservationPageStore;
  readonly #updates: PageUpdates;

  constructor(store: ReservationPageStore, updates: PageUpdates) {
    this.#store = store;
    this.#updates = updates;
  }

  /**
   * Reads the committed page (with its timeline) and publishes it; returns it (its timeline serves
   * the saga stage timing too), or null if it does not exist.
   */
  async announce(reservationId: number): Promise<ReservationPageDetail | null> {
    const page = await this.#store.get(reservationId);
    if (!page) return null;
    this.#updates.publish(page);
    return page;
  }

  /** Returns the function that stops watching. */
  watch(viewer: Viewer, listener: (page: ReservationPageDetail) => void): () => void {
    return this.#updates.subscribe((page) => {
      if (canSee(viewer, page)) listener(page);
    });
  }
}
