import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayService, type GatewayConfig, type GatewayService } from '@bstore/gateway';
import { demoToken } from '@bstore/platform';
import { testLogger } from '../../../test/support/harness.ts';
import { as, tokenFor, testAuth } from '../../../test/support/auth.ts';

/** A fake upstream: answers 200 JSON and remembers the headers of every request it got. */
const seen: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];
let upstream: Server;
let upstreamUrl: string;
const gateways: GatewayService[] = [];

const ALLOWED = 'https://app.example.org';

async function gateway(config: Omit<GatewayConfig, 'upstreams'>): Promise<string> {
  const service = await createGatewayService(
    { logger: testLogger(), auth: await testAuth() },
    { upstreams: { reservation: upstreamUrl, book: upstreamUrl, assignment: upstreamUrl, customercenter: upstreamUrl, notification: upstreamUrl }, ...config },
  );
  gateways.push(service);
  await service.start({ port: 0 });
  return service.url;
}

let tokenLimited: string; // 3 a minute per caller
let ipLimited: string; // 3 a minute per address
let plain: string; // the defaults: no CORS

beforeAll(async () => {
  upstream = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (req.url?.startsWith('/health/ready')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"up"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, url: req.url }));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  tokenLimited = await gateway({ rateLimit: { perTokenPerMinute: 3, perIpPerMinute: 1000 }, corsOrigins: [ALLOWED, 'http://localhost:5173'] });
  ipLimited = await gateway({ rateLimit: { perTokenPerMinute: 1000, perIpPerMinute: 3 } });
  plain = await gateway({});
});

afterAll(async () => {
  for (const g of gateways) await g.stop();
  upstream.closeAllConnections();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

function expectSecurityHeaders(res: Response): void {
  expect(res.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('x-frame-options')).toBe('DENY');
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  const csp = res.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
}

async function expectRateLimited(res: Response, scope: 'ip' | 'token'): Promise<void> {
  expect(res.status).toBe(429);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
  expectSecurityHeaders(res);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ type: 'urn:bstore:problem:rate-limited', title: 'Too Many Requests', status: 429, code: 'RATE_LIMITED', limit: 3, scope });
  expect(typeof body.detail).toBe('string');
}

