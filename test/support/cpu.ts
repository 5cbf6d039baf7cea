import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time read from Linux's /proc, for the measuring commands (`npm run test:scale`,
 * `npm run bench`): what a process, or the whole machine, has spent so far. Elsewhere (no /proc)
 * every reading is undefined and the reports say "unknown".
 */

/** Linux's USER_HZ: /proc counts CPU time in these ticks. */
const CLOCK_TICKS = 100;

/** A process's CPU time so far (user + system, /proc/<pid>/stat), in ms; undefined when it is gone. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    return (ticks * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** The ids of the processes whose command name (/proc/<pid>/comm) is `name`, e.g. every `postgres` backend. */
export function pidsNamed(name: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) pids.push(Number(entry));
    } catch {
      // It ended while we looked.
    }
  }
  return pids;
}

/** The machine's CPU time so far, busy and total, in ticks (/proc/stat's first line). */
export function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const [, ...values] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/);
    const ticks = values.map(Number);
    const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0); // idle, iowait
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** The share of the machine's CPU that was busy between two readings, in percent; null when unknown. */
export function busyPercent(start: ReturnType<typeof machineCpu>, end: ReturnType<typeof machineCpu>): number | null {
  if (!start || !end) return null;
  const total = end.total - start.total;
  return total > 0 ? (100 * (end.busy - start.busy)) / total : null;
}
