import { parse as parseDuration } from 'tinyduration';

/**
 * A service's configuration as data: each setting names its environment variable, says its default
 * the way the README's tables show it, and reads and checks its value. A service module lists its
 * settings once (its schema); every host reads them from the same schema, and a test checks the
 * README's tables against the schemas, so a setting and its documentation cannot drift apart.
 *
 * A bad value throws a `ConfigError` naming the variable, so a process with a bad setting stops at
 * once with a message that says what to fix.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** The variables a setting is read from: `process.env`, or a host's own map. */
export type Env = Readonly<Record<string, string | undefined>>;

export interface Setting<T> {
  /** The environment variable. */
  readonly variable: string;
  /** The default as documented (`1500`, `P7D`, `—` for none, or a formula). */
  readonly defaultText: string;
  /** Reads the value from `env`, or returns the default; throws a ConfigError for a bad value. */
  read(env: Env): T;
}

export type SettingsSchema = Readonly<Record<string, Setting<unknown>>>;

/** The values of a schema's settings, by the schema's keys. */
export type SettingsOf<S extends SettingsSchema> = { -readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

/** Reads every setting of `schema` from `env` (the first bad one throws). */
export function readSettings<S extends SettingsSchema>(schema: S, env: Env): SettingsOf<S> {
  const values: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(schema)) {
    const value = setting.read(env);
    if (value !== undefined) values[key] = value;
  }
  return values as SettingsOf<S>;
}

/**
 * A service's configuration with the schema's defaults for whatever `config` leaves out (or sets
 * to undefined): what a composition root built directly (a test) gets, so a default is written
 * once, in the schema, for every host and for the service itself.
 */
export function withDefaults<S extends SettingsSchema, C extends object>(schema: S, config: C): SettingsOf<S> & Omit<C, keyof S> {
  const merged: Record<string, unknown> = { ...readSettings(schema, {}) };
  for (const [key, value] of Object.entries(config)) if (value !== undefined) merged[key] = value;
  return merged as SettingsOf<S> & Omit<C, keyof S>;
}

/** The variables of a schema, each with its documented default. */
export function describeSettings(schema: SettingsSchema): { variable: string; defaultText: string }[] {
  return Object.values(schema).map(({ variable, defaultText }) => ({ variable, defaultText }));
}

const raw = (env: Env, name: string): string | undefined => {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value;
};

const define = <T>(variable: string, defaultText: string, read: (env: Env) => T): Setting<T> => ({ variable, defaultText, read });

const MS = { weeks: 7 * 86_400_000, days: 86_400_000, hours: 3_600_000, minutes: 60_000, seconds: 1000 } as const;

/** Checks a whole number: the value, or a ConfigError naming the variable. */
function wholeNumber(name: string, text: string, range: { min: number; max: number }): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new ConfigError(`${name} must be a whole number from ${range.min} to ${range.max}, not ${JSON.stringify(text)}`);
  }
  return value;
}

/** Checks a URL with one of `protocols` (credentials in a bad value are not echoed back). */
function checkedUrl(name: string, text: string, protocols: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(`${name} is not a URL (expected ${protocols.map((p) => `${p}//…`).join(' or ')})`);
  }
  if (!protocols.includes(url.protocol)) throw new ConfigError(`${name} must start with ${protocols.join(' or ')}, not ${url.protocol}`);
  if (url.hostname === '') throw new ConfigError(`${name} has no host`);
  return text;
}

