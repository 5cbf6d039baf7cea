import { parseArgs } from 'node:util';
import { formatReport, runChaos } from './chaos.ts';

/**
 * `npm run test:chaos [-- --duration 120 --seed 42 --no-faults]`: a chaos run with faults, then
 * the same load without faults. Exits non-zero, naming the offending ids, on any violated invariant,
 * on any unexpected answer (see `isExpected` in chaos.ts), and on any 5xx answer in the run without
 * faults.
 */
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '30' },
    seed: { type: 'string' },
    'no-faults': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
});
const durationS = Number(values.duration);
if (!Number.isFinite(durationS) || durationS < 1 || durationS > 24 * 3600) {
  process.stderr.write(`--duration must be a number of seconds from 1 to 86400, not ${JSON.stringify(values.duration)}\n`);
  process.exit(2);
}
const seed = values.seed === undefined ? undefined : Number(values.seed);
if (seed !== undefined && !Number.isInteger(seed)) {
  process.stderr.write(`--seed must be a whole number\n`);
  process.exit(2);
}
const log = values.quiet ? undefined : (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);

let failed = false;
const runs = values['no-faults'] ? [false] : [true, false];
for (const faults of runs) {
  const report = await runChaos({ durationMs: durationS * 1000, faults, ...(seed !== undefined ? { seed } : {}), ...(log ? { log } : {}) });
  process.stdout.write(`\n${formatReport(report)}\n\n`);
  if (report.violations.length > 0) failed = true;
  if (report.unexpected.count > 0) {
    process.stdout.write(`FAILED: ${report.unexpected.count} answers no client should get (${faults ? 'with' : 'without'} faults)\n`);
    failed = true;
  }
  if (!faults && report.serverErrors > 0) {
    process.stdout.write(`FAILED: ${report.serverErrors} answers were 5xx in the run without faults\n`);
    failed = true;
  }
}
process.stdout.write(failed ? 'chaos: FAILED\n' : 'chaos: every invariant held\n');
process.exit(failed ? 1 : 0);
