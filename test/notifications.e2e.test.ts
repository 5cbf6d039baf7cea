import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './support/harness.ts';
import { client, startTestSystem, type TestSystem } from './support/system.ts';

/**
 * The notification service in the whole embedded system, through the gateway (issue 20): a
 * reservation's life reaches the patron as notices, and only the patron (or staff) reads them.
 */
let system: TestSystem;

interface Notices {
  items: { noticeId: number; reservationId: number; kind: string; libraryName: string | null; deadline: string | null; readAt: string | null }[];
  total: number;
  unread: number;
}

beforeAll(async () => {
  system = await startTestSystem();
});

afterAll(async () => {
  await system?.stop();
});

describe('notifications through the gateway', () => {
  it('a reservation ready for pickup, then cancelled: the patron reads both notices, marks them read; another patron sees none of them', async () => {
    const ann = client(system.urls.gateway, 'notified-ann');
    const other = client(system.urls.gateway, 'notified-ben');
    const staff = client(system.urls.gateway, 'librarian', 'staff');
    const { body: book } = await ann.createBook('A Notice Worth Reading', 1);
    const placed = await ann.reserve(book.bookId);
    expect(placed.status).toBe(201);
    const id = placed.body.reservationId;

    const ready = await eventually('the ready-for-pickup notice', async () => {
      const res = await ann.call<Notices>('GET', '/notifications');
      return res.body.items.find((n) => n.reservationId === id && n.kind === 'readyForPickup');
    });
    const reservation = (await ann.reservation(id)).body;
    expect(ready).toMatchObject({ libraryName: reservation.libraryName, readAt: null });
    expect(ready.deadline).not.toBeNull();

    expect((await ann.cancel(id)).status).toBe(202);
    const mine = await eventually('the cancelled notice', async () => {
      const res = await ann.call<Notices>('GET', '/notifications');
      return res.body.items.some((n) => n.reservationId === id && n.kind === 'cancelled') ? res.body : undefined;
    });
    expect(mine.items.filter((n) => n.reservationId === id).map((n) => n.kind)).toEqual(['cancelled', 'readyForPickup']);
    expect(mine.unread).toBe(2);

    const theirs = await other.call<Notices>('GET', '/notifications');
    expect(theirs.status).toBe(200);
    expect(theirs.body.items.filter((n) => n.reservationId === id)).toEqual([]);
    const peek = await other.call<{ code: string }>('GET', `/notifications/${ready.noticeId}`);
    expect(peek.status).toBe(404);
    expect(peek.body.code).toBe('NOTICE_NOT_FOUND');
    const byStaff = await staff.call<Notices>('GET', '/notifications?customerId=notified-ann');
    expect(byStaff.body.items.map((n) => n.noticeId)).toContain(ready.noticeId);

    const marked = await ann.call<{ marked: number }>('POST', '/notifications/read');
    expect(marked).toMatchObject({ status: 200, body: { marked: 2 } });
    expect((await ann.call<Notices>('GET', '/notifications')).body.unread).toBe(0);
  });
});
