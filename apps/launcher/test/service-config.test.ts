import { describe, expect, it } from 'vitest';
import { readSettings, setting } from '@bstore/platform';
import { reservationSettings } from '@bstore/reservation';
import { readDatabaseConfig, readServiceConfig } from '../src/service-config.ts';

const durationSetting = (env: Record<string, string>, name: string, fallback: string, range: { minMs: number; maxMs: number }) => setting.duration(name, fallback, range).read(env);
/** The deadlines as reservation reads them. */
const readLendingSettings = (env: Record<string, string>) => {
  const { pickupPeriodMs, loanPeriodMs, deadlineSweepIntervalMs } = readSettings(reservationSettings, env);
  return { pickupPeriodMs, loanPeriodMs, deadlineSweepIntervalMs };
};

/** The settings a deployment (compose.yaml, deploy/k8s) gives a service process. */
const demo = { BSTORE_DEMO_AUTH: 'true' };

describe('a service process configuration for deployments', () => {
  it('gives the gateway each upstream as a list of replica URLs (one by default)', () => {
    const config = readServiceConfig(
      { ...demo, RESERVATION_URL: 'http://10.0.0.1:8081, http://10.0.0.2:8081,http://10.0.0.3:8081', ASSIGNMENT_URL: 'http://assignment:8082' },
      'gateway',
    );
    expect(config.settings).toMatchObject({
      reservationUrl: ['http://10.0.0.1:8081', 'http://10.0.0.2:8081', 'http://10.0.0.3:8081'],
      assignmentUrl: ['http://assignment:8082'],
      bookUrl: ['http://127.0.0.1:8083'],
      customercenterUrl: ['http://127.0.0.1:8084'],
      notificationUrl: ['http://127.0.0.1:8085'],
    });
    expect(() => readServiceConfig({ ...demo, RESERVATION_URL: 'http://a:8081,ftp://b' }, 'gateway')).toThrow(/RESERVATION_URL must start with http: or https:/);
  });

  it('accepts a list of book replicas in BOOK_URL for reservation and the gateway alike (the README promises it everywhere)', () => {
    const env = { ...demo, BSTORE_INTERNAL_KEY: 'k'.repeat(32), BOOK_URL: 'http://book-0:8083, http://book-1:8083' };
    expect(readServiceConfig(env, 'gateway').settings.bookUrl).toEqual(['http://book-0:8083', 'http://book-1:8083']);
    expect(readServiceConfig(env, 'reservation').settings.bookUrl).toEqual(['http://book-0:8083', 'http://book-1:8083']);
    expect(() => readServiceConfig({ ...env, BOOK_URL: 'http://book-0:8083,book-1' }, 'reservation')).toThrow(/BOOK_URL is not a URL/);
  });

  it("reads only its own service's settings: a bad value of another service's setting does not stop it", () => {
    const env = { ...demo, BOOK_TIMEOUT_MS: 'soon', UPSTREAM_TIMEOUT_MS: 'later' };
    expect(() => readServiceConfig(env, 'gateway')).toThrow(/UPSTREAM_TIMEOUT_MS must be a whole number/);
    expect(() => readServiceConfig({ ...env, UPSTREAM_TIMEOUT_MS: '' }, 'gateway')).not.toThrow();
    expect(() => readServiceConfig({ ...env, BSTORE_INTERNAL_KEY: 'k'.repeat(32) }, 'reservation')).toThrow(/BOOK_TIMEOUT_MS must be a whole number/);
    expect(() => readServiceConfig({ ...env, UPSTREAM_TIMEOUT_MS: '' }, 'assignment')).not.toThrow();
    // The gateway reads no bus and no database.
    expect(readServiceConfig({ ...demo, NATS_URL: 'nope' }, 'gateway')).not.toHaveProperty('nats');
  });

  it("leaves reservation's derived settings unset unless given, so the service derives them from the book timeout", () => {
    const settings = readServiceConfig({ ...demo, BSTORE_INTERNAL_KEY: 'k'.repeat(32) }, 'reservation').settings;
    expect(settings.staleAfterMs).toBeUndefined();
    expect(settings.idempotencyLockMs).toBeUndefined();
    expect(readServiceConfig({ ...demo, BSTORE_INTERNAL_KEY: 'k'.repeat(32), BSTORE_PENDING_STALE_AFTER_MS: '2000' }, 'reservation').settings.staleAfterMs).toBe(2000);
  });

  it('refuses an unknown service, naming the ones it knows', () => {
    expect(() => readServiceConfig(demo, 'catalogue')).toThrow(/unknown service "catalogue" .*known: book, assignment, customercenter, notification, reservation, gateway/);
  });

  it('reads the NATS servers as a list and the stream replicas (at most 5; unset: not changed)', () => {
    const config = readServiceConfig({ ...demo, NATS_URL: 'nats://nats-0:4222,nats://nats-1:4222', BSTORE_STREAM_REPLICAS: '3' }, 'assignment');
    expect(config.nats).toEqual({ servers: ['nats://nats-0:4222', 'nats://nats-1:4222'], stream: 'BSTORE', streamReplicas: 3 });
    // Unset: the stream is created with 1, and an existing stream keeps its replicas.
    expect(readServiceConfig(demo, 'book').nats).toEqual({ servers: ['nats://127.0.0.1:4222'], stream: 'BSTORE' });
    expect(() => readServiceConfig({ ...demo, BSTORE_STREAM_REPLICAS: '7' }, 'book')).toThrow(/BSTORE_STREAM_REPLICAS must be a whole number from 1 to 5/);
  });

  it('migrates at start unless DATABASE_MIGRATE=false, which leaves the schema to the migration job', () => {
    expect(readDatabaseConfig({}, 'book')).toMatchObject({ kind: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/bstore_book', migrations: 'apply' });
    expect(readDatabaseConfig({ DATABASE_MIGRATE: 'false', DATABASE_URL: 'postgres://bstore@db:5432/bstore_reservation' }, 'reservation')).toMatchObject({
      url: 'postgres://bstore@db:5432/bstore_reservation',
      migrations: 'verify',
    });
    expect(readServiceConfig({ ...demo, DATABASE_MIGRATE: 'false' }, 'assignment').database?.migrations).toBe('verify');
    expect(() => readDatabaseConfig({ DATABASE_MIGRATE: 'later' }, 'book')).toThrow(/DATABASE_MIGRATE must be true or false/);
  });

  it('has no database for the gateway, nor for customercenter on Redis', () => {
    expect(readDatabaseConfig({}, 'gateway')).toBeUndefined();
    expect(readDatabaseConfig({}, 'customercenter')).toBeUndefined();
    expect(readDatabaseConfig({ BSTORE_READ_MODEL: 'postgres' }, 'customercenter')).toMatchObject({ url: 'postgres://postgres@127.0.0.1:5432/bstore_customercenter' });
  });
});

describe("the library's deadlines (ADR 0022)", () => {
  const DAY = 86_400_000;

  it('default to a 7-day pickup, a 14-day loan and a sweep every minute, for reservation and assignment alike', () => {
    expect(readLendingSettings({})).toEqual({ pickupPeriodMs: 7 * DAY, loanPeriodMs: 14 * DAY, deadlineSweepIntervalMs: 60_000 });
    const reservation = readServiceConfig(
      { ...demo, BSTORE_INTERNAL_KEY: 'k'.repeat(32), BSTORE_PICKUP_PERIOD: 'PT30S', BSTORE_LOAN_PERIOD: 'P2W', BSTORE_DEADLINE_SWEEP_INTERVAL_MS: '500' },
      'reservation',
    );
    expect(reservation.settings).toMatchObject({ pickupPeriodMs: 30_000, loanPeriodMs: 14 * DAY, deadlineSweepIntervalMs: 500 });
    expect(readServiceConfig({ ...demo, BSTORE_PICKUP_PERIOD: 'PT30S' }, 'assignment').settings).toEqual({ pickupPeriodMs: 30_000 });
  });

  it.each([
    ['P7D', 7 * DAY],
    ['PT30S', 30_000],
    ['pt1m', 60_000],
    ['P1DT12H', 1.5 * DAY],
    ['PT1.5S', 1500],
    ['P1W', 7 * DAY],
    ['PT0.5M', 30_000],
  ])('reads the ISO 8601 duration %s', (text, ms) => {
    expect(durationSetting({ D: text }, 'D', 'P7D', { minMs: 1000, maxMs: 366 * DAY })).toBe(ms);
  });

  it.each([
    ['P1M', 'months depend on the calendar'],
    ['P1Y', 'years depend on the calendar'],
    ['-P1D', 'negative'],
    ['PT0S', 'below the minimum of 1 s'],
    ['P400D', 'above 366 days'],
    ['7d', 'not ISO 8601'],
    ['P', 'empty'],
    ['604800000', 'a number of milliseconds'],
  ])('refuses %s (%s), naming the variable', (text) => {
    expect(() => readLendingSettings({ BSTORE_LOAN_PERIOD: text })).toThrow(/BSTORE_LOAN_PERIOD must be an ISO 8601 duration such as P7D/);
  });

  it('refuses a sweep interval that is not a whole number of milliseconds', () => {
    expect(() => readLendingSettings({ BSTORE_DEADLINE_SWEEP_INTERVAL_MS: '1m' })).toThrow(/BSTORE_DEADLINE_SWEEP_INTERVAL_MS must be a whole number/);
  });
});
