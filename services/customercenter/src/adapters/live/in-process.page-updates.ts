import type { Logger } from '@bstore/platform';
import type { PageUpdates, ReservationPageDetail } from '../../application/ports.ts';

/**
 * PageUpdates within one process (embedded mode, and one replica's own changes). Listeners are
 * called synchronously; one that throws is logged and does not stop the others.
 */
export class InProcessPageUpdates implements PageUpdates {
  readonly #listeners = new Set<(page: ReservationPageDetail) => void>();
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  publish(page: ReservationPageDetail): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(page);
      } catch (err) {
        this.#logger.warn({ err, reservationId: page.reservationId }, 'page listener failed');
      }
    }
  }

  subscribe(listener: (page: ReservationPageDetail) => void): () => void {
    // A wrapper per subscription, so subscribing the same function twice gives two subscriptions.
    const entry = (page: ReservationPageDetail) => listener(page);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }
}
