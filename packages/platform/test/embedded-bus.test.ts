import { describe, expect, it } from 'vitest';
import { createEnvelope } from '@bstore/contracts';
import { EmbeddedBus } from '../src/messaging/embedded-bus.ts';
import { eventually, testLogger } from '../../../test/support/harness.ts';
import { describeBusContract } from './bus.contract.ts';

const open = () => EmbeddedBus.open({ database: { kind: 'pglite' }, logger: testLogger(), idlePollMs: 100 });

describeBusContract('embedded (PGlite log)', open);

describe('EmbeddedBus', () => {
  it('a consumer created after messages were published receives them all (deliver-all, like JetStream)', async () => {
    const bus = await open();
    try {
      await bus.publish('bstore.book.QuantityChanged', createEnvelope({ type: 'QuantityChanged', source: 't', subject: '1', data: {} }));
      const seen: string[] = [];
      await bus.subscribe({ durableName: 'late', subjects: ['bstore.book.QuantityChanged'] }, async (d) => {
        seen.push(d.envelope.subject);
        return { kind: 'ack' };
      });
      await eventually('the earlier message', async () => (seen.length === 1 ? true : undefined));
    } finally {
      await bus.close();
    }
  });

  it('prunes only messages every consumer has acknowledged', async () => {
    const bus = await open();
    try {
      let acked = 0;
      const sub = await bus.subscribe({ durableName: 'acks', subjects: ['s.acked'] }, async () => {
        acked++;
        return { kind: 'ack' };
      });
      await bus.subscribe({ durableName: 'slow', subjects: ['s.waiting'] }, async () => ({ kind: 'nak', delayMs: 60_000 }));
      await bus.publish('s.acked', createEnvelope({ type: 'QuantityChanged', source: 't', subject: '1', data: {} }));
      await bus.publish('s.waiting', createEnvelope({ type: 'QuantityChanged', source: 't', subject: '2', data: {} }));
      await eventually('the ack', async () => (acked === 1 ? true : undefined));
      await sub.stop();
      expect(await bus.prune(0)).toBe(1);
      expect(await bus.prune(0)).toBe(0);
    } finally {
      await bus.close();
    }
  });
});
