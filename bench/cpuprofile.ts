import { fileURLToPath } from 'node:url';

/**
 * Reading V8's `.cpuprofile` (what `node --cpu-prof` writes): a time window of its samples, their
 * stacks folded (`root;caller;callee count`, Brendan Gregg's format), the top self-time and
 * inclusive functions, and a flame graph as a self-contained SVG. Used by `npm run bench:profile`.
 */

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number; scriptId?: string | number };
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  /** Microseconds on the process's monotonic clock (CLOCK_MONOTONIC on Linux, as process.hrtime). */
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** A frame's short name: `function file:line`, the repository's own paths relative to it. */
export function frameName(frame: CpuProfileNode['callFrame']): string {
  const fn = frame.functionName || '(anonymous)';
  if (!frame.url) return fn;
  let url = frame.url.startsWith('file://') ? frame.url.slice('file://'.length) : frame.url;
  if (url.startsWith(ROOT)) url = url.slice(ROOT.length);
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) url = url.slice(nm);
  return `${fn} ${url}:${frame.lineNumber + 1}`;
}

/** Frames V8 adds that are not code: time outside JavaScript, kept apart in the summaries. */
const META = new Set(['(root)', '(idle)', '(program)', '(garbage collector)']);

export interface Folded {
  /** Folded stack (root first, `;`-separated) -> sample time in microseconds. */
  stacks: Map<string, number>;
  /** Time in the window that was spent busy (not `(idle)`), in microseconds. */
  busyUs: number;
  idleUs: number;
  /** The window actually covered, in microseconds of the profile's clock. */
  fromUs: number;
  toUs: number;
}

/**
 * The samples of `profile` between `fromUs` and `toUs` (the profile's clock; default all of it),
 * folded into stacks with the time each took (each sample counts the time until the next one).
 */
export function fold(profile: CpuProfile, fromUs = -Infinity, toUs = Infinity): Folded {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stackOf = new Map<number, string>();
  const stack = (id: number): string => {
    let s = stackOf.get(id);
    if (s !== undefined) return s;
    const frames: string[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const node = byId.get(at);
      if (node && node.callFrame.functionName !== '(root)') frames.push(frameName(node.callFrame));
    }
    s = frames.reverse().join(';');
    stackOf.set(id, s);
    return s;
  };
  const stacks = new Map<string, number>();
  let busyUs = 0;
  let idleUs = 0;
  let t = profile.startTime;
  let first = Infinity;
  let last = -Infinity;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const next = i + 1 < profile.samples.length ? t + (profile.timeDeltas[i + 1] ?? 0) : profile.endTime;
    if (t < fromUs || t > toUs) continue;
    const dt = Math.max(0, next - t);
    first = Math.min(first, t);
    last = Math.max(last, t);
    const id = profile.samples[i] as number;
    const name = byId.get(id)?.callFrame.functionName;
    if (name === '(idle)') {
      idleUs += dt;
      continue;
    }
    busyUs += dt;
    const s = stack(id);
    stacks.set(s, (stacks.get(s) ?? 0) + dt);
  }
  return { stacks, busyUs, idleUs, fromUs: first, toUs: last };
}

export interface Ranked {
  name: string;
  us: number;
}

