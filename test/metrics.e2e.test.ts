import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope, sourceOf, subjectOf, type EventEnvelope } from '@bstore/contracts';
import type { EmbeddedBus } from '@bstore/platform';
import { createCustomerCenterService, type CustomerCenterService } from '@bstore/customercenter';
import { testAuth } from './support/auth.ts';
import { BusDriver } from './support/bus-driver.ts';
import { eventually, memoryBus, testLogger } from './support/harness.ts';
import { scrape, samplesOf, valueOf, type Sample } from './support/metrics.ts';
import { client, startTestSystem, type TestSystem } from './support/system.ts';

/**
 * The series an operator's dashboard reads, on the whole embedded system after real work: the saga
 * stages timed by the read model, dead letters counted at scrape time, the consumers' lag and
 * redeliveries, and the process metrics on every service.
 */
const CONSUMING = ['book', 'reservation', 'assignment', 'customercenter'] as const;
const STAGE = 'bstore_saga_stage_duration_seconds';

let system: TestSystem;
let alice: ReturnType<typeof client>;

beforeAll(async () => {
  system = await startTestSystem();
  alice = client(system.urls.gateway, 'alice');
});

afterAll(async () => {
  await system?.stop();
});

const customercenter = () => scrape(system.customercenter.app);
const stageCount = (samples: Sample[], stage: string) => valueOf(samples, `${STAGE}_count`, { stage }) ?? 0;
const stageSum = (samples: Sample[], stage: string) => valueOf(samples, `${STAGE}_sum`, { stage }) ?? 0;

async function pageBecomes(id: number, status: string): Promise<void> {
  await eventually(`page ${id} to become ${status}`, async () => ((await alice.page(id)).body.status === status ? true : undefined));
}

/** Waits until the customer center's count of `stage` is `count`. */
async function stageCountBecomes(stage: string, count: number): Promise<Sample[]> {
  return eventually(`${stage} observed ${count} times`, async () => {
    const samples = await customercenter();
    return stageCount(samples, stage) === count ? samples : undefined;
  });
}

describe('saga stage durations (customercenter)', () => {
  it('a reservation is timed once when it is reserved, once more when it is canceled; a duplicate is never timed', async () => {
    const start = await customercenter();
    const reserves = stageCount(start, 'reserve');
    const cancels = stageCount(start, 'cancel');

    const { body: book } = await alice.createBook('Metrics Saga Book', 2);
    const reserved = await alice.reserve(book.bookId);
    expect(reserved.status).toBe(201);
    const id = reserved.body.reservationId;
    await pageBecomes(id, 'bookReserved');
    const timed = await stageCountBecomes('reserve', reserves + 1);
    // Buckets from 5 ms to 30 s.
    const buckets = samplesOf(timed, `${STAGE}_bucket`, { stage: 'reserve', service: 'customercenter' }).map((s) => s.labels.le);
    expect(buckets[0]).toBe('0.005');
    expect(buckets.slice(-2)).toEqual(['30', '+Inf']);

    // The Accepted event delivered again on the bus (what assignment published, read from its outbox):
    // a duplicate, not a second observation. Its consumers acknowledged the first delivery first, so
    // that the bus takes it again and the customer center's inbox is what recognises it.
    const accepted = (await system.databases.assignment.selectFrom('outbox').select('envelope').where('type', '=', 'ReservationAccepted').execute())
      .map((r) => r.envelope)
      .find((e) => (e.data as { reservationId: number }).reservationId === id);
    expect(accepted).toBeDefined();
    for (const name of ['reservation', 'customercenter'] as const) await new BusDriver(system.bus, system[name]).settled();
    expect(await new BusDriver(system.bus, system.customercenter).deliver(accepted!)).toBe('duplicate');
    expect(stageCount(await customercenter(), 'reserve')).toBe(reserves + 1);

    expect((await alice.cancel(id)).status).toBe(202);
    await pageBecomes(id, 'bookCanceled');
    const canceled = await stageCountBecomes('cancel', cancels + 1);
    // Neither cancel event completes the reserve stage again.
    expect(stageCount(canceled, 'reserve')).toBe(reserves + 1);
  });

  /*
   * Made-up events of a reservation no service has, so on a customer center of its own (its own
   * bus and read model): on the system's bus, assignment would answer the ReservationRequested with
   * a real ReservationAccepted (timed once more), and reservation would retry the made-up
   * ReservationAccepted of a reservation it does not have.
   */
  describe('out of order', () => {
    let bus: EmbeddedBus;
    let alone: CustomerCenterService;
    let pages: BusDriver;

    beforeAll(async () => {
      const logger = testLogger();
      bus = await memoryBus(logger);
      alone = await createCustomerCenterService({ database: { kind: 'pglite' }, bus, logger, auth: await testAuth() });
      pages = await BusDriver.start(bus, alone);
    });

    afterAll(async () => {
      await alone?.stop();
      await bus?.close();
    });

    it('the stage is timed when the second of its two events arrives, by their event times', async () => {
      const reservationId = 990_001;
      const requestedAt = new Date(Date.now() - 60_000);
      const common = { bookId: 1, customerId: 'alice' };
      const requested = createEnvelope({
        type: 'ReservationRequested',
        source: sourceOf('reservation'),
        subject: String(reservationId),
        time: requestedAt,
        data: { reservationId, ...common, bookName: 'Late', preferredLibraryId: null, status: 'bookReserveReq' as const },
      });
      const accepted = createEnvelope({
        type: 'ReservationAccepted',
        source: sourceOf('assignment'),
        subject: String(reservationId),
        time: new Date(requestedAt.getTime() + 2500),
        data: { reservationId, ...common, assignmentId: 1, libraryId: 1, libraryName: 'Central Library', status: 'bookReserved' as const },
      });
      const metrics = () => scrape(alone.app);
      const before = await metrics();

      // The end of the stage first: nothing to time yet.
      expect(await pages.deliver(accepted as EventEnvelope)).toBe('handled');
      expect(stageCount(await metrics(), 'reserve')).toBe(stageCount(before, 'reserve'));
      // Its start arrives: timed now, 2.5 s, whatever the order of arrival.
      expect(await pages.deliver(requested as EventEnvelope)).toBe('handled');
      const after = await metrics();
      expect(stageCount(after, 'reserve')).toBe(stageCount(before, 'reserve') + 1);
      expect(stageSum(after, 'reserve') - stageSum(before, 'reserve')).toBeCloseTo(2.5, 6);
      // Either of them again (redelivered by the bus): a duplicate, not timed.
      expect(await pages.deliver(requested as EventEnvelope)).toBe('duplicate');
      expect(await pages.deliver(accepted as EventEnvelope)).toBe('duplicate');
      expect(stageCount(await metrics(), 'reserve')).toBe(stageCount(before, 'reserve') + 1);
    });
  });
});

