import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceAuth } from '@bstore/platform';
import { createGatewayService, type GatewayService } from '@bstore/gateway';
import { testLogger } from '../../../test/support/harness.ts';
import { testAuth } from '../../../test/support/auth.ts';

/**
 * The gateway's own check of bearer tokens, in front of a fake upstream that records what reaches
 * it: a good token is passed on, a bad one never leaves the gateway. (Sign-in itself: auth.test.ts.)
 */
const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
let upstream: Server;
let gateway: GatewayService;
let auth: ServiceAuth;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true }));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  auth = await testAuth();
  const upstreams = { reservation: upstreamUrl, book: upstreamUrl, assignment: upstreamUrl, customercenter: upstreamUrl, notification: upstreamUrl };
  gateway = await createGatewayService({ logger: testLogger(), auth }, { upstreams });
  await gateway.start({ port: 0 });
});

afterAll(async () => {
  await gateway.stop();
  upstream.closeAllConnections();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

const signIn = (body: unknown) =>
  fetch(`${gateway.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('bearer tokens at the gateway', () => {
  it("passes a signed-in caller's token on to the service", async () => {
    const token = ((await (await signIn({ username: 'alice', password: 'alice' })).json()) as { access_token: string }).access_token;
    const res = await fetch(`${gateway.url}/reservations/41`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(seen.find((r) => r.url === '/reservations/41')?.headers.authorization).toBe(`Bearer ${token}`);
  });

  it('refuses a bad token itself with 401 INVALID_TOKEN: the service never sees it', async () => {
    const internal = await auth.internalFor('reservation').token();
    for (const authorization of ['Bearer garbage', 'Basic YWxpY2U6YWxpY2U=', `Bearer ${internal}`]) {
      const before = seen.length;
      const res = await fetch(`${gateway.url}/reservations/42`, { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="bstore"/);
      expect(await res.json()).toMatchObject({ code: 'INVALID_TOKEN' });
      expect(seen.length).toBe(before);
    }
  });

  it("does not publish book's internal hold route: 404 without a token, and a service token is no user token (401)", async () => {
    const internal = await auth.internalFor('reservation').token();
    const before = seen.length;
    const hold = (headers: Record<string, string>) =>
      fetch(`${gateway.url}/books/1/holds/1`, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: '{"customerId":"alice"}' });
    const anonymous = await hold({});
    expect(anonymous.status).toBe(404);
    expect(await anonymous.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
    const withInternal = await hold({ authorization: `Bearer ${internal}` });
    expect(withInternal.status).toBe(401);
    expect(await withInternal.json()).toMatchObject({ code: 'INVALID_TOKEN' });
    expect(seen.length).toBe(before);
  });
});
