import { parse as parseDuration } from 'tinyduration';

/**
 * Readers of settings from the environment. Each either returns a valid value or throws a
 * `ConfigError` naming the variable, so a process with a bad setting stops at once with a message
 * that says what to fix.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Reads a whole-number setting, or fails at start with a message naming it. */
export function intSetting(env: NodeJS.ProcessEnv, name: string, fallback: number, range: { min: number; max: number }): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new ConfigError(`${name} must be a whole number from ${range.min} to ${range.max}, not ${JSON.stringify(raw)}`);
  }
  return value;
}

const MS = { weeks: 7 * 86_400_000, days: 86_400_000, hours: 3_600_000, minutes: 60_000, seconds: 1000 } as const;

/**
 * Reads an ISO 8601 duration (`P7D`, `P14D`, `PT30S`, `P1DT12H`, `P2W`) as milliseconds. Years and
 * months are refused: their length depends on the calendar, and a deadline must not.
 */
export function durationSetting(env: NodeJS.ProcessEnv, name: string, fallback: string, range: { minMs: number; maxMs: number }): number {
  const raw = env[name]?.trim();
  const text = raw === undefined || raw === '' ? fallback : raw;
  const explain = `${name} must be an ISO 8601 duration such as P7D, PT12H or PT30S (weeks, days, hours, minutes, seconds), from ${range.minMs / 1000} s to ${range.maxMs / 86_400_000} days, not ${JSON.stringify(text)}`;
  let parsed: ReturnType<typeof parseDuration>;
  try {
    parsed = parseDuration(text.toUpperCase());
  } catch {
    throw new ConfigError(explain);
  }
  if (parsed.negative || parsed.years || parsed.months) throw new ConfigError(explain);
  const ms = Math.round(Object.entries(MS).reduce((sum, [unit, factor]) => sum + (parsed[unit as keyof typeof MS] ?? 0) * factor, 0));
  if (!Number.isFinite(ms) || ms < range.minMs || ms > range.maxMs) throw new ConfigError(explain);
  return ms;
}

/** Reads a comma-separated list whose every item must be one of `allowed`. */
export function listSetting<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[]): T[] {
  const items = (env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const unknown = items.filter((s) => !(allowed as readonly string[]).includes(s));
  if (unknown.length > 0) throw new ConfigError(`${name}: unknown ${unknown.join(', ')} (known: ${allowed.join(', ')})`);
  return items as T[];
}

/** Reads one of a fixed set of words. */
export function choiceSetting<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, not ${JSON.stringify(raw)}`);
  return raw as T;
}

/** Reads `true`/`false` (also 1/0, yes/no). */
export function boolSetting(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['true', '1', 'yes'].includes(raw)) return true;
  if (['false', '0', 'no'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, not ${JSON.stringify(env[name])}`);
}

/**
 * Reads a URL whose scheme is one of `protocols` (e.g. `postgres:`). Credentials in a bad value
 * are not echoed back in the message.
 */
export function urlSetting(env: NodeJS.ProcessEnv, name: string, protocols: readonly string[], fallback: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a URL (expected ${protocols.map((p) => `${p}//…`).join(' or ')})`);
  }
  if (!protocols.includes(url.protocol)) throw new ConfigError(`${name} must start with ${protocols.join(' or ')}, not ${url.protocol}`);
  if (url.hostname === '') throw new ConfigError(`${name} has no host`);
  return raw;
}

/**
 * Reads a comma-separated list of URLs (the replicas of one upstream, the servers of a cluster),
 * each checked like `urlSetting`; unset or empty: `[fallback]`.
 */
export function urlListSetting(env: NodeJS.ProcessEnv, name: string, protocols: readonly string[], fallback: string): string[] {
  const items = (env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0) return [fallback];
  return items.map((item) => urlSetting({ [name]: item }, name, protocols, fallback));
}

/** Reads a lower-case identifier (a schema or stream name). */
export function nameSetting(env: NodeJS.ProcessEnv, name: string, pattern: RegExp, fallback: string | undefined): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!pattern.test(raw)) throw new ConfigError(`${name} must match ${String(pattern)}, not ${JSON.stringify(raw)}`);
  return raw;
}
