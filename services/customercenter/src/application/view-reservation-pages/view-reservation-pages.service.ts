import { DomainError } from '@bstore/platform/kernel';
import type { ReservationStatus } from '@bstore/contracts';
import { canSee, type Viewer } from '../../domain/viewer.ts';
import type { ReservationPageDetail, ReservationPageStore } from '../ports.ts';

export interface ListPagesQuery {
  /** Staff only narrow by it; a customer always sees their own pages. */
  customerId?: string;
  status?: ReservationStatus;
  limit: number;
  offset: number;
}

/** Read side of the customer center: one page, or a page of pages, as the viewer may see them. */
export class ViewReservationPages {
  readonly #store: ReservationPageStore;

  constructor(store: ReservationPageStore) {
    this.#store = store;
  }

  /** Another customer's page is reported as missing, so that ids reveal nothing. */
  async get(reservationId: number, viewer: Viewer): Promise<ReservationPageDetail> {
    const page = await this.#store.get(reservationId);
    if (!page || !canSee(viewer, page)) {
      throw new DomainError('RESERVATION_PAGE_NOT_FOUND', `reservation ${reservationId} has no page`, { reservationId });
    }
    return page;
  }

  async list(query: ListPagesQuery, viewer: Viewer): Promise<{ items: ReservationPageDetail[]; total: number }> {
    if (viewer.role === 'customer' && query.customerId !== undefined && query.customerId !== viewer.customerId) {
      return { items: [], total: 0 };
    }
    const customerId = viewer.role === 'customer' ? viewer.customerId : query.customerId;
    return this.#store.list({
      ...(customerId !== undefined ? { customerId } : {}),
      ...(query.status !== undefined ? { status: query.status } : {}),
      limit: query.limit,
      offset: query.offset,
    });
  }
}
