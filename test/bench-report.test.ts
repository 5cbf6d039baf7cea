import { describe, expect, it } from 'vitest';
import { commitBoundLimit, finalLine, latencyChartSvg, type BenchPoint } from '../bench/report.ts';

/** The benchmark's report pieces (bench/report.ts): the final line, the table and the SVG chart. */
const points: BenchPoint[] = [
  { label: '25% <of> max', sagasPerSecond: 17.4, postP99Ms: 31.2, sagaP99Ms: 14.9 },
  { label: '50%', sagasPerSecond: 34.6, postP99Ms: 39.0, sagaP99Ms: 18.2 },
  { label: 'max', sagasPerSecond: 69.8, postP99Ms: 452.4, sagaP99Ms: 384.3 },
];

describe('the benchmark report', () => {
  it('the final line: sagas/s, the hold floor, their ratio and the saga p99, in the format a script reads', () => {
    expect(finalLine({ sagasPerSecond: 69.84, floorHoldsPerSecond: 1078.4, p99SagaMs: 384.31 })).toBe('sagas_per_s=69.8 floor_holds_per_s=1078 ratio=0.065 p99_saga_ms=384.3');
    expect(finalLine({ sagasPerSecond: 10, floorHoldsPerSecond: 0, p99SagaMs: 0 })).toBe('sagas_per_s=10.0 floor_holds_per_s=0 ratio=0.000 p99_saga_ms=0.0');
    expect(finalLine({ sagasPerSecond: 1, floorHoldsPerSecond: 1000, p99SagaMs: 1 })).toMatch(/^sagas_per_s=\S+ floor_holds_per_s=\S+ ratio=\S+ p99_saga_ms=\S+$/);
  });

  it('the commit-bound limit is the hold floor over the commits of one saga (5 by default)', () => {
    expect(commitBoundLimit(3227)).toBeCloseTo(645.4, 5);
    expect(commitBoundLimit(1000, 4)).toBe(250);
  });

  it('the SVG chart: one well-formed document, two series of one marker per point, inside the plot, text escaped', () => {
    const svg = latencyChartSvg([{ name: 'hot', points }], 'bstore <cluster> & more');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('bstore &lt;cluster&gt; &amp; more');
    expect(svg).toContain('25% &lt;of&gt; max');
    expect(svg).not.toMatch(/<of>|<cluster>/);
    const circles = [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
    expect(circles).toHaveLength(points.length * 2);
    for (const [cx, cy] of circles) {
      expect(cx).toBeGreaterThanOrEqual(64);
      expect(cx).toBeLessThanOrEqual(720 - 24);
      expect(cy).toBeGreaterThanOrEqual(48);
      expect(cy).toBeLessThanOrEqual(420 - 56);
    }
    // Higher latency is higher up the chart (smaller y): the max point's saga p99 is above the 25% one's.
    const sagaYs = circles.slice(0, points.length).map(([, cy]) => cy);
    expect(sagaYs[2]).toBeLessThan(sagaYs[0] as number);
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    // Every opened element is closed (a cheap well-formedness check: tags balance).
    const opened = (svg.match(/<(svg|circle|title)(?:\s[^>]*)?(?<!\/)>/g) ?? []).length;
    const closed = (svg.match(/<\/(svg|circle|title)>/g) ?? []).length;
    expect(opened).toBe(closed);
  });

  it('the SVG chart draws each group (catalogue shape) in its own colour, saga and POST lines each, with a legend entry per line', () => {
    const spread = points.map((p) => ({ ...p, sagasPerSecond: p.sagasPerSecond * 2 }));
    const svg = latencyChartSvg([{ name: 'one hot book', points }, { name: '10,000 books', points: spread }], 'two shapes');
    expect(svg.match(/<polyline/g)).toHaveLength(4);
    expect(svg.match(/<circle/g)).toHaveLength(points.length * 4);
    const colours = new Set([...svg.matchAll(/<polyline fill="none" stroke="(#[0-9a-f]{6})"/g)].map((m) => m[1]));
    expect(colours.size).toBe(2);
    expect(svg.match(/stroke-dasharray/g)?.length).toBe(4); // two dashed POST lines and their two legend samples
    expect(svg).toContain('one hot book: saga p99');
    expect(svg).toContain('10,000 books: POST /reservations p99');
  });
});