describe('gateway rate limits', () => {
  /** `fetch` options with a bearer token. */
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

  it('limits one bearer token, and another token is not affected', async () => {
    const [one, two] = [await tokenFor('rate-one'), await tokenFor('rate-two')];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${tokenLimited}/books`, bearer(one));
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBe('3');
      expect(res.headers.get('x-ratelimit-remaining')).toBe(String(2 - i));
    }
    const before = seen.length;
    await expectRateLimited(await fetch(`${tokenLimited}/books`, bearer(one)), 'token');
    expect(seen.length).toBe(before); // refused at the gateway: the service never saw it
    expect((await fetch(`${tokenLimited}/books`, bearer(two))).status).toBe(200);
    // Anonymous calls count only against the (large) per-IP limit.
    expect((await fetch(`${tokenLimited}/books`)).status).toBe(200);
  });

  it('the caller is the bearer token: two tokens of one customer have separate budgets, and X-Customer-Id is nobody', async () => {
    // Two sign-ins of the same customer: two tokens (each has its own jti), two budgets.
    const first = (await demoToken({ customerId: 'dora', role: 'customer' }, 600)).access_token;
    const second = (await demoToken({ customerId: 'dora', role: 'customer' }, 600)).access_token;
    expect(second).not.toBe(first);
    for (let i = 0; i < 3; i++) expect((await fetch(`${tokenLimited}/reservations`, bearer(first))).status).toBe(200);
    await expectRateLimited(await fetch(`${tokenLimited}/reservations`, bearer(first)), 'token');
    const fresh = await fetch(`${tokenLimited}/reservations`, bearer(second));
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('x-ratelimit-remaining')).toBe('2');
    // The old placeholder header names no caller: without a token only the per-IP limit counts.
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${tokenLimited}/books`, { headers: { 'x-customer-id': 'dora' } });
      expect(res.status).toBe(200);
      expect(Number(res.headers.get('x-ratelimit-remaining'))).toBeGreaterThan(3);
    }
  });

  it('counts a bad token before verifying it: its calls are 401 until the budget is spent, then 429, and none reaches a service', async () => {
    const before = seen.length;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${tokenLimited}/reservations`, bearer('not-a-token'));
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
      expect(await res.json()).toMatchObject({ code: 'INVALID_TOKEN', status: 401 });
    }
    await expectRateLimited(await fetch(`${tokenLimited}/reservations`, bearer('not-a-token')), 'token');
    expect(seen.length).toBe(before);
  });

  it('limits one IP address whatever the token', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await fetch(`${ipLimited}/books`, bearer(await tokenFor(`ip-${i}`)))).status).toBe(200);
    }
    await expectRateLimited(await fetch(`${ipLimited}/books`, bearer(await tokenFor('ip-fresh'))), 'ip');
    await expectRateLimited(await fetch(`${ipLimited}/no-such-route`), 'ip');
  });

  it('never limits the health endpoints', async () => {
    const headers = await as('rate-one');
    for (const base of [tokenLimited, ipLimited]) {
      for (let i = 0; i < 6; i++) {
        for (const path of ['/health/live', '/health/ready', '/health/upstreams']) {
          const res = await fetch(`${base}${path}`, { headers });
          expect(res.status).toBe(200);
        }
      }
    }
  });
});

describe('gateway security headers', () => {
  it('are on proxied answers', async () => {
    const res = await fetch(`${plain}/books/1`);
    expect(res.status).toBe(200);
    expectSecurityHeaders(res);
    expect(await res.json()).toMatchObject({ ok: true });
  });

  it('are on problem answers, which stay application/problem+json', async () => {
    const notFound = await fetch(`${plain}/nowhere`);
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get('content-type')).toContain('application/problem+json');
    expectSecurityHeaders(notFound);
    expect(await notFound.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND', status: 404 });

    const badPath = await fetch(`${plain}/books/a%20b`);
    expect(badPath.status).toBe(400);
    expect(badPath.headers.get('content-type')).toContain('application/problem+json');
    expectSecurityHeaders(badPath);
  });
});

describe('gateway CORS allow-list', () => {
  it('an allowed origin gets its CORS headers on a proxied answer', async () => {
    const res = await fetch(`${tokenLimited}/books`, { headers: { origin: ALLOWED } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(res.headers.get('access-control-expose-headers')).toContain('x-request-id');
    expect(res.headers.get('vary')).toContain('Origin');
  });

  it('a disallowed origin gets no CORS headers, and still its answer', async () => {
    const res = await fetch(`${tokenLimited}/books`, { headers: { origin: 'https://evil.example.com' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(res.headers.get('access-control-expose-headers')).toBeNull();
  });

  it('answers the preflight of an allowed origin', async () => {
    const before = seen.length;
    const res = await fetch(`${tokenLimited}/reservations`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, idempotency-key' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-methods')).toContain('PATCH');
    expect(res.headers.get('access-control-allow-headers')).toBe('content-type, idempotency-key');
    expect(seen.length).toBe(before);
  });

  it('refuses the preflight of a disallowed origin without CORS headers (a 4xx, not forwarded)', async () => {
    for (const base of [tokenLimited, plain]) {
      const before = seen.length;
      const res = await fetch(`${base}/reservations`, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' },
      });
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-methods')).toBeNull();
      expect(await res.json()).toMatchObject({ code: 'CORS_ORIGIN_NOT_ALLOWED', status: 403 });
      expect(seen.length).toBe(before);
    }
  });

  it('with no origins configured (the default) sends no CORS headers at all', async () => {
    const res = await fetch(`${plain}/books`, { headers: { origin: ALLOWED } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses an origin that is not exactly scheme://host[:port]', async () => {
    await expect(gateway({ corsOrigins: ['https://app.example.org/'] })).rejects.toThrow(/not an origin/);
  });
});

describe('gateway request ids', () => {
  it('forwards the client id to the service and returns it', async () => {
    const res = await fetch(`${plain}/reservations/7`, { headers: { 'x-request-id': 'req-abc-123' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('req-abc-123');
    expect(seen.find((r) => r.url === '/reservations/7')?.headers['x-request-id']).toBe('req-abc-123');
  });

  it('generates one when none is given, the same upstream and back', async () => {
    const res = await fetch(`${plain}/libraries?page=2`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(res.status).toBe(200);
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const got = seen.find((r) => r.url === '/libraries?page=2');
    expect(got?.method).toBe('POST');
    expect(got?.headers['x-request-id']).toBe(id);
  });

  it('replaces an invalid id with its own', async () => {
    const res = await fetch(`${plain}/assignments/1`, { headers: { 'x-request-id': 'bad id with spaces' } });
    const id = res.headers.get('x-request-id');
    expect(id).not.toBe('bad id with spaces');
    expect(seen.find((r) => r.url === '/assignments/1')?.headers['x-request-id']).toBe(id);
  });
});
