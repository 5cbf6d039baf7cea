import { parseArgs } from 'node:util';
import { wholeOption } from '../support/cli-options.ts';
import { formatReport, runChaos, sagasPerSecond } from './chaos.ts';

/**
 * `npm run test:scale [-- --duration 20 --workers 16 --max-replicas 3]`: how throughput changes
 * with replicas. For 1, 2, ... replicas of reservation and of assignment behind the gateway, the
 * same closed-loop load without faults (patrons reserving and cancelling, stock that never runs
 * out), then the sagas complete by the end of the load per second. Each run also checks I1–I5;
 * exits non-zero when one fails. Every number is from this machine, in this run.
 */
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '20' },
    workers: { type: 'string', default: '16' },
    'max-replicas': { type: 'string', default: '3' },
    quiet: { type: 'boolean', default: false },
  },
});
const durationS = wholeOption('duration', values.duration, 5, 3600);
const workers = wholeOption('workers', values.workers, 1, 256);
const maxReplicas = wholeOption('max-replicas', values['max-replicas'], 1, 6);
const log = values.quiet ? undefined : (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);

const rows: string[] = [];
let failed = false;
for (let replicas = 1; replicas <= maxReplicas; replicas++) {
  const report = await runChaos({
    durationMs: durationS * 1000,
    faults: false,
    viaGateway: true,
    reservationReplicas: replicas,
    assignmentReplicas: replicas,
    workers,
    customers: 400,
    hotBooks: 3,
    coldBooks: 50,
    hotQuantity: 100_000,
    coldQuantity: 10_000,
    // The saga's throughput as before: reserve and cancel, no waiting line, desk or expiry.
    lifecycle: false,
    ...(log ? { log } : {}),
  });
  if (!values.quiet) process.stdout.write(`\n${formatReport(report)}\n\n`);
  if (report.violations.length > 0 || report.serverErrors > 0) failed = true;
  const posts = report.reserves.acknowledged + report.reserves.refused;
  // CPU of bstore's own processes per completed saga (PostgreSQL, NATS and Redis not included).
  const cpuMs = report.replicas.reduce((sum, r) => sum + (r.cpuMs ?? 0), 0);
  const perSaga = report.sagas.completed > 0 ? (cpuMs / report.sagas.completed).toFixed(1) : '-';
  const busy = report.machineCpuBusyPct === null ? '-' : `${report.machineCpuBusyPct.toFixed(0)} %`;
  rows.push(
    `| ${replicas} | ${sagasPerSecond(report).toFixed(1)} | ${(posts / (report.loadMs / 1000)).toFixed(1)} | ${report.reserves.acknowledged} | ${busy} | ${perSaga} | ${report.serverErrors} | ${report.settledInMs === null ? 'no' : `${(report.settledInMs / 1000).toFixed(1)} s`} | ${report.violations.length} |`,
  );
}
process.stdout.write(
  [
    `replicas of reservation and assignment behind one gateway; ${workers} closed-loop workers, ${durationS} s each, ${new Date().toISOString()}`,
    '| replicas | completed sagas/s | POST /reservations/s | acknowledged | machine CPU busy | bstore CPU ms per saga | 5xx | settled after the load | violations |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n'),
);
process.exit(failed ? 1 : 0);
