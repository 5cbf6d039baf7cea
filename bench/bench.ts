import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { as, asStaff } from '../test/support/auth.ts';
import { busyPercent, machineCpu, processCpuMs } from '../test/support/cpu.ts';
import { startPrivateNats, type PrivateNats } from '../test/support/nats.ts';
import { ensurePostgres, POSTGRES_URL } from '../test/support/postgres.ts';
import { startPrivateRedis, type PrivateRedis } from '../test/support/redis.ts';
import { measureHoldFloor, measurePublishFloor, type HoldFloorResult, type PublishFloorResult } from './floor.ts';
import { Patrons, runLoad, type LoadMode, type LoadResult } from './load.ts';
import { startClusterSystem, startEmbeddedSystem, type BenchProcess, type BenchSystem } from './systems.ts';

/**
 * `npm run bench` (issue 9): the floors first, then the system through the gateway for two
 * catalogue shapes (open loop at rising arrival rates, and the closed-loop maximum), then growth.
 * The load is the library's cycle (load.ts): reserve, then cancel or check out and back in, so the
 * copies come back and a shape's stock, read before and after, does not drain.
 * Everything here measures; `cli.ts` prints and writes what this returns. bench/README.md says
 * how to read it.
 */

export interface BenchOptions {
  mode: 'cluster' | 'embedded';
  /** Concurrent clients of the floors and workers of the closed loop. */
  concurrency: number;
  /** Seconds of each floor. */
  floorSeconds: number;
  /** Seconds of each load point. */
  pointSeconds: number;
  /** Seconds of unrecorded load before a shape's points (JIT, pools, caches). */
  warmupSeconds: number;
  /** Seconds of unrecorded load before each point, at its own rate: the library's cycle under way when measuring starts. */
  leadInSeconds: number;
  /** The open loop's arrival rates, as fractions of the closed-loop maximum's operations per second, rising. */
  openFractions: number[];
  /** Patrons of the load. */
  customers: number;
  /** Books of the spread catalogue shape (10,000 in the issue's benchmark). */
  spreadBooks: number;
  /** Share of completed reservations their patron cancels; staff check the others out, then back in. */
  cancelShare: number;
  /** The growth steps' sizes; null: no growth (embedded mode always skips it). */
  growth: { smallCatalogue: number; largeCatalogue: number; stored: number } | null;
  log: (line: string) => void;
}

export interface ProcessCpu {
  name: string;
  /** bstore's own process, or a server it uses. */
  role: BenchProcess['role'];
  /** CPU time during the point, ms (user + system); null when unknown. */
  cpuMs: number | null;
  /** `cpuMs` per completed saga; null when unknown or no saga completed. */
  msPerSaga: number | null;
}

export interface PointReport {
  label: string;
  /** Closed loop (its workers), or open loop (the operations a second it offered). */
  mode: LoadMode;
  /** The offered rate as a fraction of the closed-loop maximum's (open loop), or null (closed loop). */
  fractionOfMax: number | null;
  load: LoadResult;
  /**
   * Requests answered other than expected (POST 201, cancel 202, the desk's look-up GET, check-out
   * and check-in 200), by request, status and problem code: `POST 409 ACTIVE_RESERVATION_EXISTS`,
   * `PATCH bookLoaned 500`, `POST lost` (no answer); the lead-in's and closing time's prefixed
   * `lead-in` and `closing`. Refusals are not errors: see `refused`.
   */
  errors: Record<string, number>;
  /**
   * Requests refused with 503 application/problem+json and Retry-After, with a code the request may
   * be refused with on a loaded system (load.ts's REFUSALS: `POST 503 BOOK_CIRCUIT_OPEN`,
   * `POST 503 BOOK_SERVICE_UNAVAILABLE`), keyed as `errors` are: the system shedding load, reported
   * apart. Any other 503 is an error.
   */
  refused: Record<string, number>;
  cpu: ProcessCpu[];
  /** The load generator's own CPU (this process), ms. */
  generatorCpuMs: number;
  machineBusyPct: number | null;
}

export interface ShapeReport {
  name: 'hot' | 'spread';
  description: string;
  books: number;
  /** The hold floor this shape reads against (one hot book, or many). */
  floorHoldsPerSecond: number;
  points: PointReport[];
  stock: StockReport;
}

/** A shape's copies, available before its first load and after its last. */
export interface StockReport {
  /** Copies owned, all books of the shape. */
  copies: number;
  availableBefore: number;
  /** Once book had applied the last cancels and check-ins (or STOCK_SETTLE_MS had passed). */
  availableAfter: number;
  /** The most copies the patrons had at once (reservations open, each holding one) during any load of the shape. */
  peakInUse: number;
  /** What the patrons still had open at the end (after the last closing time: normally none), each holding a copy: reservations (placed or awaiting pickup) and loans. */
  heldAtEnd: number;
  loanedAtEnd: number;
  /** availableAfter = copies - heldAtEnd - loanedAtEnd: every other copy taken came back. */
  settled: boolean;
}

