import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope, type EventEnvelope } from '@bstore/contracts';
import { openDatabase, type Database } from '../src/db/database.ts';
import { migrateToLatest } from '../src/db/migrations.ts';
import type { ConsumerSpec, Delivery, DeliveryOutcome, MessageBus, Subscription } from '../src/messaging/bus.ts';
import { EmbeddedBus } from '../src/messaging/embedded-bus.ts';
import { KyselyOutbox, OutboxRelay } from '../src/messaging/outbox.ts';
import { KyselyInbox } from '../src/messaging/inbox.ts';
import { KyselyTransactionRunner } from '../src/db/transactions.ts';
import type { MessagingTables } from '../src/messaging/schema.ts';
import { eventually, testLogger } from '../../../test/support/harness.ts';

/** A real bus that refuses to publish while `down` is set: a broker outage. */
class FlakyBus implements MessageBus {
  down = false;
  readonly inner: MessageBus;
  constructor(inner: MessageBus) {
    this.inner = inner;
  }
  async publish(subject: string, envelope: EventEnvelope): Promise<void> {
    if (this.down) throw new Error('broker unreachable');
    await this.inner.publish(subject, envelope);
  }
  subscribe(spec: ConsumerSpec, handler: (d: Delivery) => Promise<DeliveryOutcome>): Promise<Subscription> {
    return this.inner.subscribe(spec, handler);
  }
  declareConsumer(spec: ConsumerSpec): Promise<void> {
    return this.inner.declareConsumer(spec);
  }
  replay(subjects: readonly string[], handler: (d: Delivery) => Promise<void>): Promise<number> {
    return this.inner.replay(subjects, handler);
  }
  lag(durableName: string): Promise<number | undefined> {
    return this.inner.lag(durableName);
  }
  healthy(): Promise<boolean> {
    return this.inner.healthy();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

let database: Database<MessagingTables>;
let db: Kysely<MessagingTables>;
let bus: FlakyBus;
let received: string[];

beforeAll(async () => {
  database = await openDatabase<MessagingTables>({ kind: 'pglite' });
  db = database.db;
  await migrateToLatest(db as Kysely<unknown>, {});
  bus = new FlakyBus(await EmbeddedBus.open({ database: { kind: 'pglite' }, logger: testLogger(), idlePollMs: 100 }));
  received = [];
  await bus.subscribe({ durableName: 'probe', subjects: ['bstore.reservation.ReservationRequested'] }, async (d) => {
    received.push(d.envelope.id);
    return { kind: 'ack' };
  });
});

afterAll(async () => {
  await bus.close();
  await database.close();
});

const event = () =>
  createEnvelope({
    type: 'ReservationRequested',
    source: 'bstore/test',
    subject: '1',
    data: { reservationId: 1, bookId: 1, bookName: 'B', customerId: 'alice', preferredLibraryId: null, status: 'bookReserveReq' as const },
  });

async function write(events: EventEnvelope[], commit = true): Promise<void> {
  await db
    .transaction()
    .execute(async (trx) => {
      const outbox = new KyselyOutbox(trx);
      for (const e of events) await outbox.add(e);
      if (!commit) throw new Error('rollback');
    })
    .catch((err: unknown) => {
      if (commit) throw err;
    });
}

const unsent = async () => Number((await db.selectFrom('outbox').select((eb) => eb.fn.countAll<number>().as('n')).where('published_at', 'is', null).executeTakeFirstOrThrow()).n);

describe('OutboxRelay', () => {
  it('publishes committed rows in order and marks them sent; rolled-back rows never leave', async () => {
    const relay = new OutboxRelay({ db, bus, logger: testLogger(), batchSize: 10 });
    const committed = [event(), event(), event()];
    await write(committed);
    await write([event()], false);
    expect(await relay.publishBatch()).toBe(3);
    expect(await unsent()).toBe(0);
    expect(await relay.publishBatch()).toBe(0);
    const ids = committed.map((e) => e.id);
    await eventually('the three events at the consumer', async () => (received.filter((id) => ids.includes(id)).length === 3 ? true : undefined));
    expect(received.filter((id) => ids.includes(id))).toEqual(ids);
  });

  it('refuses an event whose data does not match its schema, so the change rolls back', async () => {
    const bad = createEnvelope({ type: 'ReservationRequested', source: 'bstore/test', subject: '1', data: { reservationId: 'one' } });
    const before = await unsent();
    await expect(write([bad])).rejects.toThrow(/ReservationRequested data is invalid/);
    expect(await unsent()).toBe(before);
  });

  it('keeps rows while the broker is down and sends them when it is back', async () => {
    const relay = new OutboxRelay({ db, bus, logger: testLogger() });
    await write([event(), event()]);
    bus.down = true;
    expect(await relay.publishBatch()).toBe(0);
    expect(await unsent()).toBe(2);
    const failed = await db.selectFrom('outbox').select(['attempts', 'last_error']).where('published_at', 'is', null).orderBy('created_at').executeTakeFirstOrThrow();
    expect(failed).toMatchObject({ attempts: 1, last_error: 'broker unreachable' });
    bus.down = false;
    expect(await relay.publishBatch()).toBe(2);
    expect(await unsent()).toBe(0);
  });

  it('does not skip a row that commits after later rows were sent (no "id > last seen" cursor)', async () => {
    const relay = new OutboxRelay({ db, bus, logger: testLogger() });
    const late = event(); // created first: the lower id and time
    const early = event();
    await write([early]);
    expect(await relay.publishBatch()).toBe(1);
    await write([late]);
    expect(await relay.publishBatch()).toBe(1);
    const rows = await db.selectFrom('outbox').select(['id', 'published_at']).where('id', 'in', [late.id, early.id]).execute();
    expect(rows.every((r) => r.published_at !== null)).toBe(true);
  });
});

describe('waking the relay', () => {
  it('a transaction runner calls afterCommit after a commit that added outbox rows, not after one that added none or rolled back', async () => {
    let kicks = 0;
    const tx = new KyselyTransactionRunner(db, (trx) => ({ trx, outbox: new KyselyOutbox(trx) }), () => kicks++);
    await tx.run(async ({ trx }) => {
      await trx.selectFrom('outbox').select('id').execute();
    });
    expect(kicks).toBe(0);
    await expect(
      tx.run(async ({ outbox }) => {
        await outbox.add(event());
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    expect(kicks).toBe(0);
    await tx.run(async ({ outbox }) => {
      await outbox.add(event());
    });
    expect(kicks).toBe(1);
  });

  it('an inbox calls afterOutboxCommit after an event whose effect added outbox rows, not for one that added none nor for a duplicate', async () => {
    let kicks = 0;
    const inbox = new KyselyInbox(db, { afterOutboxCommit: () => kicks++ });
    const handled = event();
    expect(await inbox.runOnce('waker', handled, async () => {})).toBe(true);
    expect(kicks).toBe(0);
    const writing = event();
    expect(await inbox.runOnce('waker', writing, async (trx) => new KyselyOutbox(trx).add(event()))).toBe(true);
    expect(kicks).toBe(1);
    expect(await inbox.runOnce('waker', writing, async (trx) => new KyselyOutbox(trx).add(event()))).toBe(false);
    expect(kicks).toBe(1);
  });
});
