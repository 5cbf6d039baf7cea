import { DomainError, type Clock } from '@bstore/platform/kernel';
import type { Notice, NoticeStore } from './ports.ts';

export interface ListNoticesQuery {
  /** Staff name the patron whose notices they read (all patrons' when absent); a patron always reads their own. */
  customerId?: string;
  unreadOnly?: boolean;
  limit: number;
  offset: number;
}

/** Who reads: the caller's identity, as the HTTP adapter has verified it. */
export interface Viewer {
  readonly customerId: string;
  readonly role: 'customer' | 'staff';
}

/** A patron's notices, as the viewer may see them: their own, or any patron's for staff. */
export class ViewNotices {
  readonly #store: NoticeStore;
  readonly #clock: Clock;

  constructor(store: NoticeStore, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  list(query: ListNoticesQuery, viewer: Viewer): Promise<{ items: Notice[]; total: number; unread: number }> {
    const customerId = viewer.role === 'staff' ? query.customerId : viewer.customerId;
    return this.#store.list({ ...(customerId !== undefined ? { customerId } : {}), ...(query.unreadOnly ? { unreadOnly: true } : {}), limit: query.limit, offset: query.offset });
  }

  /** Another patron's notice is reported missing, so that ids reveal nothing. */
  async get(noticeId: number, viewer: Viewer): Promise<Notice> {
    const notice = await this.#store.get(noticeId);
    if (!notice || (viewer.role !== 'staff' && notice.customerId !== viewer.customerId)) {
      throw new DomainError('NOTICE_NOT_FOUND', `notice ${noticeId} does not exist`, { noticeId });
    }
    return notice;
  }

  /** Marks a notice read: only its patron may (staff reading a notice do not mark it read for the patron). */
  async markRead(noticeId: number, viewer: Viewer): Promise<Notice> {
    const notice = await this.#store.get(noticeId);
    if (!notice || notice.customerId !== viewer.customerId) {
      throw new DomainError('NOTICE_NOT_FOUND', `notice ${noticeId} does not exist`, { noticeId });
    }
    return (await this.#store.markRead(noticeId, this.#clock.now())) ?? notice;
  }

  /** Marks all of the caller's unread notices read; how many were. */
  markAllRead(viewer: Viewer): Promise<number> {
    return this.#store.markAllRead(viewer.customerId, this.#clock.now());
  }
}