export interface GrowthStep {
  label: string;
  books: number;
  storedReservations: number;
  point: PointReport;
}

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  mode: 'cluster' | 'embedded';
  options: Omit<BenchOptions, 'log'>;
  machine: { cpus: number; node: string; commit: string | null };
  floors: { holdHot: HoldFloorResult; holdSpread: HoldFloorResult; publish: PublishFloorResult };
  shapes: ShapeReport[];
  growth: GrowthStep[] | null;
}

const HOT_QUANTITY = 100_000;
const SPREAD_QUANTITY = 1_000;
/** How long a shape's stock is given, after its last load, to show the last cancels and check-ins. */
const STOCK_SETTLE_MS = 30_000;

/** Answers that are not the expected one (`unexpected`) or refusals (`refused`), counted by request, status and problem code (the unmeasured phases' prefixed). */
function answersOf(load: LoadResult, which: 'unexpected' | 'refused'): Record<string, number> {
  const errors: Record<string, number> = {};
  for (const [prefix, phase] of [
    ['', load],
    ['lead-in ', load.leadIn],
    ['closing ', load.closing],
  ] as const) {
    const requests = [
      ['POST', phase.reserve],
      ['PATCH bookCancel', phase.cancel],
      ['GET', phase.lookup],
      ['PATCH bookLoaned', phase.checkOut],
      ['PATCH bookReturned', phase.checkIn],
    ] as const;
    for (const [request, answers] of requests) for (const [key, n] of Object.entries(answers[which])) errors[`${prefix}${request} ${key}`] = n;
  }
  return errors;
}

/**
 * The stock after a shape's loads: waits (up to STOCK_SETTLE_MS) until book's available copies are
 * the copies less those the patrons still hold or have on loan, and reports what it read.
 */
async function stockAfter(system: BenchSystem, books: readonly number[], patrons: Patrons, before: { copies: number; available: number }, peakInUse: number): Promise<StockReport> {
  const open = patrons.counts();
  const heldAtEnd = open.placed + open.reserved;
  const expected = before.copies - heldAtEnd - open.loaned;
  const deadline = performance.now() + STOCK_SETTLE_MS;
  let now = await system.stock(books);
  while (now.available !== expected && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    now = await system.stock(books);
  }
  return { copies: now.copies, availableBefore: before.available, availableAfter: now.available, peakInUse, heldAtEnd, loanedAtEnd: open.loaned, settled: now.available === expected };
}

/**
 * Runs one load while reading the CPU time of the system's processes, this process and the
 * machine: from the start of its measured load (after its lead-in) until its sagas have settled
 * (before closing time), the work its sagas and the desk's cycle around them cost.
 */
async function measurePoint(
  system: BenchSystem,
  label: string,
  mode: LoadMode,
  fractionOfMax: number | null,
  load: (mode: LoadMode, onWindow: (edge: 'start' | 'end') => void) => Promise<LoadResult>,
): Promise<PointReport> {
  const processes = system.processes();
  const read = () => ({ processes: processes.map((p) => p.pids.map((pid) => processCpuMs(pid))), machine: machineCpu(), generator: process.cpuUsage() });
  let before = read();
  let after: ReturnType<typeof read> | undefined;
  const result = await load(mode, (edge) => {
    if (edge === 'start') before = read();
    else after = read();
  });
  const end = after ?? read();
  const generatorCpuMs = (end.generator.user + end.generator.system - before.generator.user - before.generator.system) / 1000;
  const machineBusyPct = busyPercent(before.machine, end.machine);
  const cpu = processes.map((p, i) => {
    let total = 0;
    let known = false;
    p.pids.forEach((pid, j) => {
      const start = before.processes[i]?.[j];
      const stop = end.processes[i]?.[j];
      if (start !== undefined && stop !== undefined) {
        total += stop - start;
        known = true;
      }
    });
    const cpuMs = known ? total : null;
    return { name: p.name, role: p.role, cpuMs, msPerSaga: cpuMs !== null && result.sagas.completed > 0 ? cpuMs / result.sagas.completed : null };
  });
  return { label, mode, fractionOfMax, load: result, errors: answersOf(result, 'unexpected'), refused: answersOf(result, 'refused'), cpu, generatorCpuMs, machineBusyPct };
}

