import type { BenchReport, GrowthStep, PointReport, ShapeReport } from './bench.ts';

/**
 * The benchmark's report (issue 9, item 4): the final line a script reads, the terminal's tables
 * (Markdown, so they paste into bench/README.md), and an SVG chart of latency against throughput.
 * Pure functions of what `bench.ts` measured.
 */

/** One measured load on the chart: its label and what came of it. */
export interface BenchPoint {
  label: string;
  sagasPerSecond: number;
  postP99Ms: number;
  sagaP99Ms: number;
}

/** Sagas a second the commits alone would allow: the hold floor over the PostgreSQL commits one saga needs (bench/README.md). */
export function commitBoundLimit(floorHoldsPerSecond: number, commitsPerSaga = 5): number {
  return floorHoldsPerSecond / commitsPerSaga;
}

/** `sagas_per_s=<n> floor_holds_per_s=<n> ratio=<n> p99_saga_ms=<n>`: the benchmark's last line. */
export function finalLine(input: { sagasPerSecond: number; floorHoldsPerSecond: number; p99SagaMs: number }): string {
  const ratio = input.floorHoldsPerSecond > 0 ? input.sagasPerSecond / input.floorHoldsPerSecond : 0;
  return `sagas_per_s=${input.sagasPerSecond.toFixed(1)} floor_holds_per_s=${input.floorHoldsPerSecond.toFixed(0)} ratio=${ratio.toFixed(3)} p99_saga_ms=${input.p99SagaMs.toFixed(1)}`;
}

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A round step for about `ticks` ticks over `max` (1, 2 or 5 times a power of ten). */
function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return step ?? 10 * power;
}

/** One line of the chart: a catalogue shape's points, in the order measured. */
export interface ChartGroup {
  name: string;
  points: readonly BenchPoint[];
}

const GROUP_COLORS = ['#c0392b', '#2c6fbb', '#27ae60', '#8e44ad'];

/**
 * An SVG line chart of latency (y, ms) against completed sagas a second (x): for each group (a
 * catalogue shape), the saga p99 (solid) and the POST p99 (dashed) of its points, in the order
 * given (rising load). Self-contained: no script, no fonts beyond the viewer's sans-serif.
 */
