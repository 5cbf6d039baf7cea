import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { as, asStaff } from '../test/support/auth.ts';
import { wholeOption } from '../test/support/cli-options.ts';
import type { ClusterServiceName } from '../test/support/cluster.ts';
import { processCpuMs } from '../test/support/cpu.ts';
import { startPrivateNats } from '../test/support/nats.ts';
import { startPrivateRedis } from '../test/support/redis.ts';
import { flameGraphSvg, fold, foldedText, summaryText, type CpuProfile } from './cpuprofile.ts';
import { Patrons, runLoad, type LoadResult } from './load.ts';
import { startClusterSystem, type BenchSystem } from './systems.ts';

/**
 * `npm run bench:profile [-- --duration 20 --workers 16 --warmup 5 --no-cpu-prof]`: where bstore's
 * CPU goes. Starts the five services as processes (bench/systems.ts, as `npm run bench` does) on private NATS and
 * Redis and the local PostgreSQL, with Node's CPU profiler on in each (`--cpu-prof`); a warm-up
 * load, then the measured closed-loop load through the gateway (bench/load.ts) on one book with
 * copies enough; stops the services with SIGTERM (so each writes its profile) and writes into
 * bench/results/profile-<timestamp>/, per service: the `.cpuprofile`, the samples of the measured
 * load folded (`.folded`), a flame graph (`.svg`) and, in summary.txt, its CPU from /proc per
 * completed saga with its top self-time and inclusive functions. `--no-cpu-prof` measures the CPU
 * per saga without the profiler's own cost; `--node-options` adds options to every service's Node.
 */
const { values } = parseArgs({
  allowNegative: true,
  options: {
    duration: { type: 'string', default: '20' },
    workers: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '5' },
    'cpu-prof': { type: 'boolean', default: true },
    /** More options for every service's Node (an --import of a counting hook, say). */
    'node-options': { type: 'string', default: '' },
  },
});
const durationS = wholeOption('duration', values.duration, 1, 3600);
const workers = wholeOption('workers', values.workers, 1, 256);
const warmupS = wholeOption('warmup', values.warmup, 0, 600);
const profiling = values['cpu-prof'];
const SERVICES: ClusterServiceName[] = ['gateway', 'reservation', 'book', 'assignment', 'customercenter', 'notification'];

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const out = fileURLToPath(new URL(`./results/profile-${stamp}/`, import.meta.url));
const raw = join(out, 'raw');
await mkdir(raw, { recursive: true });
const say = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);

/** The profile's clock: CLOCK_MONOTONIC in microseconds, as V8 stamps samples on Linux. */
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