export function describePoint(p: PointReport): string {
  const r = p.load;
  const errors = Object.values(p.errors).reduce((a, b) => a + b, 0);
  const refused = Object.values(p.refused).reduce((a, b) => a + b, 0);
  return `${p.label}: ${r.sagas.perSecond.toFixed(1)} sagas/s, POST p99 ${r.reserve.latencyMs.p99.toFixed(1)} ms, saga p99 ${r.sagas.latencyMs.p99.toFixed(1)} ms, ${r.sagas.completed}/${r.sagas.acknowledged} sagas completed, ${r.cancel.sent} cancels, ${r.checkOut.sent} check-outs${r.deferred > 0 ? ` (${r.deferred} deferred: not yet bookReserved in reservation)` : ''}, ${r.checkIn.sent} check-ins, at most ${r.peakOpen} copies in use; closing time ${(r.closing.durationMs / 1000).toFixed(1)} s${refused > 0 ? `, ${refused} refused (503 with Retry-After)` : ''}${errors > 0 ? `, ${errors} unexpected answers` : ''}`;
}

/** `stock: 100,000 copies, 100,000 available before, 100,000 after (at most 212 in use at once; 0 held for reservations, 0 on loan at the end)`. */
export function stockText(s: StockReport): string {
  const n = (v: number) => v.toLocaleString('en');
  return `stock: ${n(s.copies)} copies, ${n(s.availableBefore)} available before, ${n(s.availableAfter)} after (at most ${n(s.peakInUse)} in use at once; ${n(s.heldAtEnd)} held for reservations, ${n(s.loanedAtEnd)} on loan at the end${s.settled ? '' : `; expected ${n(s.copies - s.heldAtEnd - s.loanedAtEnd)} available`})`;
}

/**
 * The open loop's arrival rate for a fraction of the closed-loop maximum: that fraction of its
 * completed sagas a second, times the operations of one saga's cycle (a reserve, a pickup, and a
 * check-in unless cancelled). Not the maximum's own operations a second: there reservation falls
 * behind, so pickups wait (deferred look-ups, the rest in closing time) and its mix is richer in
 * reserves than the cycle's.
 */
function openLoopRate(max: LoadResult, fraction: number, cancelShare: number): number {
  return Math.max(1, Math.round(max.sagas.perSecond * fraction * (2 + (1 - cancelShare))));
}

