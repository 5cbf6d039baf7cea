import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope } from '@bstore/contracts';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, jetstreamManager } from '@nats-io/jetstream';
import { NatsJetStreamBus, coveringSubject } from '../src/messaging/nats-bus.ts';
import { eventually, testLogger } from '../../../test/support/harness.ts';
import { startPrivateNats, type PrivateNats } from '../../../test/support/nats.ts';
import { describeBusContract } from './bus.contract.ts';

let nats: PrivateNats;

beforeAll(async () => {
  nats = await startPrivateNats();
});

afterAll(async () => {
  await nats?.stop();
});

/** Each contract test starts from an empty stream, as each embedded one starts from an empty log. */
async function freshBus(): Promise<NatsJetStreamBus> {
  const nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete('BSTORE').catch(() => false);
  await nc.close();
  return NatsJetStreamBus.connect({ servers: nats.url, logger: testLogger(), ackWaitMs: 5000 });
}

describeBusContract('NATS JetStream (nats-server 2.9)', freshBus);

describe('coveringSubject: the one filter a consumer gets on nats-server 2.9', () => {
  it.each([
    [['bstore.reservation.ReservationRequested'], 'bstore.reservation.ReservationRequested'],
    [['bstore.reservation.ReservationRequested', 'bstore.reservation.ReservationCanceled'], 'bstore.reservation.>'],
    [['bstore.reservation.ReservationRejected', 'bstore.assignment.ReservationCanceled'], 'bstore.>'],
    [['bstore.a.b.X', 'bstore.a.b.Y', 'bstore.a.c.Z'], 'bstore.a.>'],
    [['bstore.a.b', 'bstore.a.b.c'], 'bstore.a.>'],
    [['bstore.a', 'bstore.a.b'], 'bstore.>'],
    [['other.a.X', 'other.a.Y'], 'bstore.>'],
    [[], 'bstore.>'],
  ])('%j -> %s', (subjects, filter) => {
    expect(coveringSubject(subjects)).toBe(filter);
  });
});

describe('NatsJetStreamBus', () => {
  it('on 2.9 a consumer of one producer\'s events reads only that producer\'s subjects; one made by an older version (the whole stream) is narrowed, keeping its place', async () => {
    const bus = await freshBus();
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.consumers.add('BSTORE', { durable_name: 'older', ack_policy: AckPolicy.Explicit, filter_subject: 'bstore.>' });
      const wanted = ['bstore.reservation.ReservationRequested', 'bstore.reservation.ReservationCanceled'];
      const envelope = (subject: string) => createEnvelope({ type: 'ReservationRequested', source: 't', subject, data: {} });
      await bus.publish(wanted[0]!, envelope('first'));
      const seen: string[] = [];
      await bus.subscribe({ durableName: 'older', subjects: wanted }, async (d) => {
        seen.push(d.envelope.subject);
        return { kind: 'ack' };
      });
      expect((await jsm.consumers.info('BSTORE', 'older')).config.filter_subject).toBe('bstore.reservation.>');
      await bus.publish('bstore.book.QuantityChanged', envelope('not wanted'));
      await bus.publish(wanted[1]!, envelope('second'));
      await eventually('both wanted messages', async () => (seen.length === 2 ? true : undefined));
      expect(seen).toEqual(['first', 'second']);
      await eventually('nothing left for the consumer', async () => ((await bus.lag('older')) === 0 ? true : undefined));
    } finally {
      await nc.close();
      await bus.close();
    }
  }, 60_000);

  it('recovers when its consumer is deleted under it: the consumer is recreated and delivery goes on', async () => {
    const bus = await freshBus();
    const nc = await connect({ servers: nats.url });
    try {
      const seen: string[] = [];
      const subject = 'bstore.reservation.ReservationRequested';
      await bus.subscribe({ durableName: 'survivor', subjects: [subject] }, async (d) => {
        seen.push(d.envelope.subject);
        return { kind: 'ack' };
      });
      await bus.publish(subject, createEnvelope({ type: 'ReservationRequested', source: 't', subject: 'before', data: {} }));
      await eventually('the first message', async () => (seen.includes('before') ? true : undefined));
      const jsm = await jetstreamManager(nc);
      await jsm.consumers.delete('BSTORE', 'survivor');
      await bus.publish(subject, createEnvelope({ type: 'ReservationRequested', source: 't', subject: 'after', data: {} }));
      await eventually('the message published after the deletion', async () => (seen.includes('after') ? true : undefined), 30_000);
      expect(seen).toContain('after');
    } finally {
      await nc.close();
      await bus.close();
    }
  }, 60_000);

  it('a replay leaves no consumer behind on the stream', async () => {
    const bus = await freshBus();
    const nc = await connect({ servers: nats.url });
    try {
      const subject = 'bstore.reservation.ReservationRequested';
      await bus.publish(subject, createEnvelope({ type: 'ReservationRequested', source: 't', subject: '1', data: {} }));
      expect(await bus.replay([subject], async () => {})).toBe(1);
      const jsm = await jetstreamManager(nc);
      expect(await jsm.consumers.list('BSTORE').next()).toEqual([]);
    } finally {
      await nc.close();
      await bus.close();
    }
  });

  it('publishing the same event id twice stores it once in the stream', async () => {
    const bus = await freshBus();
    const nc = await connect({ servers: nats.url });
    try {
      const e = createEnvelope({ type: 'ReservationRequested', source: 't', subject: '1', data: {} });
      await bus.publish('bstore.reservation.ReservationRequested', e);
      await bus.publish('bstore.reservation.ReservationRequested', e);
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info('BSTORE');
      expect(info.state.messages).toBe(1);
      expect(info.config.subjects).toEqual(['bstore.>']);
    } finally {
      await nc.close();
      await bus.close();
    }
  });

  it('creates the stream with one replica unless told otherwise, sets the replicas it is given, and a process without the setting never lowers them', async () => {
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    const name = `REPLICAS_${Date.now()}`;
    // The streams all take bstore.>: the other tests' stream goes first (freshBus makes it again).
    await jsm.streams.delete('BSTORE').catch(() => undefined);
    try {
      const first = await NatsJetStreamBus.connect({ servers: nats.url, logger: testLogger(), streamName: name });
      await first.close();
      expect((await jsm.streams.info(name)).config.num_replicas).toBe(1);
      const again = await NatsJetStreamBus.connect({ servers: nats.url, logger: testLogger(), streamName: name, streamReplicas: 1 });
      await again.close();
      expect((await jsm.streams.info(name)).config.num_replicas).toBe(1);
      // Raised to 3 (a standalone server records it; a cluster places three copies) ...
      const three = await NatsJetStreamBus.connect({ servers: nats.url, logger: testLogger(), streamName: name, streamReplicas: 3 });
      await three.close();
      expect((await jsm.streams.info(name)).config.num_replicas).toBe(3);
      // ... and a process started without the setting (a debug run, an old manifest) leaves them at 3.
      const unset = await NatsJetStreamBus.connect({ servers: nats.url, logger: testLogger(), streamName: name });
      await unset.close();
      expect((await jsm.streams.info(name)).config.num_replicas).toBe(3);
    } finally {
      await jsm.streams.delete(name).catch(() => undefined);
      await nc.close();
    }
  });
});
