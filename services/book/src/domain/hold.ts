import { DomainError } from '@bstore/platform/kernel';

/**
 * `held`: a copy is taken for the reservation (on its way to, or waiting on, a hold shelf).
 * `waiting`: no copy was free; the reservation waits in its book's line (FIFO by `queueTicket`)
 * until a copy that becomes free is granted to it (it is then `held`).
 * `loaned`: the held copy was checked out to the patron.
 * `released`: the copy went back (to stock or to the next in line), or the reservation left the
 * line; once. `voided`: the release arrived before any hold was taken (the reservation gave up
 * waiting); a late hold request for it must not take a copy.
 */
export type HoldStatus = 'held' | 'waiting' | 'loaned' | 'released' | 'voided';

export interface HoldProps {
  readonly reservationId: number;
  readonly bookId: number;
  readonly customerId: string;
  readonly status: HoldStatus;
  /** The place in the book's line, in the order reservations joined it; null if it never waited. */
  readonly queueTicket: number | null;
}

/** What a release did: gave a copy back, left the line, or nothing (already released, voided, or on loan). */
export type ReleaseEffect = 'copyFreed' | 'leftLine' | 'nothing';

/** The copy of a book taken for one reservation (or its place in line). One per reservation. */
export class Hold {
  readonly props: HoldProps;

  private constructor(props: HoldProps) {
    this.props = props;
  }

  static place(input: { reservationId: number; bookId: number; customerId: string }): Hold {
    return new Hold({ ...input, status: 'held', queueTicket: null });
  }

  static voided(input: { reservationId: number; bookId: number; customerId: string }): Hold {
    return new Hold({ ...input, status: 'voided', queueTicket: null });
  }

  static restore(props: HoldProps): Hold {
    return new Hold(props);
  }

  get status(): HoldStatus {
    return this.props.status;
  }

  /**
   * The hold another request for the same reservation finds: the same book, and still held,
   * waiting or lent (a retry of a request whose answer was lost answers what the first did).
   */
  assertReusableFor(bookId: number): void {
    if (this.props.bookId !== bookId) {
      throw new DomainError('HOLD_CONFLICT', `reservation ${this.props.reservationId} holds book ${this.props.bookId}, not ${bookId}`, {
        reservationId: this.props.reservationId,
      });
    }
    if (this.props.status === 'released' || this.props.status === 'voided') {
      throw new DomainError('HOLD_RELEASED', `the hold of reservation ${this.props.reservationId} was already released`, {
        reservationId: this.props.reservationId,
      });
    }
  }

  /** Joins the book's line with the ticket given: no copy was free. */
  wait(queueTicket: number): Hold {
    if (this.props.status !== 'held') throw new Error(`hold ${this.props.reservationId} cannot wait from ${this.props.status}`);
    return new Hold({ ...this.props, status: 'waiting', queueTicket });
  }

  /**
   * The reservation ended before its copy was lent (cancelled, rejected, not picked up): the hold
   * is released, and the effect says whether a copy became free or only a place in line.
   */
  release(): { hold: Hold; effect: ReleaseEffect } {
    if (this.props.status === 'held') return { hold: new Hold({ ...this.props, status: 'released' }), effect: 'copyFreed' };
    if (this.props.status === 'waiting') return { hold: new Hold({ ...this.props, status: 'released' }), effect: 'leftLine' };
    return { hold: this, effect: 'nothing' };
  }

  /** The held copy was checked out to the patron; null when it is not held (a duplicate, or ended). */
  lend(): Hold | null {
    return this.props.status === 'held' ? new Hold({ ...this.props, status: 'loaned' }) : null;
  }

  /**
   * The lent copy came back. A return may overtake its check-out (events are not delivered in the
   * order they were written, ADR 0005): a copy still `held` comes back too, and the late check-out
   * then finds it released. Null when it is neither (a duplicate). `wasHeld` says whether the
   * patron's count still had it.
   */
  giveBack(): { hold: Hold; wasHeld: boolean } | null {
    if (this.props.status !== 'loaned' && this.props.status !== 'held') return null;
    return { hold: new Hold({ ...this.props, status: 'released' }), wasHeld: this.props.status === 'held' };
  }
}
