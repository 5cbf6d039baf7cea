import { describe, expect, it } from 'vitest';
import { ConfigError, describeSettings, readSettings, setting, withDefaults } from '../src/config/settings.ts';

/** The settings readers every service's schema is made of (ADR 0023). */

const schema = {
  count: setting.int('COUNT', 5, { min: 1, max: 10 }),
  derived: setting.optionalInt('DERIVED', { min: 0, max: 100 }, 'max(10, 2 x COUNT)'),
  period: setting.duration('PERIOD', 'P7D', { minMs: 1000, maxMs: 30 * 86_400_000 }),
  on: setting.bool('ON', true),
  mode: setting.choice('MODE', ['redis', 'postgres'] as const, 'redis'),
  prefix: setting.name('PREFIX', /^[a-z:]{1,16}$/, 'app:'),
  schemaName: setting.optionalName('SCHEMA', /^[a-z_]+$/),
  url: setting.url('DB_URL', ['postgres:'], 'postgres://localhost/db'),
  replicas: setting.urlList('UPSTREAM_URL', ['http:', 'https:'], 'http://127.0.0.1:8083'),
  services: setting.list('ONLY', ['book', 'gateway'] as const),
  root: setting.custom('ROOT', 'web/dist', (text) => (text === undefined ? 'web/dist' : text === '' ? undefined : text)),
};

describe('settings schemas', () => {
  it('read every default from an empty environment; an optional setting with none is left out', () => {
    const values = readSettings(schema, {});
    expect(values).toEqual({
      count: 5,
      period: 7 * 86_400_000,
      on: true,
      mode: 'redis',
      prefix: 'app:',
      url: 'postgres://localhost/db',
      replicas: ['http://127.0.0.1:8083'],
      services: [],
      root: 'web/dist',
    });
    expect(values).not.toHaveProperty('derived');
    expect(values).not.toHaveProperty('schemaName');
  });

  it('read given values; blank counts as unset, but a custom reader sees an empty value as given', () => {
    const values = readSettings(schema, {
      COUNT: '7',
      DERIVED: '0',
      PERIOD: 'pt30s',
      ON: 'no',
      MODE: 'postgres',
      PREFIX: '  ',
      SCHEMA: 'book',
      DB_URL: 'postgres://db:5432/x',
      UPSTREAM_URL: ' http://a:1, http://b:2 ,',
      ONLY: 'gateway, book',
      ROOT: '',
    });
    expect(values).toEqual({
      count: 7,
      derived: 0,
      period: 30_000,
      on: false,
      mode: 'postgres',
      prefix: 'app:',
      schemaName: 'book',
      url: 'postgres://db:5432/x',
      replicas: ['http://a:1', 'http://b:2'],
      services: ['gateway', 'book'],
      root: undefined,
    });
  });

  it.each([
    [{ COUNT: '11' }, /COUNT must be a whole number from 1 to 10, not "11"/],
    [{ COUNT: '2.5' }, /COUNT must be a whole number/],
    [{ DERIVED: 'lots' }, /DERIVED must be a whole number from 0 to 100/],
    [{ PERIOD: 'P1M' }, /PERIOD must be an ISO 8601 duration/],
    [{ PERIOD: '7d' }, /PERIOD must be an ISO 8601 duration/],
    [{ ON: 'maybe' }, /ON must be true or false, not "maybe"/],
    [{ MODE: 'mongo' }, /MODE must be one of redis, postgres, not "mongo"/],
    [{ PREFIX: 'App!' }, /PREFIX must match/],
    [{ SCHEMA: 'Book' }, /SCHEMA must match/],
    [{ DB_URL: 'mysql://db/x' }, /DB_URL must start with postgres:, not mysql:/],
    [{ DB_URL: 'postgres://user:secret@' }, /DB_URL (is not a URL|has no host)/],
    [{ UPSTREAM_URL: 'http://a:1,b' }, /UPSTREAM_URL is not a URL/],
    [{ ONLY: 'book,catalogue' }, /ONLY: unknown catalogue \(known: book, gateway\)/],
  ])('refuse %j with a ConfigError naming the variable', (env, message) => {
    let thrown: unknown;
    try {
      readSettings(schema, env);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as Error).message).not.toContain('secret');
  });

  it('describe their variables with the documented defaults', () => {
    expect(describeSettings(schema)).toContainEqual({ variable: 'DERIVED', defaultText: 'max(10, 2 x COUNT)' });
    expect(describeSettings(schema)).toContainEqual({ variable: 'PERIOD', defaultText: 'P7D' });
    expect(describeSettings(schema)).toContainEqual({ variable: 'SCHEMA', defaultText: '—' });
    expect(describeSettings(schema).map((s) => s.variable)).toHaveLength(Object.keys(schema).length);
  });

  it("fill what a caller's configuration leaves out (or sets to undefined) with the schema's defaults, and keep the rest", () => {
    const config = withDefaults(schema, { count: 9, on: undefined, extra: 'kept' });
    expect(config.count).toBe(9);
    expect(config.on).toBe(true);
    expect(config.period).toBe(7 * 86_400_000);
    expect(config.extra).toBe('kept');
    expect(config.derived).toBeUndefined();
  });
});
