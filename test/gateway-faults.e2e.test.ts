import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayService, type GatewayService } from '@bstore/gateway';
import { as, testAuth } from './support/auth.ts';
import { testLogger } from './support/harness.ts';

let hanging: Server;
let broken: Server;
let gateway: GatewayService;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  hanging = createServer(() => {}); // accepts, never answers
  broken = createServer((req) => req.socket.destroy()); // hangs up mid-request
  const hangingUrl = await listen(hanging);
  const brokenUrl = await listen(broken);
  const closed = createServer();
  const closedUrl = await listen(closed);
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  gateway = await createGatewayService(
    { logger: testLogger(), auth: await testAuth() },
    { upstreams: { reservation: closedUrl, book: hangingUrl, assignment: brokenUrl, customercenter: closedUrl, notification: closedUrl }, timeoutMs: 400 },
  );
  await gateway.start({ port: 0 });
});

afterAll(async () => {
  await gateway.stop();
  hanging.closeAllConnections();
  broken.closeAllConnections();
  await Promise.all([hanging, broken].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

describe('the gateway with failing upstreams', () => {
  it('an upstream that is down answers 503 naming the service, with Retry-After', async () => {
    const res = await fetch(`${gateway.url}/reservations/1`, { headers: await as('alice') });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await res.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', service: 'reservation' });
  });

  it('an upstream that is slow answers 504 naming the service, never a hang', async () => {
    // No hang: without the gateway's own timeout this request would outlive the test's timeout.
    const res = await fetch(`${gateway.url}/books`);
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ code: 'UPSTREAM_TIMEOUT', service: 'book' });
  });

  it('an upstream that hangs up after taking the request answers 502 naming the service (it may have acted: not 503)', async () => {
    const res = await fetch(`${gateway.url}/libraries`);
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ code: 'BAD_GATEWAY', service: 'assignment' });
  });

  it('reports degraded upstreams', async () => {
    const res = await fetch(`${gateway.url}/health/upstreams`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'degraded', services: { reservation: 'down' } });
  });
});