/** Self time per function (the frame a sample was in) and inclusive time (anywhere on its stack, counted once). */
export function rank(folded: Folded): { self: Ranked[]; inclusive: Ranked[] } {
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [s, us] of folded.stacks) {
    const frames = s.split(';');
    const leaf = frames[frames.length - 1] ?? '(root)';
    self.set(leaf, (self.get(leaf) ?? 0) + us);
    for (const f of new Set(frames)) if (!META.has(f)) inclusive.set(f, (inclusive.get(f) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) => [...m].map(([name, us]) => ({ name, us })).sort((a, b) => b.us - a.us);
  return { self: sorted(self), inclusive: sorted(inclusive) };
}

/** `stack count` lines, the input of flamegraph.pl, speedscope and most other flame graph tools. */
export function foldedText(folded: Folded): string {
  return [...folded.stacks].map(([s, us]) => `${s} ${Math.round(us)}`).join('\n') + '\n';
}

interface Tree {
  name: string;
  us: number;
  children: Map<string, Tree>;
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Warm colours for the project's code, greens for libraries, blues for Node's own JavaScript,
 * purples for native code (a frame without a script: a socket write, say), grey for V8's.
 */
function colour(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  const v = h % 40;
  if (META.has(name) || name.startsWith('(')) return `rgb(${170 + (v % 20)},${170 + (v % 20)},${170 + (v % 20)})`;
  if (name.includes('node_modules/')) return `rgb(${90 + v},${180 + (v % 30)},${90 + v})`;
  if (name.includes(' node:')) return `rgb(${100 + v},${150 + v},${215 + (v % 30)})`;
  if (!name.includes(' ')) return `rgb(${170 + v},${130 + v},${210 + (v % 30)})`;
  return `rgb(${225 + (v % 30)},${110 + v * 2},${40 + v})`;
}

/**
 * A flame graph of the folded stacks as one SVG (no script, no outside file): the root at the
 * bottom, each frame as wide as its share of the busy time, its full name and time in a tooltip.
 * Frames narrower than `minShare` of the whole are left out (their time stays in their parent).
 */
export function flameGraphSvg(folded: Folded, title: string, minShare = 0.0005): string {
  const root: Tree = { name: 'all', us: 0, children: new Map() };
  let depth = 0;
  for (const [s, us] of folded.stacks) {
    root.us += us;
    let at = root;
    const frames = s.split(';');
    depth = Math.max(depth, frames.length);
    for (const f of frames) {
      let child = at.children.get(f);
      if (!child) at.children.set(f, (child = { name: f, us: 0, children: new Map() }));
      child.us += us;
      at = child;
    }
  }
  const width = 1600;
  const rowH = 16;
  const top = 40;
  const rects: string[] = [];
  let maxLevel = 0;
  const total = root.us || 1;
  const draw = (node: Tree, x: number, level: number) => {
    const w = (node.us / total) * (width - 20);
    if (node.us / total < minShare) return;
    maxLevel = Math.max(maxLevel, level);
    rects.push(`${level}|${x}|${w}|${node.name}|${node.us}`);
    let cx = x;
    for (const child of [...node.children.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      draw(child, cx, level + 1);
      cx += (child.us / total) * (width - 20);
    }
  };
  draw(root, 10, 0);
  const height = top + (maxLevel + 1) * rowH + 20;
  const body = rects.map((r) => {
    const [levelS, xS, wS, name, usS] = r.split('|') as [string, string, string, string, string];
    const level = Number(levelS);
    const x = Number(xS);
    const w = Number(wS);
    const us = Number(usS);
    const y = height - 20 - (level + 1) * rowH;
    const label = w > 30 ? escapeXml(name.slice(0, Math.floor((w - 6) / 6.5))) : '';
    const tip = `${escapeXml(name)} — ${(us / 1000).toFixed(1)} ms, ${((us / total) * 100).toFixed(2)} %`;
    return `<g><title>${tip}</title><rect x="${x.toFixed(2)}" y="${y}" width="${Math.max(0.5, w - 0.5).toFixed(2)}" height="${rowH - 1}" fill="${colour(name)}" rx="2"/>${label ? `<text x="${(x + 3).toFixed(2)}" y="${y + rowH - 4}">${label}</text>` : ''}</g>`;
  });
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fdfdf6"/>`,
    `<text x="10" y="18" font-size="15">${escapeXml(title)}</text>`,
    `<text x="10" y="34" fill="#555">busy ${(folded.busyUs / 1000).toFixed(0)} ms (idle left out); hover a frame for its name and time; orange: bstore, green: node_modules, blue: node:, purple: native, grey: V8</text>`,
    ...body,
    `</svg>`,
    '',
  ].join('\n');
}

/** The text summary of one service: busy time, then the top self-time and inclusive functions. */
export function summaryText(service: string, folded: Folded, top = 25, perSaga?: number): string {
  const { self, inclusive } = rank(folded);
  const busyMs = folded.busyUs / 1000;
  const row = (r: Ranked) =>
    `  ${(r.us / 1000).toFixed(1).padStart(9)} ms ${((r.us / (folded.busyUs || 1)) * 100).toFixed(1).padStart(5)} %${perSaga ? ` ${((r.us / 1000) / perSaga).toFixed(3).padStart(7)} ms/saga` : ''}  ${r.name}`;
  return [
    `=== ${service} ===`,
    `window ${((folded.toUs - folded.fromUs) / 1e6).toFixed(1)} s, busy ${busyMs.toFixed(0)} ms, idle ${(folded.idleUs / 1000).toFixed(0)} ms${perSaga ? `, ${(busyMs / perSaga).toFixed(2)} ms busy per completed saga` : ''}`,
    `top self time:`,
    ...self.slice(0, top).map(row),
    `top inclusive time:`,
    ...inclusive.slice(0, top).map(row),
    '',
  ].join('\n');
}