export function latencyChartSvg(groups: readonly ChartGroup[], title: string): string {
  const width = 720;
  const height = 420;
  const left = 64;
  const right = 24;
  const top = 48;
  const bottom = 56;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const all = groups.flatMap((g) => g.points);
  const xMax = Math.max(1, ...all.map((p) => p.sagasPerSecond));
  const yMax = Math.max(1, ...all.flatMap((p) => [p.sagaP99Ms, p.postP99Ms]));
  const xStep = niceStep(xMax, 6);
  const yStep = niceStep(yMax, 5);
  const xTop = Math.ceil(xMax / xStep) * xStep;
  const yTop = Math.ceil(yMax / yStep) * yStep;
  const x = (v: number) => left + (v / xTop) * plotW;
  const y = (v: number) => top + plotH - (v / yTop) * plotH;
  const round = (v: number) => Math.round(v * 10) / 10;

  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`);
  for (let v = 0; v <= xTop + 1e-9; v += xStep) {
    parts.push(`<line x1="${round(x(v))}" y1="${top}" x2="${round(x(v))}" y2="${top + plotH}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${round(x(v))}" y="${top + plotH + 18}" text-anchor="middle">${round(v)}</text>`);
  }
  for (let v = 0; v <= yTop + 1e-9; v += yStep) {
    parts.push(`<line x1="${left}" y1="${round(y(v))}" x2="${left + plotW}" y2="${round(y(v))}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${left - 8}" y="${round(y(v)) + 4}" text-anchor="end">${round(v)}</text>`);
  }
  parts.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#333"/>`);
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333"/>`);
  parts.push(`<text x="${left + plotW / 2}" y="${height - 16}" text-anchor="middle">completed sagas per second</text>`);
  parts.push(`<text x="16" y="${top + plotH / 2}" text-anchor="middle" transform="rotate(-90 16 ${top + plotH / 2})">latency, ms</text>`);

  let legend = 0;
  groups.forEach((group, g) => {
    const color = GROUP_COLORS[g % GROUP_COLORS.length] as string;
    const series: { name: string; dash: string; value: (p: BenchPoint) => number }[] = [
      { name: 'saga p99 (201 to bookReserved)', dash: '', value: (p) => p.sagaP99Ms },
      { name: 'POST /reservations p99', dash: ' stroke-dasharray="6 4"', value: (p) => p.postP99Ms },
    ];
    for (const s of series) {
      const coords = group.points.map((p) => `${round(x(p.sagasPerSecond))},${round(y(s.value(p)))}`);
      if (coords.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${s.dash} points="${coords.join(' ')}"/>`);
      for (const p of group.points) {
        parts.push(
          `<circle cx="${round(x(p.sagasPerSecond))}" cy="${round(y(s.value(p)))}" r="3.5" fill="${color}"><title>${escapeXml(`${group.name}, ${p.label}: ${s.name} ${round(s.value(p))} ms at ${round(p.sagasPerSecond)} sagas/s`)}</title></circle>`,
        );
      }
      parts.push(`<line x1="${left + 12}" y1="${top + 10 + legend * 18}" x2="${left + 32}" y2="${top + 10 + legend * 18}" stroke="${color}" stroke-width="2"${s.dash}/>`);
      parts.push(`<text x="${left + 38}" y="${top + 14 + legend * 18}">${escapeXml(`${group.name}: ${s.name}`)}</text>`);
      legend++;
    }
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

const fixed = (v: number, digits = 1) => v.toFixed(digits);
const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

/** The chart's view of a measured point. */
export function benchPoint(p: PointReport): BenchPoint {
  return { label: p.label, sagasPerSecond: p.load.sagas.perSecond, postP99Ms: p.load.reserve.latencyMs.p99, sagaP99Ms: p.load.sagas.latencyMs.p99 };
}

/** The floors, with the commit-bound limit each implies. */
export function floorsTable(floors: BenchReport['floors']): string {
  const hold = (f: BenchReport['floors']['holdHot']) => `| ${f.name} | ${fixed(f.perSecond, 0)} | ${f.operations} | ${f.errors} | ${fixed(commitBoundLimit(f.perSecond))} sagas/s |`;
  return [
    `| floor (${floors.holdHot.concurrency} clients) | per second | operations | errors | commit-bound limit |`,
    '|---|---|---|---|---|',
    hold(floors.holdHot),
    hold(floors.holdSpread),
    `| ${floors.publish.name} | ${fixed(floors.publish.perSecond, 0)} | ${floors.publish.operations} | ${floors.publish.errors} | - |`,
  ].join('\n');
}

const errorText = (errors: Record<string, number>) =>
  Object.keys(errors).length === 0
    ? '0'
    : Object.entries(errors)
        .map(([k, n]) => `${k}: ${n}`)
        .join(', ');

/** A point's errors, then its refusals (503 with Retry-After) when it had any. */
const errorsAndRefusals = (p: PointReport) => `${errorText(p.errors)}${Object.keys(p.refused).length > 0 ? `; refused: ${errorText(p.refused)}` : ''}`;

/** A shape's points: offered and completed rates, POST and saga latency, the other operations, errors (and refusals), machine load. */
export function shapeTable(shape: ShapeReport): string {
  const rows = shape.points.map((p) => {
    const post = p.load.reserve.latencyMs;
    const saga = p.load.sagas.latencyMs;
    const others = `${p.load.cancel.sent} / ${p.load.checkOut.sent}${p.load.deferred > 0 ? ` (+${p.load.deferred} deferred)` : ''} / ${p.load.checkIn.sent}`;
    return `| ${p.label} | ${p.mode.kind === 'open' ? fixed(p.mode.perSecond, 0) : 'max'} | ${fixed(p.load.sagas.perSecond)} | ${ms(post.p50)} / ${ms(post.p95)} / ${ms(post.p99)} / ${ms(post.max)} | ${ms(saga.p50)} / ${ms(saga.p95)} / ${ms(saga.p99)} | ${p.load.sagas.completed}/${p.load.sagas.acknowledged} | ${others} | ${errorsAndRefusals(p)} | ${p.machineBusyPct === null ? '-' : `${fixed(p.machineBusyPct, 0)} %`} |`;
  });
  return [
    '| load | offered ops/s | completed sagas/s | POST ms p50 / p95 / p99 / max | saga ms p50 / p95 / p99 | sagas completed/acknowledged | cancels / check-outs / check-ins | errors | machine CPU busy |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** CPU milliseconds per completed saga, per process (columns) and point (rows). */
export function cpuTable(points: readonly PointReport[]): string {
  const names = points[0]?.cpu.map((c) => c.name) ?? [];
  const rows = points.map((p) => {
    const cells = names.map((name) => {
      const c = p.cpu.find((x) => x.name === name);
      return c?.msPerSaga === null || c?.msPerSaga === undefined ? '-' : fixed(c.msPerSaga, 2);
    });
    const services = p.cpu.filter((c) => c.role === 'service');
    const bstore = services.every((c) => c.msPerSaga !== null) ? fixed(services.reduce((sum, c) => sum + (c.msPerSaga ?? 0), 0), 2) : '-';
    const generator = p.load.sagas.completed > 0 ? fixed(p.generatorCpuMs / p.load.sagas.completed, 2) : '-';
    return `| ${p.label} | ${cells.join(' | ')} | ${bstore} | ${generator} |`;
  });
  return [`| load | ${names.join(' | ')} | bstore total | load generator |`, `|---|${names.map(() => '---|').join('')}---|---|`, ...rows].join('\n');
}

/** The growth steps: the closed-loop maximum as the data grows, each against the first. */
export function growthTable(steps: readonly GrowthStep[]): string {
  const base = steps[0]?.point.load.sagas.perSecond ?? 0;
  const rows = steps.map((s) => {
    const r = s.point.load;
    return `| ${s.label} | ${fixed(r.sagas.perSecond)} | ${base > 0 ? `${fixed((100 * r.sagas.perSecond) / base, 0)} %` : '-'} | ${ms(r.reserve.latencyMs.p99)} | ${ms(r.sagas.latencyMs.p99)} | ${errorsAndRefusals(s.point)} |`;
  });
  return ['| data | completed sagas/s (closed loop) | of the first | POST p99 ms | saga p99 ms | errors |', '|---|---|---|---|---|---|', ...rows].join('\n');
}

/**
 * What the final line reports: the hot-book shape (the seed's contention on a popular book) read
 * against its own floor, one hot book's hold rate. Its completed sagas/s is the closed-loop
 * maximum; its saga p99 is at half that rate (the open-loop point nearest 50 %), where the targets
 * apply. Undefined when the report has no hot-book shape.
 */
export function headline(report: BenchReport): { sagasPerSecond: number; floorHoldsPerSecond: number; p99SagaMs: number; atHalf: PointReport } | undefined {
  const shape = report.shapes.find((s) => s.name === 'hot');
  const max = shape?.points.find((p) => p.fractionOfMax === null);
  if (!shape || !max) return undefined;
  const atHalf = halfPoint(shape) ?? max;
  return { sagasPerSecond: max.load.sagas.perSecond, floorHoldsPerSecond: report.floors.holdHot.perSecond, p99SagaMs: atHalf.load.sagas.latencyMs.p99, atHalf };
}

/** The open-loop point whose rate is nearest half the maximum; undefined without open-loop points. */
export function halfPoint(shape: ShapeReport): PointReport | undefined {
  const distance = (p: PointReport) => Math.abs((p.fractionOfMax ?? Infinity) - 0.5);
  return shape.points.filter((p) => p.fractionOfMax !== null).reduce<PointReport | undefined>((best, p) => (best === undefined || distance(p) < distance(best) ? p : best), undefined);
}

/** The targets of issue 9 for one shape, checked: sagas/s against half the commit-bound limit, and the p99s at half the maximum. */
export function targetsTable(report: BenchReport): string {
  const rows = report.shapes.map((shape) => {
    const max = shape.points.find((p) => p.fractionOfMax === null);
    const half = halfPoint(shape);
    const limit = commitBoundLimit(shape.floorHoldsPerSecond);
    const sagas = max?.load.sagas.perSecond ?? 0;
    const mark = (ok: boolean) => (ok ? 'met' : 'missed');
    const sagaP99 = half?.load.sagas.latencyMs.p99;
    const postP99 = half?.load.reserve.latencyMs.p99;
    return `| ${shape.description} | ${fixed(sagas)} of ${fixed(limit)} (${fixed((100 * sagas) / Math.max(1e-9, limit), 0)} %): ${mark(sagas >= limit / 2)} | ${sagaP99 === undefined ? '-' : `${ms(sagaP99)} ms: ${mark(sagaP99 <= 100)}`} | ${postP99 === undefined ? '-' : `${ms(postP99)} ms: ${mark(postP99 <= 50)}`} |`;
  });
  return ['| shape | completed sagas/s of the commit-bound limit (target 50 %) | saga p99 at half the maximum (target 100 ms) | POST p99 there (target 50 ms) |', '|---|---|---|---|', ...rows].join('\n');
}
