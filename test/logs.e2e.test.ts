import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayService, type GatewayService } from '@bstore/gateway';
import { startEmbedded, type EmbeddedSystem } from '@bstore/launcher';
import { createLogger, demoServiceAuth } from '@bstore/platform';
import { eventually } from './support/harness.ts';

/*
 * What the logs never hold, proved against the whole embedded system at level trace, with the
 * product's own logger (createLogger, so its redaction): no issued or presented token, no password,
 * no cookie, no proxy credential. And that the lines are there all the same, so a test that found
 * nothing because nothing was logged would fail.
 */

const RIGHT_PASSWORD = 'alice';
const WRONG_PASSWORD = 'S3cr3t-Wr0ng-Pa55';
const GARBAGE_TOKEN = 'not-a-real-token-Zq9xW7vK3mP1';
const BASIC_CREDENTIAL = 'Basic dXNlcjpHYXJiYWdlLUJhc2ljLTk5';
const COOKIE = 'session=C00kie-Value-Qx81Lm';
const PROXY_AUTHORIZATION = 'Basic UHJveHktU2VjcmV0LVZhbHVlLTc3';
const IDEMPOTENCY_KEY = 'logs-test-idempotency-key-1';

const SERVICES = ['gateway', 'reservation', 'book', 'assignment', 'customercenter', 'notification'] as const;

const raw: string[] = [];
const logger = createLogger({ level: 'trace', destination: { write: (line: string) => void raw.push(line) } });

let system: EmbeddedSystem;
let downGateway: GatewayService;
let base: string;

/** Every token issued or sent in this test: none may appear in a log line. */
const secrets = { issued: [] as string[], sent: [] as string[] };

type Line = Record<string, unknown> & { msg?: string; service?: string; reqId?: string; url?: string; status?: number };

function lines(): Line[] {
  return raw.flatMap((chunk) => chunk.split('\n').filter((l) => l.trim() !== '')).map((l) => JSON.parse(l) as Line);
}