export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const { log } = options;
  const startedAt = new Date().toISOString();
  await ensurePostgres();
  // The run's own NATS (the publish floor and the cluster's bus) and Redis (the cluster's read model).
  const nats: PrivateNats = await startPrivateNats();
  let redis: PrivateRedis | undefined;
  try {
    const cache = await startPrivateRedis();
    redis = cache;
    const floorMs = options.floorSeconds * 1000;
    log(`floors: ${options.concurrency} clients, ${options.floorSeconds} s each`);
    const holdHot = await measureHoldFloor({ postgresUrl: POSTGRES_URL, concurrency: options.concurrency, durationMs: floorMs, books: 1 });
    log(`  ${holdHot.name}: ${holdHot.perSecond.toFixed(0)}/s`);
    const holdSpread = await measureHoldFloor({ postgresUrl: POSTGRES_URL, concurrency: options.concurrency, durationMs: floorMs, books: options.spreadBooks });
    log(`  ${holdSpread.name}: ${holdSpread.perSecond.toFixed(0)}/s`);
    const publish = await measurePublishFloor({ natsUrl: nats.url, concurrency: options.concurrency, durationMs: floorMs });
    log(`  ${publish.name}: ${publish.perSecond.toFixed(0)}/s`);

    const customerIds = Array.from({ length: options.customers }, (_, i) => `bench-${i + 1}`);
    const customers = await Promise.all(customerIds.map((id) => as(id)));
    const staff = await asStaff();
    const start = (): Promise<BenchSystem> => (options.mode === 'cluster' ? startClusterSystem(nats, cache) : startEmbeddedSystem());
    // One Patrons per system: a load carries to the next on it whatever its closing time could not close.
    // Each measured point has its lead-in first, so that it starts with the cycle's mix.
    const loader = (system: BenchSystem, patrons: Patrons, pickBook: () => number, seconds: number, leadInSeconds = options.leadInSeconds) => (mode: LoadMode, onWindow?: (edge: 'start' | 'end') => void) =>
      runLoad({ gateway: system.gateway, patrons, staff, pickBook, cancelShare: options.cancelShare, mode, durationMs: seconds * 1000, leadInMs: leadInSeconds * 1000, settleTimeoutMs: 60_000, ...(onWindow ? { onWindow } : {}) });
    const closed: LoadMode = { kind: 'closed', workers: options.concurrency };
    /** Unrecorded closed-loop load: JIT, pools and caches warm before a measurement. */
    const warmUp = async (system: BenchSystem, patrons: Patrons, pickBook: () => number) => {
      if (options.warmupSeconds > 0) await loader(system, patrons, pickBook, options.warmupSeconds, 0)(closed);
    };

    const shapes: ShapeReport[] = [];
    for (const shape of ['hot', 'spread'] as const) {
      const system = await start();
      try {
        const books = shape === 'hot' ? await system.addBooks(1, HOT_QUANTITY) : await system.addBooks(options.spreadBooks, SPREAD_QUANTITY);
        const pickBook = () => books[Math.floor(Math.random() * books.length)] as number;
        const description = shape === 'hot' ? `one hot book of ${HOT_QUANTITY.toLocaleString('en')} copies` : `${options.spreadBooks.toLocaleString('en')} books of ${SPREAD_QUANTITY.toLocaleString('en')} copies`;
        const patrons = new Patrons(customers);
        const before = await system.stock(books);
        log(`${options.mode}, ${description}: warming up ${options.warmupSeconds} s`);
        await warmUp(system, patrons, pickBook);
        const load = loader(system, patrons, pickBook, options.pointSeconds);
        const max = await measurePoint(system, `closed loop, ${options.concurrency} workers`, closed, null, load);
        log(`  ${describePoint(max)}`);
        const points: PointReport[] = [];
        for (const fraction of options.openFractions) {
          const perSecond = openLoopRate(max.load, fraction, options.cancelShare);
          const point = await measurePoint(system, `open loop, ${Math.round(fraction * 100)} % of max`, { kind: 'open', perSecond }, fraction, load);
          log(`  ${describePoint(point)}`);
          points.push(point);
        }
        points.push(max);
        const stock = await stockAfter(system, books, patrons, before, Math.max(...points.map((p) => p.load.peakOpen)));
        log(`  ${stockText(stock)}`);
        shapes.push({ name: shape, description, books: books.length, floorHoldsPerSecond: shape === 'hot' ? holdHot.perSecond : holdSpread.perSecond, points, stock });
      } finally {
        await system.stop();
      }
    }

    let growth: GrowthStep[] | null = null;
    if (options.growth && options.mode === 'cluster') {
      const sizes = options.growth;
      const steps: GrowthStep[] = [];
      growth = steps;
      const system = await start();
      try {
        const books = await system.addBooks(sizes.smallCatalogue, SPREAD_QUANTITY);
        const pickBook = () => books[Math.floor(Math.random() * books.length)] as number;
        const patrons = new Patrons(customers);
        const load = loader(system, patrons, pickBook, options.pointSeconds);
        await warmUp(system, patrons, pickBook);
        const step = async (label: string, stored: number) => {
          const point = await measurePoint(system, label, closed, null, load);
          log(`  growth, ${describePoint(point)}`);
          steps.push({ label, books: books.length, storedReservations: stored, point });
        };
        log(`growth: ${sizes.smallCatalogue.toLocaleString('en')} books`);
        await step(`${sizes.smallCatalogue.toLocaleString('en')} books`, 0);
        log(`growth: adding books up to ${sizes.largeCatalogue.toLocaleString('en')}`);
        books.push(...(await system.addBooks(sizes.largeCatalogue - sizes.smallCatalogue, SPREAD_QUANTITY)));
        await step(`${sizes.largeCatalogue.toLocaleString('en')} books`, 0);
        log(`growth: storing ${sizes.stored.toLocaleString('en')} finished reservations`);
        const seeded = performance.now();
        await system.storeHistory?.(sizes.stored, customerIds, books);
        log(`  stored in ${((performance.now() - seeded) / 1000).toFixed(0)} s`);
        await warmUp(system, patrons, pickBook);
        await step(`${sizes.largeCatalogue.toLocaleString('en')} books, ${sizes.stored.toLocaleString('en')} stored reservations`, sizes.stored);
      } finally {
        await system.stop();
      }
    }

    return {
      startedAt,
      finishedAt: new Date().toISOString(),
      mode: options.mode,
      options: withoutLog(options),
      machine: { cpus: availableParallelism(), node: process.version, commit: await gitCommit() },
      floors: { holdHot, holdSpread, publish },
      shapes,
      growth,
    };
  } finally {
    await redis?.stop();
    await nats.stop();
  }
}

/** The commit measured (with `+dirty` when the working tree has changes), or null outside git. */
async function gitCommit(): Promise<string | null> {
  const run = (args: string[]) =>
    new Promise<string | null>((resolve) => execFile('git', args, (err, out) => resolve(err ? null : out.trim())));
  const head = await run(['rev-parse', '--short', 'HEAD']);
  if (head === null) return null;
  const dirty = await run(['status', '--porcelain', '--untracked-files=no']);
  return dirty ? `${head}+dirty` : head;
}

function withoutLog(options: BenchOptions): Omit<BenchOptions, 'log'> {
  const { log, ...rest } = options;
  void log;
  return rest;
}
