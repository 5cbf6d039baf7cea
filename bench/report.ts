/**
 * The benchmark's report (issue 9, item 4; the start of it): the final line a script reads, the
 * terminal table, and an SVG chart of latency against throughput. Pure functions: the command
 * that measures (still to come) gives them its numbers.
 */

/** One measured load: what was offered (open loop; null for the closed-loop maximum) and what came of it. */
export interface BenchPoint {
  label: string;
  /** Arrivals a second offered (open loop), or null (closed loop). */
  offeredPerSecond: number | null;
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

/** The points as the terminal's table (Markdown, so it also pastes into bench/README.md). */
export function pointsTable(points: readonly BenchPoint[]): string {
  const rows = points.map(
    (p) => `| ${p.label} | ${p.offeredPerSecond === null ? 'max (closed loop)' : p.offeredPerSecond.toFixed(0)} | ${p.sagasPerSecond.toFixed(1)} | ${p.postP99Ms.toFixed(1)} | ${p.sagaP99Ms.toFixed(1)} |`,
  );
  return ['| load | offered/s | completed sagas/s | POST p99 ms | saga p99 ms |', '|---|---|---|---|---|', ...rows].join('\n');
}

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A round step for about `ticks` ticks over `max` (1, 2 or 5 times a power of ten). */
function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return step ?? 10 * power;
}

/**
 * An SVG line chart of latency (y, ms) against completed sagas a second (x): the saga p99 and the
 * POST p99 of each point, in the order given (rising load). Self-contained: no script, no fonts
 * beyond the viewer's sans-serif.
 */
export function latencyChartSvg(points: readonly BenchPoint[], title: string): string {
  const width = 720;
  const height = 420;
  const left = 64;
  const right = 24;
  const top = 48;
  const bottom = 56;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const xMax = Math.max(1, ...points.map((p) => p.sagasPerSecond));
  const yMax = Math.max(1, ...points.flatMap((p) => [p.sagaP99Ms, p.postP99Ms]));
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

  const series: { name: string; color: string; value: (p: BenchPoint) => number }[] = [
    { name: 'saga p99 (201 to bookReserved)', color: '#c0392b', value: (p) => p.sagaP99Ms },
    { name: 'POST /reservations p99', color: '#2c6fbb', value: (p) => p.postP99Ms },
  ];
  series.forEach((s, i) => {
    const coords = points.map((p) => `${round(x(p.sagasPerSecond))},${round(y(s.value(p)))}`);
    if (coords.length > 1) parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${coords.join(' ')}"/>`);
    for (const p of points) {
      parts.push(`<circle cx="${round(x(p.sagasPerSecond))}" cy="${round(y(s.value(p)))}" r="3.5" fill="${s.color}"><title>${escapeXml(`${p.label}: ${s.name} ${round(s.value(p))} ms at ${round(p.sagasPerSecond)} sagas/s`)}</title></circle>`);
    }
    parts.push(`<rect x="${left + 12}" y="${top + 8 + i * 18}" width="12" height="3" fill="${s.color}"/>`);
    parts.push(`<text x="${left + 30}" y="${top + 13 + i * 18}">${escapeXml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