async function signIn(username: string, password: string): Promise<{ status: number; token?: string }> {
  const res = await fetch(`${base}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  const body = (await res.json()) as { access_token?: string };
  if (body.access_token) secrets.issued.push(body.access_token);
  return { status: res.status, ...(body.access_token ? { token: body.access_token } : {}) };
}

async function call(method: string, path: string, headers: Record<string, string>, body?: unknown, url = base) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, requestId: res.headers.get('x-request-id') ?? '', body: (text ? JSON.parse(text) : null) as Record<string, unknown> };
}

/** The request line a service wrote for this request id, once it is there. */
function requestLine(service: string, requestId: string): Promise<Line> {
  return eventually(`the ${service} request line of ${requestId}`, async () => lines().find((l) => l.msg === 'request' && l.service === service && l.reqId === requestId));
}

/** A token with its signature changed: still well-formed, no longer valid. */
function tamper(token: string): string {
  const [header, payload, signature = ''] = token.split('.');
  const flipped = signature.slice(0, 10) + (signature[10] === 'A' ? 'B' : 'A') + signature.slice(11);
  return `${header}.${payload}.${flipped}`;
}

/** What gives a token away: the whole of it, its claims segment, the first 20 characters of its signature. */
function tellTales(token: string): string[] {
  const [, payload = '', signature = ''] = token.split('.');
  return [token, payload, signature.slice(0, 20)].filter((s) => s.length >= 8);
}

const ids = {} as Record<'signIn' | 'refused' | 'reserve' | 'read' | 'page' | 'cancel' | 'staffBooks' | 'staffDeadLetters' | 'libraries' | 'garbage' | 'basic' | 'tampered' | 'cookie' | 'down', string>;

beforeAll(async () => {
  system = await startEmbedded({
    logger,
    ports: { gateway: 0, reservation: 0, assignment: 0, book: 0, customercenter: 0, notification: 0 },
    seedDemoData: true,
    env: { BSTORE_WEB_ROOT: '' },
    reservation: { sweepIntervalMs: 1000, staleAfterMs: 2000 },
    gateway: { rateLimitPerToken: 0, rateLimitPerIp: 0, loginAttemptsPerMinute: 0 },
  });
  base = system.urls.gateway;

  // A gateway whose upstreams are all down: the proxy logs a warning with the error.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  downGateway = await createGatewayService(
    { logger, auth: await demoServiceAuth() },
    { upstreams: { reservation: closedUrl, book: closedUrl, assignment: closedUrl, customercenter: closedUrl, notification: closedUrl }, timeoutMs: 2000 },
  );
  await downGateway.start({ port: 0 });

  // Sign in, rightly and wrongly.
  const alice = await signIn('alice', RIGHT_PASSWORD);
  expect(alice.status).toBe(200);
  const refused = await signIn('alice', WRONG_PASSWORD);
  expect(refused.status).toBe(401);
  const staff = await signIn('librarian', 'librarian');
  expect(staff.status).toBe(200);
  const aliceAuth = { authorization: `Bearer ${alice.token}` };
  const staffAuth = { authorization: `Bearer ${staff.token}` };
  secrets.sent.push(alice.token as string, staff.token as string);

  // The calls of a patron and of staff, with the bearer token.
  const created = await call('POST', '/books', staffAuth, { bookName: 'Logs and what they hold', quantity: 3 });
  expect(created.status).toBe(201);
  ids.staffBooks = created.requestId;
  const reserved = await call('POST', '/reservations', { ...aliceAuth, 'idempotency-key': IDEMPOTENCY_KEY }, { bookId: created.body.bookId });
  expect(reserved.status).toBe(201);
  ids.reserve = reserved.requestId;
  const reservationId = reserved.body.reservationId as number;
  const read = await call('GET', `/reservations/${reservationId}`, aliceAuth);
  expect(read.status).toBe(200);
  ids.read = read.requestId;
  const page = await eventually('the reservation page', async () => {
    const res = await call('GET', `/reservationPages/${reservationId}`, aliceAuth);
    return res.status === 200 ? res : undefined;
  });
  ids.page = page.requestId;
  const cancelled = await call('PATCH', `/reservations/${reservationId}`, aliceAuth, { status: 'bookCancel' });
  expect(cancelled.status).toBe(202);
  ids.cancel = cancelled.requestId;
  const deadLetters = await call('GET', '/admin/dead-letters', staffAuth);
  expect(deadLetters.status).toBe(200);
  ids.staffDeadLetters = deadLetters.requestId;
  const libraries = await call('GET', '/libraries', aliceAuth);
  expect(libraries.status).toBe(200);
  ids.libraries = libraries.requestId;

  // Tokens that are refused: garbage, not a bearer token at all, a valid one tampered with.
  const garbage = await call('GET', '/reservations', { authorization: `Bearer ${GARBAGE_TOKEN}` });
  expect(garbage.status).toBe(401);
  ids.garbage = garbage.requestId;
  const basic = await call('GET', '/reservations', { authorization: BASIC_CREDENTIAL });
  expect(basic.status).toBe(401);
  ids.basic = basic.requestId;
  const tampered = tamper(alice.token as string);
  secrets.sent.push(tampered);
  const refusedTampered = await call('GET', '/reservations', { authorization: `Bearer ${tampered}` });
  expect(refusedTampered.status).toBe(401);
  ids.tampered = refusedTampered.requestId;

  // Other credentials in headers, passed through the proxy to the service.
  const withCookie = await call('GET', `/reservations/${reservationId}`, { ...aliceAuth, cookie: COOKIE, 'proxy-authorization': PROXY_AUTHORIZATION });
  expect(withCookie.status).toBe(200);
  ids.cookie = withCookie.requestId;

  // An upstream that is down: a warning, with the error, for a request carrying every credential.
  const down = await call('GET', '/reservations', { ...aliceAuth, cookie: COOKIE, 'proxy-authorization': PROXY_AUTHORIZATION }, undefined, downGateway.url);
  expect(down.status).toBe(503);
  ids.down = down.requestId;
  await requestLine('gateway', ids.down);
}, 120_000);

afterAll(async () => {
  await downGateway?.stop();
  await system?.stop();
});

describe('the logs, at level trace, of the whole system', () => {
  it('hold the lines of the requests made: each service logs method, url, status and the request id', async () => {
    const signInLine = await requestLine('gateway', lines().find((l) => l.msg === 'sign-in refused')?.reqId ?? 'none');
    expect(signInLine).toMatchObject({ method: 'POST', url: '/auth/token', status: 401 });
    expect(lines().filter((l) => l.msg === 'request' && l.url === '/auth/token' && l.status === 200)).toHaveLength(2);

    // Through the gateway and on to the owning service, with one request id end to end.
    for (const [id, service, method, status] of [
      [ids.staffBooks, 'book', 'POST', 201],
      [ids.reserve, 'reservation', 'POST', 201],
      [ids.read, 'reservation', 'GET', 200],
      [ids.page, 'customercenter', 'GET', 200],
      [ids.cancel, 'reservation', 'PATCH', 202],
      [ids.libraries, 'assignment', 'GET', 200],
      [ids.cookie, 'reservation', 'GET', 200],
    ] as const) {
      const atGateway = await requestLine('gateway', id);
      const atService = await requestLine(service, id);
      for (const line of [atGateway, atService]) expect(line).toMatchObject({ method, status, url: expect.stringMatching(/^\/[a-zA-Z]/) });
      expect(atService.url).toBe(atGateway.url);
    }
    // Reserving holds a copy at book, a call of the reservation service's own.
    expect(lines().some((l) => l.msg === 'request' && l.service === 'book' && /\/holds/.test(String(l.url)))).toBe(true);
    for (const id of [ids.garbage, ids.basic, ids.tampered]) expect(await requestLine('gateway', id)).toMatchObject({ method: 'GET', url: '/reservations', status: 401 });
    expect(await requestLine('gateway', ids.staffDeadLetters)).toMatchObject({ url: '/admin/dead-letters', status: 200 });
    expect(await requestLine('gateway', ids.down)).toMatchObject({ url: '/reservations', status: 503 });
  });

  it('every line is JSON, and every request line names its service and request id', () => {
    const all = lines();
    expect(all.length).toBeGreaterThan(50);
    // Nothing filtered out by level: whatever the services log at trace or debug is here too.
    expect(logger.level).toBe('trace');
    const requests = all.filter((l) => l.msg === 'request');
    for (const line of requests) {
      expect(SERVICES).toContain(line.service);
      expect(line.reqId).toEqual(expect.any(String));
      expect(line).toMatchObject({ method: expect.any(String), url: expect.any(String), status: expect.any(Number), ms: expect.any(Number) });
    }
    for (const service of SERVICES) expect(requests.some((l) => l.service === service)).toBe(true);
  });

  it('log a refused sign-in with the user name, and an upstream failure with its error', () => {
    const all = lines();
    expect(all.find((l) => l.msg === 'sign-in refused')).toMatchObject({ service: 'gateway', username: 'alice', reqId: expect.any(String) });
    expect(all.find((l) => l.msg === 'upstream failed' && l.reqId === ids.down)).toMatchObject({ service: 'gateway', upstream: 'reservation', level: 40, err: expect.any(Object) });
  });

  it('never hold a token, a password, a cookie or a proxy credential', () => {
    const text = raw.join('');
    expect(secrets.issued).toHaveLength(2);
    expect(secrets.sent).toHaveLength(3);
    const forbidden = [
      ...[...secrets.issued, ...secrets.sent].flatMap(tellTales),
      GARBAGE_TOKEN,
      BASIC_CREDENTIAL,
      BASIC_CREDENTIAL.slice('Basic '.length),
      WRONG_PASSWORD,
      COOKIE,
      COOKIE.slice('session='.length),
      PROXY_AUTHORIZATION,
      PROXY_AUTHORIZATION.slice('Basic '.length),
      'authorization":"Bearer',
      'authorization":"Basic',
    ];
    for (const secret of forbidden) expect(text.includes(secret), `a log line holds ${secret.slice(0, 12)}…`).toBe(false);
    // The right password is the user name (demo): it may appear as a name, never as a password.
    expect(text).not.toMatch(/"password":"(?!\[redacted\])/);
    expect(text).not.toMatch(/"(access_)?token":"(?!\[redacted\])/);
  });
});

describe('the logger redacts, whatever the caller passes', () => {
  it('credentials at each path of its redact list', () => {
    const out: string[] = [];
    const log = createLogger({ pretty: false, level: 'trace', destination: { write: (line: string) => void out.push(line) } }).child({ service: 'test' });
    log.info({ req: { headers: { authorization: 'Bearer A1-secret', cookie: 'C1-secret', 'proxy-authorization': 'P1-secret', accept: 'kept-1' } } }, 'one');
    log.info({ headers: { authorization: 'A2-secret', cookie: 'C2-secret', 'proxy-authorization': 'P2-secret', accept: 'kept-2' } }, 'two');
    log.warn({ upstream: { authorization: 'A3-secret', password: 'W3-secret', access_token: 'K3-secret', token: 'T3-secret', name: 'kept-3' } }, 'three');
    log.error({ password: 'W4-secret', access_token: 'K4-secret', token: 'T4-secret', username: 'kept-4' }, 'four');
    log.child({ token: 'T5-secret' }).trace('five');
    const parsed = out.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((l) => l.msg)).toEqual(['one', 'two', 'three', 'four', 'five']);
    expect(out.join('')).not.toMatch(/secret/);
    expect(out.join('')).toMatch(/kept-1[\s\S]*kept-2[\s\S]*kept-3[\s\S]*kept-4/);
    expect(parsed[0]).toMatchObject({ req: { headers: { authorization: '[redacted]', cookie: '[redacted]', 'proxy-authorization': '[redacted]' } } });
    expect(parsed[4]).toMatchObject({ token: '[redacted]' });
  });
});
