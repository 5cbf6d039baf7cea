import { describe, expect, it } from 'vitest';
import { flameGraphSvg, fold, foldedText, rank, summaryText, type CpuProfile } from '../bench/cpuprofile.ts';

/**
 * `npm run bench:profile`'s reading of a `.cpuprofile`: a made-up profile whose every number is
 * known (root -> main -> [work -> hash, idle]), folded over a window, ranked and drawn.
 */
const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber, columnNumber: 0 });
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 5] },
    { id: 2, callFrame: frame('main', 'file:///app/node_modules/lib/index.js', 9), children: [3] },
    { id: 3, callFrame: frame('work', 'node:internal/work', 1), children: [4] },
    { id: 4, callFrame: frame('hash & <sum>', 'file:///app/node_modules/lib/hash.js', 0) },
    { id: 5, callFrame: frame('(idle)') },
  ],
  startTime: 1000,
  // samples at 1010, 1020, 1030, 1040, 1050; the profile ends at 1060: 10 µs each
  samples: [4, 3, 4, 5, 2],
  timeDeltas: [10, 10, 10, 10, 10],
  endTime: 1060,
};

describe('bench/cpuprofile.ts', () => {
  it('folds the samples into stacks with their time, idle kept apart', () => {
    const folded = fold(profile);
    expect(folded.busyUs).toBe(40);
    expect(folded.idleUs).toBe(10);
    expect(Object.fromEntries(folded.stacks)).toEqual({
      'main node_modules/lib/index.js:10;work node:internal/work:2;hash & <sum> node_modules/lib/hash.js:1': 20,
      'main node_modules/lib/index.js:10;work node:internal/work:2': 10,
      'main node_modules/lib/index.js:10': 10,
    });
    expect(foldedText(folded).trim().split('\n')).toHaveLength(3);
  });

  it('a window keeps only the samples inside it', () => {
    const folded = fold(profile, 1015, 1035);
    expect(folded.busyUs).toBe(20);
    expect(folded.fromUs).toBe(1020);
    expect(folded.toUs).toBe(1030);
  });

  it('ranks self time by leaf and inclusive time once per stack', () => {
    const { self, inclusive } = rank(fold(profile));
    expect(self[0]).toEqual({ name: 'hash & <sum> node_modules/lib/hash.js:1', us: 20 });
    expect(inclusive[0]).toEqual({ name: 'main node_modules/lib/index.js:10', us: 40 });
    expect(inclusive.find((r) => r.name.startsWith('work'))?.us).toBe(30);
  });

  it('draws a flame graph SVG with every frame, names escaped, and writes a summary', () => {
    const svg = flameGraphSvg(fold(profile), 'test <profile>');
    expect(svg).toMatch(/^<\?xml/);
    expect(svg).toContain('test &lt;profile&gt;');
    expect(svg).toContain('hash &amp; &lt;sum&gt;');
    expect((svg.match(/<rect /g) ?? []).length).toBe(1 + 4); // the background, then all, main, work, hash
    const text = summaryText('book', fold(profile), 5, 2);
    expect(text).toContain('=== book ===');
    expect(text).toMatch(/0\.0 ms/);
  });
});
