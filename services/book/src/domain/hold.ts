import { DomainError } from '@bstore/platform/kernel';

/**
 * `held`: a copy is taken for the reservation. `released`: the copy went back to stock (once).
 * `voided`: the release arrived before any hold was taken (the reservation gave up waiting); a
 * late hold request for it must not take a copy.
 */
export type HoldStatus = 'held' | 'released' | 'voided';

export interface HoldProps {
  readonly reservationId: number;
  readonly bookId: number;
  readonly customerId: string;
  readonly status: HoldStatus;
}

/** The copy of a book taken for one reservation. One per reservation, released at most once. */
export class Hold {
  readonly props: HoldProps;

  private constructor(props: HoldProps) {
    this.props = props;
  }

  static place(input: { reservationId: number; bookId: number; customerId: string }): Hold {
    return new Hold({ ...input, status: 'held' });
  }

  static voided(input: { reservationId: number; bookId: number; customerId: string }): Hold {
    return new Hold({ ...input, status: 'voided' });
  }

  static restore(props: HoldProps): Hold {
    return new Hold(props);
  }

  get status(): HoldStatus {
    return this.props.status;
  }

  /** The hold another request for the same reservation finds: the same book, still held. */
  assertReusableFor(bookId: number): void {
    if (this.props.bookId !== bookId) {
      throw new DomainError('HOLD_CONFLICT', `reservation ${this.props.reservationId} holds book ${this.props.bookId}, not ${bookId}`, {
        reservationId: this.props.reservationId,
      });
    }
    if (this.props.status !== 'held') {
      throw new DomainError('HOLD_RELEASED', `the hold of reservation ${this.props.reservationId} was already released`, {
        reservationId: this.props.reservationId,
      });
    }
  }

  /** Returns the released hold, or null when there is nothing to give back (already released or voided). */
  release(): Hold | null {
    if (this.props.status !== 'held') return null;
    return new Hold({ ...this.props, status: 'released' });
  }
}