const items = (text: string | undefined): string[] =>
  (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

/** The kinds of setting. Each returns a `Setting`; `optional*` ones have no default (undefined when unset). */
export const setting = {
  /** A whole number in a range. */
  int: (variable: string, fallback: number, range: { min: number; max: number }): Setting<number> =>
    define(variable, String(fallback), (env) => {
      const text = raw(env, variable);
      return text === undefined ? fallback : wholeNumber(variable, text, range);
    }),

  /** A whole number with no default: undefined when unset (the service derives one; `defaultText` says how). */
  optionalInt: (variable: string, range: { min: number; max: number }, defaultText: string): Setting<number | undefined> =>
    define(variable, defaultText, (env) => {
      const text = raw(env, variable);
      return text === undefined ? undefined : wholeNumber(variable, text, range);
    }),

  /**
   * An ISO 8601 duration (`P7D`, `P14D`, `PT30S`, `P1DT12H`, `P2W`) as milliseconds. Years and
   * months are refused: their length depends on the calendar, and a deadline must not.
   */
  duration: (variable: string, fallback: string, range: { minMs: number; maxMs: number }): Setting<number> =>
    define(variable, fallback, (env) => {
      const text = raw(env, variable)?.trim() ?? fallback;
      const explain = `${variable} must be an ISO 8601 duration such as P7D, PT12H or PT30S (weeks, days, hours, minutes, seconds), from ${range.minMs / 1000} s to ${range.maxMs / 86_400_000} days, not ${JSON.stringify(text)}`;
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
    }),

  /** `true`/`false` (also 1/0, yes/no). */
  bool: (variable: string, fallback: boolean): Setting<boolean> =>
    define(variable, String(fallback), (env) => {
      const text = raw(env, variable)?.trim().toLowerCase();
      if (text === undefined) return fallback;
      if (['true', '1', 'yes'].includes(text)) return true;
      if (['false', '0', 'no'].includes(text)) return false;
      throw new ConfigError(`${variable} must be true or false, not ${JSON.stringify(env[variable])}`);
    }),

  /** One of a fixed set of words. */
  choice: <T extends string>(variable: string, allowed: readonly T[], fallback: T): Setting<T> =>
    define(variable, fallback, (env) => {
      const text = raw(env, variable);
      if (text === undefined) return fallback;
      if (!(allowed as readonly string[]).includes(text)) throw new ConfigError(`${variable} must be one of ${allowed.join(', ')}, not ${JSON.stringify(text)}`);
      return text as T;
    }),

  /** An identifier matching `pattern` (a schema, stream or key prefix). */
  name: (variable: string, pattern: RegExp, fallback: string): Setting<string> =>
    define(variable, fallback, (env) => {
      const text = raw(env, variable);
      if (text === undefined) return fallback;
      if (!pattern.test(text)) throw new ConfigError(`${variable} must match ${String(pattern)}, not ${JSON.stringify(text)}`);
      return text;
    }),

  /** An identifier with no default: undefined when unset. */
  optionalName: (variable: string, pattern: RegExp): Setting<string | undefined> =>
    define(variable, '—', (env) => {
      const text = raw(env, variable);
      if (text === undefined) return undefined;
      if (!pattern.test(text)) throw new ConfigError(`${variable} must match ${String(pattern)}, not ${JSON.stringify(text)}`);
      return text;
    }),

  /** A URL whose scheme is one of `protocols` (e.g. `postgres:`). */
  url: (variable: string, protocols: readonly string[], fallback: string): Setting<string> =>
    define(variable, fallback, (env) => {
      const text = raw(env, variable);
      return text === undefined ? fallback : checkedUrl(variable, text, protocols);
    }),

  /**
   * A comma-separated list of URLs (the replicas of one upstream, the servers of a cluster), each
   * checked like `url`; unset or empty: `[fallback]`.
   */
  urlList: (variable: string, protocols: readonly string[], fallback: string): Setting<string[]> =>
    define(variable, fallback, (env) => {
      const list = items(env[variable]);
      return list.length === 0 ? [fallback] : list.map((item) => checkedUrl(variable, item, protocols));
    }),

  /** A comma-separated list whose every item must be one of `allowed`; unset: empty. */
  list: <T extends string>(variable: string, allowed: readonly T[]): Setting<T[]> =>
    define(variable, '—', (env) => {
      const list = items(env[variable]);
      const unknown = list.filter((s) => !(allowed as readonly string[]).includes(s));
      if (unknown.length > 0) throw new ConfigError(`${variable}: unknown ${unknown.join(', ')} (known: ${allowed.join(', ')})`);
      return list as T[];
    }),

  /** Any setting with its own reader (`read` gets the value as given, undefined when unset: an empty value may mean something). */
  custom: <T>(variable: string, defaultText: string, read: (text: string | undefined) => T): Setting<T> => define(variable, defaultText, (env) => read(env[variable])),
};
