import { afterEach, describe, expect, it } from 'vitest';
import { createEnvelope, type EventEnvelope } from '@bstore/contracts';
import type { Delivery, DeliveryOutcome, MessageBus } from '../src/messaging/bus.ts';
import { eventually } from '../../../test/support/harness.ts';

const SUBJECT = 'bstore.reservation.ReservationRequested';
const OTHER = 'bstore.book.QuantityChanged';
const THIRD = 'bstore.assignment.ReservationAccepted';

function envelope(n: number): EventEnvelope {
  return createEnvelope({ type: 'ReservationRequested', source: 'bstore/test', subject: String(n), data: { n } });
}

/**
 * What every MessageBus adapter must do, whatever the broker behind it: the same suite runs over
 * the embedded bus and over NATS JetStream.
 */
export function describeBusContract(name: string, open: () => Promise<MessageBus>): void {
  describe(`MessageBus contract: ${name}`, () => {
    const opened: MessageBus[] = [];
    const openBus = async () => {
      const bus = await open();
      opened.push(bus);
      return bus;
    };
    afterEach(async () => {
      for (const bus of opened.splice(0)) await bus.close();
    });

    const collect = () => {
      const seen: Delivery[] = [];
      const handler = async (d: Delivery): Promise<DeliveryOutcome> => {
        seen.push(d);
        return { kind: 'ack' };
      };
      return { seen, handler };
    };

    it('delivers every message to every durable consumer whose subjects match, in order', async () => {
      const bus = await openBus();
      const a = collect();
      const b = collect();
      const c = collect();
      await bus.subscribe({ durableName: 'a', subjects: [SUBJECT] }, a.handler);
      await bus.subscribe({ durableName: 'b', subjects: [SUBJECT, OTHER] }, b.handler);
      await bus.subscribe({ durableName: 'c', subjects: [OTHER] }, c.handler);
      for (let i = 1; i <= 5; i++) await bus.publish(SUBJECT, envelope(i));
      await eventually('both consumers to receive five', async () => (a.seen.length === 5 && b.seen.length === 5 ? true : undefined));
      expect(a.seen.map((d) => d.envelope.subject)).toEqual(['1', '2', '3', '4', '5']);
      expect(a.seen.every((d) => d.subject === SUBJECT && d.deliveryCount === 1)).toBe(true);
      expect(c.seen).toHaveLength(0);
    });

    it('deduplicates by message id: publishing the same event twice delivers it once', async () => {
      const bus = await openBus();
      const a = collect();
      await bus.subscribe({ durableName: 'dedup', subjects: [SUBJECT] }, a.handler);
      const e = envelope(1);
      await bus.publish(SUBJECT, e);
      await bus.publish(SUBJECT, e);
      await bus.publish(SUBJECT, envelope(2));
      const second = envelope(3);
      await bus.publish(SUBJECT, second);
      // Deliveries are in order: once the last one arrived, a duplicate would have arrived before it.
      await eventually('the last delivery', async () => (a.seen.some((d) => d.envelope.id === second.id) ? true : undefined));
      expect(a.seen.map((d) => d.envelope.subject)).toEqual(['1', '2', '3']);
      expect(a.seen.filter((d) => d.envelope.id === e.id)).toHaveLength(1);
    });

    it('a durable consumer that is stopped receives, once subscribed again, what was published meanwhile', async () => {
      const bus = await openBus();
      const first = collect();
      const sub = await bus.subscribe({ durableName: 'durable', subjects: [SUBJECT] }, first.handler);
      await bus.publish(SUBJECT, envelope(1));
      await eventually('the first delivery', async () => (first.seen.length === 1 ? true : undefined));
      await sub.stop();
      await bus.publish(SUBJECT, envelope(2));
      await bus.publish(SUBJECT, envelope(3));
      const second = collect();
      await bus.subscribe({ durableName: 'durable', subjects: [SUBJECT] }, second.handler);
      await eventually('the two missed messages', async () => (second.seen.length === 2 ? true : undefined));
      expect(second.seen.map((d) => d.envelope.subject)).toEqual(['2', '3']);
    });

    it('a consumer declared before publishing, and subscribed much later, receives everything', async () => {
      const bus = await openBus();
      await bus.declareConsumer({ durableName: 'declared', subjects: [SUBJECT] });
      await bus.declareConsumer({ durableName: 'declared', subjects: [SUBJECT] });
      await bus.publish(SUBJECT, envelope(1));
      await bus.publish(SUBJECT, envelope(2));
      const later = collect();
      await bus.subscribe({ durableName: 'declared', subjects: [SUBJECT] }, later.handler);
      await eventually('both messages', async () => (later.seen.length === 2 ? true : undefined));
      expect(later.seen.map((d) => d.envelope.subject)).toEqual(['1', '2']);
    });

    it('lag counts what waits for a durable consumer until it is acknowledged; undefined for a consumer the bus does not know', async () => {
      const bus = await openBus();
      expect(await bus.lag('nobody')).toBeUndefined();
      await bus.declareConsumer({ durableName: 'lagging', subjects: [SUBJECT] });
      expect(await bus.lag('lagging')).toBe(0);
      for (let i = 1; i <= 3; i++) await bus.publish(SUBJECT, envelope(i));
      await eventually('a lag of 3', async () => ((await bus.lag('lagging')) === 3 ? true : undefined));
      const later = collect();
      await bus.subscribe({ durableName: 'lagging', subjects: [SUBJECT] }, later.handler);
      await eventually('the lag back to 0', async () => ((await bus.lag('lagging')) === 0 ? true : undefined));
      expect(later.seen.map((d) => d.envelope.subject)).toEqual(['1', '2', '3']);
    });

    it('a nak redelivers after the delay with a higher delivery count; messages behind it are not blocked', async () => {
      const bus = await openBus();
      const seen: Delivery[] = [];
      await bus.subscribe({ durableName: 'retry', subjects: [SUBJECT] }, async (d) => {
        seen.push(d);
        return d.envelope.subject === '1' && d.deliveryCount < 3 ? { kind: 'nak', delayMs: 50 } : { kind: 'ack' };
      });
      await bus.publish(SUBJECT, envelope(1));
      await bus.publish(SUBJECT, envelope(2));
      await eventually('three deliveries of the first message', async () => (seen.filter((d) => d.envelope.subject === '1').length === 3 ? true : undefined));
      expect(seen.filter((d) => d.envelope.subject === '1').map((d) => d.deliveryCount)).toEqual([1, 2, 3]);
      expect(seen.findIndex((d) => d.envelope.subject === '2')).toBeLessThan(seen.findLastIndex((d) => d.envelope.subject === '1'));
    });

    describe('replay', () => {
      const record = () => {
        const seen: Delivery[] = [];
        return { seen, handler: async (d: Delivery) => void seen.push(d) };
      };

      it('resolves with 0 at once on an empty stream', async () => {
        const bus = await openBus();
        const r = record();
        expect(await bus.replay([SUBJECT], r.handler)).toBe(0);
        expect(r.seen).toEqual([]);
      });

      it('delivers every stored message on the subjects, in stream order, and counts them', async () => {
        const bus = await openBus();
        await bus.publish(SUBJECT, envelope(1));
        await bus.publish(OTHER, envelope(2));
        await bus.publish(SUBJECT, envelope(3));
        await bus.publish(THIRD, envelope(4));
        await bus.publish(OTHER, envelope(5));
        const r = record();
        expect(await bus.replay([SUBJECT, OTHER], r.handler)).toBe(4);
        expect(r.seen.map((d) => [d.subject, d.envelope.subject])).toEqual([
          [SUBJECT, '1'],
          [OTHER, '2'],
          [SUBJECT, '3'],
          [OTHER, '5'],
        ]);
        expect(r.seen.every((d) => d.deliveryCount === 1)).toBe(true);
      });

      it('stops at the last message stored when it began: what is published meanwhile is not replayed', async () => {
        const bus = await openBus();
        await bus.publish(SUBJECT, envelope(1));
        await bus.publish(SUBJECT, envelope(2));
        const seen: string[] = [];
        const count = await bus.replay([SUBJECT], async (d) => {
          seen.push(d.envelope.subject);
          if (d.envelope.subject === '1') await bus.publish(SUBJECT, envelope(3));
        });
        expect(count).toBe(2);
        expect(seen).toEqual(['1', '2']);
      });

      it('stops when the last message stored is on a subject it skips', async () => {
        const bus = await openBus();
        await bus.publish(SUBJECT, envelope(1));
        await bus.publish(OTHER, envelope(2));
        const r = record();
        expect(await bus.replay([SUBJECT], r.handler)).toBe(1);
        expect(await bus.replay([THIRD], r.handler)).toBe(0);
      });

      it('leaves durable consumers alone, and can run again with the same result', async () => {
        const bus = await openBus();
        await bus.declareConsumer({ durableName: 'bystander', subjects: [SUBJECT] });
        for (let i = 1; i <= 3; i++) await bus.publish(SUBJECT, envelope(i));
        const first = record();
        const second = record();
        expect(await bus.replay([SUBJECT], first.handler)).toBe(3);
        expect(await bus.replay([SUBJECT], second.handler)).toBe(3);
        expect(second.seen.map((d) => d.envelope.id)).toEqual(first.seen.map((d) => d.envelope.id));
        const later = collect();
        await bus.subscribe({ durableName: 'bystander', subjects: [SUBJECT] }, later.handler);
        await eventually('the three messages', async () => (later.seen.length === 3 ? true : undefined));
        expect(later.seen.map((d) => d.envelope.subject)).toEqual(['1', '2', '3']);
      });

      it('ends with the error of a handler that throws', async () => {
        const bus = await openBus();
        await bus.publish(SUBJECT, envelope(1));
        await bus.publish(SUBJECT, envelope(2));
        const seen: string[] = [];
        await expect(
          bus.replay([SUBJECT], async (d) => {
            seen.push(d.envelope.subject);
            throw new Error('projection failed');
          }),
        ).rejects.toThrow(/projection failed/);
        expect(seen).toEqual(['1']);
      });
    });

    it('a handler that throws does not lose the message', async () => {
      const bus = await openBus();
      let calls = 0;
      await bus.subscribe({ durableName: 'throws', subjects: [SUBJECT] }, async () => {
        calls++;
        if (calls === 1) throw new Error('boom');
        return { kind: 'ack' };
      });
      await bus.publish(SUBJECT, envelope(1));
      await eventually('a redelivery after the throw', async () => (calls >= 2 ? true : undefined), 10_000);
    });
  });
}