describe('scrape-time series of the consuming services', () => {
  it('bstore_dead_letters{service,state}: a malformed event parked by its consumers counts as pending', async () => {
    const pending = async (name: (typeof CONSUMING)[number]) => valueOf(await scrape(system[name].app), 'bstore_dead_letters', { service: name, state: 'pending' });
    for (const name of CONSUMING) {
      const samples = await scrape(system[name].app);
      expect(valueOf(samples, 'bstore_dead_letters', { service: name, state: 'pending' })).toBe(0);
      expect(valueOf(samples, 'bstore_dead_letters', { service: name, state: 'replayed' })).toBe(0);
    }
    // ReservationRequested is read by assignment and customercenter; both park it.
    const malformed = createEnvelope({ type: 'ReservationRequested', source: sourceOf('reservation'), subject: '1', data: { reservationId: 'one' } });
    await system.bus.publish(subjectOf('ReservationRequested'), malformed);
    for (const name of ['assignment', 'customercenter'] as const) {
      await eventually(`${name} to count a pending dead letter`, async () => ((await pending(name)) === 1 ? true : undefined));
    }
    expect(await pending('book')).toBe(0);
    expect(await pending('reservation')).toBe(0);
  });

  it('every consumer reports its lag (back to 0 once idle) and its redeliveries; no pool series on PGlite; process metrics on every service', async () => {
    for (const name of CONSUMING) {
      const samples = await eventually(`${name}'s consumer to be idle`, async () => {
        const s = await scrape(system[name].app);
        return valueOf(s, 'bstore_consumer_lag', { consumer: name, service: name }) === 0 ? s : undefined;
      });
      expect(valueOf(samples, 'bstore_consumer_redeliveries_total', { consumer: name, service: name })).toBeGreaterThanOrEqual(0);
      expect(samplesOf(samples, 'bstore_db_pool_connections')).toEqual([]);
    }
    for (const name of [...CONSUMING, 'gateway'] as const) {
      const samples = await scrape(system[name].app);
      expect(samplesOf(samples, 'nodejs_eventloop_lag_seconds', { service: name })).toHaveLength(1);
      expect(samplesOf(samples, 'process_resident_memory_bytes', { service: name })).toHaveLength(1);
    }
  });
});
