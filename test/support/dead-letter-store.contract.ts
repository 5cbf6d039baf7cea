import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeadLetterInput, DeadLetterStore } from '@bstore/platform';

/** A store under test and how letters get into it (its inbox's `park`, as the consumer does). */
export interface DeadLetterStoreUnderTest {
  store: DeadLetterStore;
  park(letter: DeadLetterInput): Promise<void>;
  close(): Promise<void>;
}

function letter(n: number, extra: Partial<DeadLetterInput> = {}): DeadLetterInput {
  return {
    consumer: 'consumer-under-test',
    eventId: `event-${n}`,
    eventType: 'ReservationRequested',
    subject: `bstore.reservation.ReservationRequested`,
    envelope: { specversion: '1.0', id: `event-${n}`, type: 'ReservationRequested', data: { reservationId: n, nested: { list: [1, 'two', null] } } },
    error: `error number ${n}`,
    deliveries: n,
    ...extra,
  };
}

/**
 * What every DeadLetterStore must do, whatever holds the letters (SQL on PGlite or PostgreSQL,
 * Redis): list newest first with paging and the pending filter, get one, and mark it replayed
 * exactly once even when two replays race. Each run starts from an empty store.
 */
export function describeDeadLetterStoreContract(name: string, open: () => Promise<DeadLetterStoreUnderTest>): void {
  describe(`DeadLetterStore contract: ${name}`, () => {
    let subject: DeadLetterStoreUnderTest;
    let ids: number[] = [];

    beforeAll(async () => {
      subject = await open();
    });

    afterAll(async () => {
      await subject?.close();
    });

    it('an empty store lists nothing', async () => {
      expect(await subject.store.list({ limit: 10, offset: 0 })).toEqual({ items: [], total: 0 });
      expect(await subject.store.list({ limit: 10, offset: 0, pending: true })).toEqual({ items: [], total: 0 });
      expect(await subject.store.get(1)).toBeNull();
      expect(await subject.store.counts()).toEqual({ pending: 0, replayed: 0 });
    });

    it('lists newest first, with every field as parked and a total', async () => {
      const before = Date.now();
      for (let n = 1; n <= 5; n++) await subject.park(letter(n));
      const all = await subject.store.list({ limit: 10, offset: 0 });
      expect(all.total).toBe(5);
      expect(all.items.map((l) => l.eventId)).toEqual(['event-5', 'event-4', 'event-3', 'event-2', 'event-1']);
      ids = all.items.map((l) => l.id);
      expect([...ids].sort((a, b) => b - a)).toEqual(ids);
      const newest = all.items[0]!;
      expect(newest).toMatchObject({ ...letter(5), replayedAt: null });
      expect(newest.envelope).toEqual(letter(5).envelope);
      expect(newest.createdAt).toBeInstanceOf(Date);
      expect(newest.createdAt.getTime()).toBeGreaterThanOrEqual(before - 5000);
      expect(newest.createdAt.getTime()).toBeLessThanOrEqual(Date.now() + 5000);
    });

    it('pages with limit and offset', async () => {
      const page = await subject.store.list({ limit: 2, offset: 1 });
      expect(page.total).toBe(5);
      expect(page.items.map((l) => l.eventId)).toEqual(['event-4', 'event-3']);
      expect(await subject.store.list({ limit: 10, offset: 5 })).toEqual({ items: [], total: 5 });
    });

    it('gets one letter by id, and null for an id it does not have', async () => {
      const id = ids[2]!;
      expect(await subject.store.get(id)).toMatchObject({ id, eventId: 'event-3', error: 'error number 3', deliveries: 3, replayedAt: null });
      expect(await subject.store.get(Math.max(...ids) + 1000)).toBeNull();
    });

    it('marks a letter replayed once: the second mark and an unknown id report false', async () => {
      const id = ids[3]!; // event-2
      const at = new Date(Date.now() - 1000);
      expect(await subject.store.markReplayed(id, at)).toBe(true);
      expect(await subject.store.markReplayed(id, new Date())).toBe(false);
      expect(await subject.store.markReplayed(Math.max(...ids) + 1000, new Date())).toBe(false);
      const marked = await subject.store.get(id);
      expect(marked?.replayedAt?.getTime()).toBe(at.getTime());
      expect(marked?.eventId).toBe('event-2');
      // What the bstore_dead_letters gauge reads: five parked, one of them replayed.
      expect(await subject.store.counts()).toEqual({ pending: 4, replayed: 1 });
    });

    it('the pending filter leaves out the replayed letters, in order, with its own total and paging', async () => {
      const pending = await subject.store.list({ limit: 10, offset: 0, pending: true });
      expect(pending.total).toBe(4);
      expect(pending.items.map((l) => l.eventId)).toEqual(['event-5', 'event-4', 'event-3', 'event-1']);
      const page = await subject.store.list({ limit: 2, offset: 2, pending: true });
      expect(page).toMatchObject({ total: 4 });
      expect(page.items.map((l) => l.eventId)).toEqual(['event-3', 'event-1']);
      // The unfiltered list still shows the replayed one, with its time.
      const all = await subject.store.list({ limit: 10, offset: 0 });
      expect(all.items.find((l) => l.eventId === 'event-2')?.replayedAt).toBeInstanceOf(Date);
    });

    it('of two replays racing on one letter, exactly one marks it', async () => {
      const id = ids[0]!; // event-5
      const results = await Promise.all([subject.store.markReplayed(id, new Date()), subject.store.markReplayed(id, new Date())]);
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await subject.store.counts()).toEqual({ pending: 3, replayed: 2 });
    });

    it('keeps an unparseable message as the bus wrapped it', async () => {
      await subject.park(letter(6, { eventId: 'nats-77', eventType: 'unparseable', envelope: { id: 'nats-77', type: 'unparseable', data: 'this is not an event' } }));
      const [newest] = (await subject.store.list({ limit: 1, offset: 0 })).items;
      expect(newest).toMatchObject({ eventId: 'nats-77', eventType: 'unparseable', envelope: { data: 'this is not an event' } });
    });
  });
}
