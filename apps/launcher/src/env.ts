import { ConfigError, setting, type Env } from '@bstore/platform';

/**
 * The hosts' own settings (a supervisor's, embedded mode's), read with the same readers as the
 * services' schemas (`setting` in @bstore/platform): each returns a valid value or throws a
 * `ConfigError` naming the variable, so a process with a bad setting stops at once.
 */
export { ConfigError };

export const intSetting = (env: Env, name: string, fallback: number, range: { min: number; max: number }): number => setting.int(name, fallback, range).read(env);

export const listSetting = <T extends string>(env: Env, name: string, allowed: readonly T[]): T[] => setting.list(name, allowed).read(env);

export const choiceSetting = <T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T => setting.choice(name, allowed, fallback).read(env);

export const boolSetting = (env: Env, name: string, fallback: boolean): boolean => setting.bool(name, fallback).read(env);

export const urlSetting = (env: Env, name: string, protocols: readonly string[], fallback: string): string => setting.url(name, protocols, fallback).read(env);

/** A lower-case identifier (a schema or stream name, a claim); `fallback` undefined: none when unset. */
export function nameSetting(env: Env, name: string, pattern: RegExp, fallback: string): string;
export function nameSetting(env: Env, name: string, pattern: RegExp, fallback: undefined): string | undefined;
export function nameSetting(env: Env, name: string, pattern: RegExp, fallback: string | undefined): string | undefined {
  return fallback === undefined ? setting.optionalName(name, pattern).read(env) : setting.name(name, pattern, fallback).read(env);
}
