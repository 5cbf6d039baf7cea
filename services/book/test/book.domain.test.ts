import { describe, expect, it } from 'vitest';
import { DomainError } from '@bstore/platform/kernel';
import { Book } from '../src/domain/book.ts';
import { Hold, type HoldStatus } from '../src/domain/hold.ts';

const hold = (status: HoldStatus, bookId = 1) => Hold.restore({ reservationId: 7, bookId, customerId: 'alice', status, queueTicket: status === 'waiting' ? 3 : null });

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof DomainError ? err.code : 'not a DomainError';
  }
  return undefined;
}

describe('Hold transitions', () => {
  it('place -> held; release -> released, exactly once', () => {
    const placed = Hold.place({ reservationId: 7, bookId: 1, customerId: 'alice' });
    expect(placed.status).toBe('held');
    const released = placed.release();
    expect(released).toMatchObject({ effect: 'copyFreed' });
    expect(released.hold.status).toBe('released');
    expect(released.hold.release().effect).toBe('nothing');
  });

  it.each<[HoldStatus, HoldStatus, string]>([
    ['held', 'released', 'copyFreed'],
    ['waiting', 'released', 'leftLine'],
    ['loaned', 'loaned', 'nothing'],
    ['released', 'released', 'nothing'],
    ['voided', 'voided', 'nothing'],
  ])('release from %s gives %s (%s)', (from, to, effect) => {
    const { hold: after, effect: actual } = hold(from).release();
    expect([after.status, actual]).toEqual([to, effect]);
  });

  it('waits in line with a ticket, is lent only when held, and given back only when lent', () => {
    const waiting = Hold.place({ reservationId: 7, bookId: 1, customerId: 'alice' }).wait(12);
    expect(waiting.props).toMatchObject({ status: 'waiting', queueTicket: 12 });
    expect(waiting.lend()).toBeNull();
    const lent = hold('held').lend();
    expect(lent?.status).toBe('loaned');
    expect(lent?.lend()).toBeNull();
    // A return that overtook its check-out frees the held copy too.
    expect(hold('held').giveBack()).toMatchObject({ wasHeld: true });
    expect(lent?.giveBack()).toMatchObject({ wasHeld: false });
    expect(lent?.giveBack()?.hold.status).toBe('released');
    expect(lent?.giveBack()?.hold.giveBack()).toBeNull();
    expect(hold('waiting').giveBack()).toBeNull();
  });

  it('a voided hold (release before hold) is never reused', () => {
    expect(Hold.voided({ reservationId: 7, bookId: 1, customerId: 'alice' }).status).toBe('voided');
    expect(codeOf(() => hold('voided').assertReusableFor(1))).toBe('HOLD_RELEASED');
  });

  it.each<[HoldStatus, number, string | undefined]>([
    ['held', 1, undefined],
    ['held', 2, 'HOLD_CONFLICT'],
    ['waiting', 1, undefined],
    ['loaned', 1, undefined],
    ['released', 1, 'HOLD_RELEASED'],
    ['voided', 1, 'HOLD_RELEASED'],
  ])('a retried hold request finds a %s hold of book 1 and asks for book %i: %s', (status, bookId, code) => {
    expect(codeOf(() => hold(status).assertReusableFor(bookId))).toBe(code);
  });
});

describe('Book', () => {
  const book = Book.restore({ bookId: 1, bookName: 'Almond', author: null, isbn: null, quantity: 2, copies: 5 });

  it('creates with copies equal to the quantity; blank names and negative or fractional quantities are refused', () => {
    expect(Book.create({ bookName: '  Almond ', quantity: 3 })).toMatchObject({ bookName: 'Almond', quantity: 3, copies: 3 });
    expect(codeOf(() => Book.create({ bookName: '  ', quantity: 1 }))).toBe('INVALID_BOOK');
    expect(codeOf(() => Book.create({ bookName: 'X', quantity: -1 }))).toBe('INVALID_BOOK');
    expect(codeOf(() => Book.create({ bookName: 'X', quantity: 1.5 }))).toBe('INVALID_BOOK');
  });

  it('adds copies, and withdraws available ones only: held copies stay', () => {
    expect(book.adjustCopies(3).props).toMatchObject({ quantity: 5, copies: 8 });
    expect(book.adjustCopies(-2).props).toMatchObject({ quantity: 0, copies: 3 });
    expect(codeOf(() => book.adjustCopies(-3))).toBe('NOT_ENOUGH_AVAILABLE_COPIES');
    expect(codeOf(() => book.adjustCopies(0))).toBe('INVALID_DELTA');
    expect(codeOf(() => book.adjustCopies(0.5))).toBe('INVALID_DELTA');
    expect(book.props).toMatchObject({ quantity: 2, copies: 5 });
  });
});
