import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { as, asStaff } from '../test/support/auth.ts';
import { busyPercent, machineCpu, processCpuMs } from '../test/support/cpu.ts';
import { startPrivateNats, type PrivateNats } from '../test/support/nats.ts';
import { ensurePostgres, POSTGRES_URL } from '../test/support/postgres.ts';
import { startPrivateRedis, type PrivateRedis } from '../test/support/redis.ts';
import { measureHoldFloor, measurePublishFloor, type HoldFloorResult, type PublishFloorResult } from './floor.ts';
import { runLoad, type LoadMode, type LoadResult } from './load.ts';
import { startClusterSystem, startEmbeddedSystem, type BenchProcess, type BenchSystem } from './systems.ts';

/**
 * `npm run bench` (issue 9): the floors first, then the system through the gateway for two
 * catalogue shapes (open loop at rising arrival rates, and the closed-loop maximum), then growth.
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
  /** The open loop's arrival rates, as fractions of the closed-loop maximum's operations per second, rising. */
  openFractions: number[];
  /** Patrons of the load. */
  customers: number;
  /** Books of the spread catalogue shape (10,000 in the benchmark). */
  spreadBooks: number;
  /** Share of operations that cancel a completed reservation. */
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
  /** POST /reservations and cancels answered other than 201/202, by status (`lost`: no answer). */
  errors: Record<string, number>;
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

/** Statuses that are not the expected answer, counted. */
function errorsOf(load: LoadResult): Record<string, number> {
  const errors: Record<string, number> = {};
  for (const [status, n] of Object.entries(load.reserve.byStatus)) if (status !== '201') errors[`POST ${status}`] = n;
  for (const [status, n] of Object.entries(load.cancel.byStatus)) if (status !== '202') errors[`PATCH ${status}`] = n;
  return errors;
}

/** Runs one load while reading the CPU time of the system's processes, this process and the machine. */
async function measurePoint(
  system: BenchSystem,
  label: string,
  mode: LoadMode,
  fractionOfMax: number | null,
  load: (mode: LoadMode) => Promise<LoadResult>,
): Promise<PointReport> {
  const processes = system.processes();
  const before = processes.map((p) => p.pids.map((pid) => processCpuMs(pid)));
  const machineBefore = machineCpu();
  const generatorBefore = process.cpuUsage();
  const result = await load(mode);
  const generator = process.cpuUsage(generatorBefore);
  const machineBusyPct = busyPercent(machineBefore, machineCpu());
  const cpu = processes.map((p, i) => {
    let total = 0;
    let known = false;
    p.pids.forEach((pid, j) => {
      const start = before[i]?.[j];
      const end = processCpuMs(pid);
      if (start !== undefined && end !== undefined) {
        total += end - start;
        known = true;
      }
    });
    const cpuMs = known ? total : null;
    return { name: p.name, role: p.role, cpuMs, msPerSaga: cpuMs !== null && result.sagas.completed > 0 ? cpuMs / result.sagas.completed : null };
  });
  return { label, mode, fractionOfMax, load: result, errors: errorsOf(result), cpu, generatorCpuMs: (generator.user + generator.system) / 1000, machineBusyPct };
}

export function describePoint(p: PointReport): string {
  const r = p.load;
  return `${p.label}: ${r.sagas.perSecond.toFixed(1)} sagas/s, POST p99 ${r.reserve.latencyMs.p99.toFixed(1)} ms, saga p99 ${r.sagas.latencyMs.p99.toFixed(1)} ms, ${r.sagas.completed}/${r.sagas.acknowledged} sagas completed`;
}

/** Operations a second the closed loop sent (reserves and cancels): the rate the open loop's fractions are of. */
function operationsPerSecond(load: LoadResult): number {
  return (load.reserve.sent + load.cancel.sent) / (load.durationMs / 1000);
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
    const loader = (system: BenchSystem, pickBook: () => number, seconds: number) => (mode: LoadMode) =>
      runLoad({ gateway: system.gateway, customers, staff, pickBook, cancelShare: options.cancelShare, mode, durationMs: seconds * 1000, settleTimeoutMs: 60_000 });
    const closed: LoadMode = { kind: 'closed', workers: options.concurrency };
    /** Unrecorded closed-loop load: JIT, pools and caches warm before a measurement. */
    const warmUp = async (system: BenchSystem, pickBook: () => number) => {
      if (options.warmupSeconds > 0) await loader(system, pickBook, options.warmupSeconds)(closed);
    };

    const shapes: ShapeReport[] = [];
    for (const shape of ['hot', 'spread'] as const) {
      const system = await start();
      try {
        const books = shape === 'hot' ? await system.addBooks(1, HOT_QUANTITY) : await system.addBooks(options.spreadBooks, SPREAD_QUANTITY);
        const pickBook = () => books[Math.floor(Math.random() * books.length)] as number;
        const description = shape === 'hot' ? `one hot book of ${HOT_QUANTITY.toLocaleString('en')} copies` : `${options.spreadBooks.toLocaleString('en')} books of ${SPREAD_QUANTITY.toLocaleString('en')} copies`;
        log(`${options.mode}, ${description}: warming up ${options.warmupSeconds} s`);
        await warmUp(system, pickBook);
        const load = loader(system, pickBook, options.pointSeconds);
        const max = await measurePoint(system, `closed loop, ${options.concurrency} workers`, closed, null, load);
        log(`  ${describePoint(max)}`);
        const points: PointReport[] = [];
        const maxOps = operationsPerSecond(max.load);
        for (const fraction of options.openFractions) {
          const perSecond = Math.max(1, Math.round(maxOps * fraction));
          const point = await measurePoint(system, `open loop, ${Math.round(fraction * 100)} % of max`, { kind: 'open', perSecond }, fraction, load);
          log(`  ${describePoint(point)}`);
          points.push(point);
        }
        points.push(max);
        shapes.push({ name: shape, description, books: books.length, floorHoldsPerSecond: shape === 'hot' ? holdHot.perSecond : holdSpread.perSecond, points });
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
        const load = loader(system, pickBook, options.pointSeconds);
        await warmUp(system, pickBook);
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
        await warmUp(system, pickBook);
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