const nats = await startPrivateNats();
const redis = await startPrivateRedis();
let cluster: BenchSystem | undefined;
try {
  say(`starting the cluster${profiling ? ' with --cpu-prof' : ''}`);
  cluster = await startClusterSystem(nats, redis, {
    NODE_OPTIONS: [profiling ? `--cpu-prof --cpu-prof-dir=${raw}` : '', values['node-options']].join(' ').trim(),
  });
  const staff = await asStaff();
  const [bookId] = (await cluster.addBooks(1, 100_000)) as [number];
  // Enough patrons that, one cycle each on the one book, none is short of work at the maximum.
  const patrons = new Patrons(await Promise.all(Array.from({ length: 1000 }, (_, i) => as(`profile-${i}`))));
  const load = (seconds: number, leadInMs = 0, onWindow?: (edge: 'start' | 'end') => void): Promise<LoadResult> =>
    runLoad({ gateway: cluster!.gateway, patrons, staff, pickBook: () => bookId, cancelShare: 0.2, mode: { kind: 'closed', workers }, durationMs: seconds * 1000, leadInMs, settleTimeoutMs: 30_000, ...(onWindow ? { onWindow } : {}) });

  if (warmupS > 0) {
    say(`warm-up: ${warmupS} s`);
    await load(warmupS);
  }
  say(`load: ${workers} closed-loop workers, ${durationS} s`);
  const pidOf = Object.fromEntries(cluster.processes().map((p) => [p.name, p.pids[0]])) as Record<ClusterServiceName, number>;
  const cpuMs = (n: ClusterServiceName) => processCpuMs(pidOf[n]) ?? NaN;
  // Measured from the end of a 2 s lead-in (the cycle under way) until the sagas settled, closing time left out.
  let cpuBefore = Object.fromEntries(SERVICES.map((n) => [n, cpuMs(n)]));
  let cpuAfter = cpuBefore;
  let fromUs = nowUs();
  let toUs = fromUs;
  const result = await load(durationS, 2000, (edge) => {
    if (edge === 'start') {
      cpuBefore = Object.fromEntries(SERVICES.map((n) => [n, cpuMs(n)]));
      fromUs = nowUs();
    } else {
      cpuAfter = Object.fromEntries(SERVICES.map((n) => [n, cpuMs(n)]));
      toUs = nowUs();
    }
  });
  const cpu = Object.fromEntries(SERVICES.map((n) => [n, (cpuAfter[n] as number) - (cpuBefore[n] as number)])) as Record<ClusterServiceName, number>;
  const pids = Object.fromEntries(SERVICES.map((n) => [pidOf[n], n]));
  say('stopping the services (SIGTERM: each writes its profile)');
  await cluster.stop();
  cluster = undefined;

  const completed = result.sagas.completed;
  const total = SERVICES.reduce((s, n) => s + cpu[n], 0);
  const lines = [
    `bench:profile ${new Date().toISOString()}: ${workers} closed-loop workers, ${durationS} s after ${warmupS} s of warm-up, one book, a fifth of the reservations cancelled and the rest checked out and in${profiling ? ', CPU profiler on (it costs CPU of its own)' : ', no profiler'}`,
    `completed sagas ${completed} (${result.sagas.perSecond.toFixed(1)}/s); POST /reservations ${result.reserve.sent} ${JSON.stringify(result.reserve.byStatus)}; cancels ${result.cancel.sent} ${JSON.stringify(result.cancel.byStatus)}; check-outs ${result.checkOut.sent} ${JSON.stringify(result.checkOut.byStatus)}; check-ins ${result.checkIn.sent} ${JSON.stringify(result.checkIn.byStatus)}`,
    `saga latency p50 ${result.sagas.latencyMs.p50.toFixed(0)} ms, p99 ${result.sagas.latencyMs.p99.toFixed(0)} ms; POST p50 ${result.reserve.latencyMs.p50.toFixed(0)} ms, p99 ${result.reserve.latencyMs.p99.toFixed(0)} ms`,
    '',
    '| service | CPU ms (from /proc) | CPU ms per completed saga |',
    '|---|---|---|',
    ...SERVICES.map((n) => `| ${n} | ${cpu[n].toFixed(0)} | ${completed > 0 ? (cpu[n] / completed).toFixed(2) : '-'} |`),
    `| all five | ${total.toFixed(0)} | ${completed > 0 ? (total / completed).toFixed(2) : '-'} |`,
    '',
  ];

  if (profiling) {
    const files = (await readdir(raw)).filter((f) => f.endsWith('.cpuprofile'));
    for (const file of files) {
      const pid = Number(file.split('.')[3]);
      const service = pids[pid];
      if (!service) continue; // a process of no service (none is expected)
      const profile = JSON.parse(await readFile(join(raw, file), 'utf8')) as CpuProfile;
      // Only the measured load's samples; if the clocks disagree (not Linux), the whole profile.
      const inWindow = profile.startTime <= toUs && profile.endTime >= fromUs;
      const folded = fold(profile, inWindow ? fromUs : -Infinity, inWindow ? toUs : Infinity);
      await writeFile(join(out, `${service}.cpuprofile`), JSON.stringify(profile));
      await writeFile(join(out, `${service}.folded`), foldedText(folded));
      await writeFile(join(out, `${service}.svg`), flameGraphSvg(folded, `bstore ${service}: CPU during ${durationS} s of closed-loop load (${completed} completed sagas)`));
      lines.push(summaryText(service, folded, 25, completed || undefined));
      if (!inWindow) lines.push(`(${service}: the profile's clock did not cover the load's window; the whole profile is shown)`);
    }
    const missing = SERVICES.filter((n) => !files.some((f) => pids[Number(f.split('.')[3])] === n));
    if (missing.length > 0) lines.push(`no profile was written by: ${missing.join(', ')} (did it exit gracefully?)`);
    else await rm(raw, { recursive: true });
  }
  await writeFile(join(out, 'summary.txt'), lines.join('\n'));
  process.stdout.write(`\n${lines.slice(0, profiling ? lines.length : 12).join('\n')}\n`);
  say(`written to ${out}`);
} finally {
  await cluster?.stop();
  await redis.stop();
  await nats.stop();
}
