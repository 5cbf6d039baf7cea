import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchReport, PointReport, ShapeReport } from '../bench/bench.ts';
import { startClusterSystem, type BenchSystem } from '../bench/systems.ts';
import { as, asStaff } from './support/auth.ts';
import { startPrivateNats, type PrivateNats } from './support/nats.ts';
import { startPrivateRedis, type PrivateRedis } from './support/redis.ts';

/**
 * `npm run bench` end to end, shortened (`--quick` with tiny durations and catalogues): the real
 * command in a process of its own, on the real servers, in cluster and embedded mode. Checked: it
 * exits 0, writes its JSON report and SVG chart, its last line has the documented format and the
 * report's own numbers, every count in the report adds up, the load is the library's cycle
 * (reserve, cancel or check out and in) with no 409, and each shape's stock is whole again after
 * its last point. No rate or latency is asserted
 * (this machine is shared: no timing thresholds in tests).
 */
const ROOT = fileURLToPath(new URL('../', import.meta.url));

async function bench(args: string[]): Promise<{ output: string; report: BenchReport; svg: string }> {
  const out = await mkdtemp(join(tmpdir(), 'bstore-bench-test-'));
  try {
    const child = spawn(process.execPath, ['--conditions=source', 'bench/cli.ts', '--quick', '--duration', '2', '--floor-duration', '1', '--warmup', '0', '--lead-in', '1', '--customers', '20', '--spread-books', '300', '--out', out, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const files = await readdir(out);
    const json = files.find((f) => f.endsWith('.json'));
    const svgFile = files.find((f) => f.endsWith('.svg'));
    if (code !== 0 || !json || !svgFile) throw new Error(`npm run bench exited ${code} with ${files.join(', ') || 'no files'}:\n${output.slice(-4000)}`);
    return { output, report: JSON.parse(await readFile(join(out, json), 'utf8')) as BenchReport, svg: await readFile(join(out, svgFile), 'utf8') };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/** The counts of one load point agree with each other. */
function expectConsistent(point: PointReport, processes: string[]) {
  const { load } = point;
  expect(load.sagas.completed).toBe(load.sagas.acknowledged);
  expect(load.sagas.acknowledged).toBe(load.reserve.byStatus['201'] ?? 0);
  expect(load.sagas.latencyMs.count).toBe(load.sagas.completed);
  for (const answers of [load, load.leadIn, load.closing].flatMap((p) => [p.reserve, p.cancel, p.lookup, p.checkOut, p.checkIn])) {
    expect(answers.latencyMs.count).toBe(answers.sent - (answers.byStatus.lost ?? 0));
    expect(Object.values(answers.byStatus).reduce((a, b) => a + b, 0)).toBe(answers.sent);
  }
  // Nothing but 201, 202 and 200: no 409 ACTIVE_RESERVATION_EXISTS (one active reservation per patron per book), none out of
  // stock, no 500. Reservation's 503 with Retry-After is a legitimate answer on a loaded machine (book's call timed out, or
  // its circuit is open) and is allowed; any other answer is an error.
  const legitimateUnderLoad = /^(lead-in |closing )?POST 503 (BOOK_SERVICE_UNAVAILABLE|BOOK_CIRCUIT_OPEN)$/;
  expect(Object.keys(point.errors).filter((key) => !legitimateUnderLoad.test(key))).toEqual([]);
  // Each check-out was looked up at the desk first; a look-up that found it not yet bookReserved in reservation came back later.
  expect(load.checkOut.sent).toBe(load.lookup.sent - load.deferred);
  expect(load.closing.checkOut.sent).toBe(load.closing.lookup.sent - load.closing.deferred);
  expect(load.leadIn.durationMs).toBe(1000);
  // Closing time closed every cycle the point opened.
  expect(load.openAtEnd).toEqual({ placed: 0, reserved: 0, loaned: 0 });
  // A short point on a busy machine may complete no saga in its measured window (staff's due work
  // goes first, and the window is 2 s): sagas are required per shape (expectCycleAndStock), not per point.
  expect(point.cpu.map((c) => c.name)).toEqual(processes);
  for (const c of point.cpu) {
    expect(c.cpuMs).not.toBeNull();
    if (load.sagas.completed > 0) expect(c.msPerSaga).toBeCloseTo((c.cpuMs ?? 0) / load.sagas.completed, 6);
    else expect(c.msPerSaga).toBeNull();
  }
  if (point.mode.kind === 'open') expect(point.mode.perSecond).toBeGreaterThan(0);
}

/**
 * The library's cycle ran (staff checked copies out and in), and the stock came back: after the
 * last point every copy is available again, and on the hot book no patron had more than one
 * reservation of it open at once.
 */
function expectCycleAndStock(shape: ShapeReport, patrons: number) {
  const sum = (pick: (p: PointReport) => number) => shape.points.reduce((a, p) => a + pick(p), 0);
  const phases = (p: PointReport) => [p.load, p.load.leadIn, p.load.closing];
  // Sagas completed (in the measured windows, or at least acknowledged in a lead-in).
  expect(sum((p) => p.load.sagas.completed + (p.load.leadIn.reserve.byStatus['201'] ?? 0))).toBeGreaterThan(0);
  expect(sum((p) => phases(p).reduce((n, phase) => n + (phase.checkOut.byStatus['200'] ?? 0), 0))).toBeGreaterThan(0);
  expect(sum((p) => phases(p).reduce((n, phase) => n + (phase.checkIn.byStatus['200'] ?? 0), 0))).toBeGreaterThan(0);
  const { stock } = shape;
  expect(stock.availableBefore).toBe(stock.copies);
  expect(stock.settled).toBe(true);
  expect({ held: stock.heldAtEnd, loaned: stock.loanedAtEnd }).toEqual({ held: 0, loaned: 0 });
  expect(stock.availableAfter).toBe(stock.copies);
  expect(stock.peakInUse).toBe(Math.max(...shape.points.map((p) => p.load.peakOpen)));
  expect(stock.peakInUse).toBeGreaterThan(0);
  if (shape.name === 'hot') expect(stock.peakInUse).toBeLessThanOrEqual(patrons);
}

function expectFinalLine(output: string, report: BenchReport) {
  const last = output.trimEnd().split('\n').at(-1) ?? '';
  const match = /^sagas_per_s=([\d.]+) floor_holds_per_s=(\d+) ratio=([\d.]+) p99_saga_ms=([\d.]+)$/.exec(last);
  expect(match, last).not.toBeNull();
  const hot = report.shapes.find((s) => s.name === 'hot');
  const max = hot?.points.find((p) => p.mode.kind === 'closed');
  const half = hot?.points.find((p) => p.fractionOfMax === 0.5);
  expect(Number(match?.[1])).toBeCloseTo(max?.load.sagas.perSecond ?? -1, 1);
  expect(Number(match?.[2])).toBe(Math.round(report.floors.holdHot.perSecond));
  expect(Number(match?.[3])).toBeCloseTo((max?.load.sagas.perSecond ?? 0) / report.floors.holdHot.perSecond, 3);
  expect(Number(match?.[4])).toBeCloseTo(half?.load.sagas.latencyMs.p99 ?? -1, 1);
}

function expectFloors(report: BenchReport) {
  const { holdHot, holdSpread, publish } = report.floors;
  for (const hold of [holdHot, holdSpread]) {
    expect(hold.errors).toBe(0);
    expect(hold.operations).toBeGreaterThan(0);
    // Every counted hold committed its three writes.
    expect(hold.check).toEqual({ copiesTaken: hold.operations, holds: hold.operations, outboxRows: hold.operations });
  }
  expect(holdSpread.name).toBe('hold (300 books)');
  expect(publish.check.stored).toBe(publish.operations);
}

describe('npm run bench', () => {
  it('cluster mode: floors, both catalogue shapes, growth with stored reservations, the report, the chart and the final line', async () => {
    const { output, report, svg } = await bench([]);
    expect(report.mode).toBe('cluster');
    expectFloors(report);
    const processes = ['book', 'assignment', 'customercenter', 'notification', 'reservation', 'gateway', 'postgres', 'nats-server', 'redis-server'];
    expect(report.shapes.map((s) => [s.name, s.books])).toEqual([
      ['hot', 1],
      ['spread', 300],
    ]);
    for (const shape of report.shapes) {
      expect(shape.points.map((p) => p.mode.kind)).toEqual(['open', 'closed']);
      for (const point of shape.points) expectConsistent(point, processes);
      expectCycleAndStock(shape, 20);
    }
    expect(report.growth?.map((g) => [g.books, g.storedReservations])).toEqual([
      [1_000, 0],
      [10_000, 0],
      [10_000, 10_000],
    ]);
    for (const step of report.growth ?? []) expectConsistent(step.point, processes);
    expectFinalLine(output, report);
    expect(output).toContain('| hold (1 hot book) |');
    expect(output).toMatch(/^stock: 100,000 copies, 100,000 available before, 100,000 after \(at most \d+ in use at once; 0 held for reservations, 0 on loan at the end\)$/m);
    expect(output).toContain('growth (closed loop):');
    expect(svg.match(/<polyline/g)).toHaveLength(4);
  }, 300_000);

  it('embedded mode: one process counted, no growth', async () => {
    const { output, report } = await bench(['--embedded']);
    expect(report.mode).toBe('embedded');
    expectFloors(report);
    for (const shape of report.shapes) {
      for (const point of shape.points) expectConsistent(point, ['embedded (all six)']);
      expectCycleAndStock(shape, 20);
    }
    expect(report.growth).toBeNull();
    expect(output).toContain('growth: measured in cluster mode only');
    expectFinalLine(output, report);
  }, 300_000);
});

describe('stored history (the growth step)', () => {
  let nats: PrivateNats;
  let redis: PrivateRedis;
  let system: BenchSystem;

  beforeAll(async () => {
    nats = await startPrivateNats();
    redis = await startPrivateRedis();
    system = await startClusterSystem(nats, redis);
  });

  afterAll(async () => {
    await system?.stop();
    await redis?.stop();
    await nats?.stop();
  });

  it('is written where each service keeps it and reads back through the gateway like any reservation', async () => {
    const books = await system.addBooks(5, 10);
    const alice = await as('history-alice');
    // One real saga first: the stored rows continue after it, with inbox rows for its consumers.
    const placed = await fetch(`${system.gateway}/reservations`, { method: 'POST', headers: { ...alice, 'content-type': 'application/json' }, body: JSON.stringify({ bookId: books[0] }) });
    expect(placed.status).toBe(201);
    const { reservationId } = (await placed.json()) as { reservationId: number };
    await expect.poll(async () => ((await (await fetch(`${system.gateway}/reservations/${reservationId}`, { headers: alice })).json()) as { status: string }).status, { timeout: 20_000 }).toBe('bookReserved');

    await system.storeHistory?.(1_000, ['history-alice', 'history-bob'], books);

    // The patron's list (customercenter's read model in Redis) has her 500 stored reservations and her real one.
    const list = await fetch(`${system.gateway}/reservationPages?limit=5`, { headers: alice });
    expect(list.status).toBe(200);
    const body = (await list.json()) as { total: number; items: { reservationId: number; status: string; customerId?: string }[] };
    expect(body.total).toBe(501);
    expect(body.items[0]?.reservationId).toBe(reservationId); // newest first
    const total = async (query: string, headers: { authorization: string }) => ((await (await fetch(`${system.gateway}/reservationPages?${query}&limit=1`, { headers })).json()) as { total: number }).total;
    expect((await total('status=bookCanceled', alice)) + (await total('status=bookOutOfStock', alice))).toBe(500);
    // Nine in ten were cancelled after their saga, one in ten found no copy.
    const staff = await asStaff();
    expect(await total('status=bookCanceled', staff)).toBe(900);
    expect(await total('status=bookOutOfStock', staff)).toBe(100);
    // The reservation service has them too, and new reservations continue after them.
    const next = await fetch(`${system.gateway}/reservations`, { method: 'POST', headers: { ...alice, 'content-type': 'application/json' }, body: JSON.stringify({ bookId: books[1] }) });
    expect(next.status).toBe(201);
    expect(((await next.json()) as { reservationId: number }).reservationId).toBe(reservationId + 1_001);
    const mine = await fetch(`${system.gateway}/reservations?limit=1`, { headers: alice });
    expect(mine.status).toBe(200);
    expect(((await mine.json()) as { total: number }).total).toBe(502);
  });
});
