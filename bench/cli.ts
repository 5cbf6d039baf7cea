import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { wholeOption } from '../test/support/cli-options.ts';
import { runBench, stockText, type BenchOptions } from './bench.ts';
import { benchPoint, cpuTable, finalLine, floorsTable, growthTable, headline, latencyChartSvg, shapeTable, targetsTable } from './report.ts';

/**
 * `npm run bench [-- --embedded] [-- --quick]`: bstore's throughput and latency against this
 * machine's own limits, measured in the same run (bench/README.md says how to read the report).
 *
 * Options: --embedded (the one-process system; default the cluster), --quick (a short run),
 * --concurrency N (floor clients and closed-loop workers, 16), --duration S (each load point),
 * --floor-duration S, --warmup S, --lead-in S (each point's unmeasured start), --customers N, --spread-books N (the many-books shape, 10,000),
 * --stored N (growth's stored reservations),
 * --no-growth, --out DIR (where the JSON and the SVG go, default bench/results).
 * The last line: `sagas_per_s=<n> floor_holds_per_s=<n> ratio=<n> p99_saga_ms=<n>`.
 */
const { values } = parseArgs({
  options: {
    embedded: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '16' },
    duration: { type: 'string' },
    'floor-duration': { type: 'string' },
    warmup: { type: 'string' },
    'lead-in': { type: 'string' },
    customers: { type: 'string' },
    'spread-books': { type: 'string', default: '10000' },
    stored: { type: 'string' },
    'no-growth': { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/results' },
  },
});
const quick = values.quick;
const options: BenchOptions = {
  mode: values.embedded ? 'embedded' : 'cluster',
  concurrency: wholeOption('concurrency', values.concurrency, 1, 256),
  pointSeconds: wholeOption('duration', values.duration ?? (quick ? '5' : '20'), 1, 3600),
  floorSeconds: wholeOption('floor-duration', values['floor-duration'] ?? (quick ? '3' : '10'), 1, 600),
  warmupSeconds: wholeOption('warmup', values.warmup ?? (quick ? '1' : '5'), 0, 600),
  leadInSeconds: wholeOption('lead-in', values['lead-in'] ?? (quick ? '2' : '5'), 0, 600),
  openFractions: quick ? [0.5] : [0.25, 0.5, 0.75, 0.9],
  customers: wholeOption('customers', values.customers ?? (quick ? '200' : '1000'), 1, 100_000),
  spreadBooks: wholeOption('spread-books', values['spread-books'], 2, 1_000_000),
  cancelShare: 0.1,
  growth: values['no-growth']
    ? null
    : quick
      ? { smallCatalogue: 1_000, largeCatalogue: 10_000, stored: wholeOption('stored', values.stored ?? '10000', 0, 10_000_000) }
      : { smallCatalogue: 1_000, largeCatalogue: 100_000, stored: wholeOption('stored', values.stored ?? '1000000', 0, 10_000_000) },
  log: (line) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`),
};

const report = await runBench(options);

const out: string[] = [''];
out.push(`bstore benchmark, ${report.mode} mode, ${report.machine.cpus} CPUs, Node ${report.machine.node}, commit ${report.machine.commit ?? 'unknown'}, ${report.startedAt}`);
out.push('', floorsTable(report.floors));
for (const shape of report.shapes) {
  out.push('', `${shape.description} (${report.mode}):`, '', shapeTable(shape), '', stockText(shape.stock), '', 'CPU ms per completed saga:', '', cpuTable(shape.points));
}
if (report.growth) out.push('', 'growth (closed loop):', '', growthTable(report.growth));
else if (report.mode === 'embedded') out.push('', 'growth: measured in cluster mode only');
out.push('', targetsTable(report), '');

const stamp = report.startedAt.replace(/[:.]/g, '-');
const dir = resolve(values.out);
await mkdir(dir, { recursive: true });
const json = join(dir, `${stamp}.json`);
const svg = join(dir, `${stamp}.svg`);
await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
await writeFile(svg, latencyChartSvg(report.shapes.map((s) => ({ name: s.description, points: s.points.map(benchPoint) })), `bstore ${report.mode}: latency against throughput (${report.startedAt.slice(0, 16)})`));
out.push(`report: ${json}`, `chart: ${svg}`);

const head = headline(report);
if (!head) throw new Error('the report has no hot-book shape');
out.push(finalLine(head));
process.stdout.write(`${out.join('\n')}\n`);
