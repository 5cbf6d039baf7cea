import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayService, type GatewayService } from '@bstore/gateway';
import { REPLICA_STATE_HEADER } from '@bstore/platform';
import { as, asStaff, testAuth } from './support/auth.ts';
import { testLogger } from './support/harness.ts';

/**
 * The gateway in front of several replicas of one service (real HTTP servers that say which
 * replica answered): requests take turns, a replica whose port is closed is passed over without
 * the client seeing an error, and /health/upstreams counts the replicas that are ready.
 */

interface Seen {
  replica: string;
  method: string;
  url: string;
  body: string;
}

const seen: Seen[] = [];
const servers: Server[] = [];
let gateway: GatewayService;
let closedUrl: string;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A replica: answers every request with its name, and 200 to its readiness probe. */
function replica(name: string): Server {
  return createServer((req, res) => {
    void bodyOf(req).then((body) => {
      if (req.url === '/health/ready') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"up"}');
        return;
      }
      seen.push({ replica: name, method: req.method ?? '', url: req.url ?? '', body });
      if (req.url?.startsWith('/admin/dead-letters')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: [], total: 0, limit: 20, offset: 0 }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ replica: name }));
    });
  });
}

async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return url;
}

/** A replica that takes the connection and the request, then hangs up without answering. */
function dropping(name: string): Server {
  return createServer((req) => {
    void bodyOf(req).then((body) => {
      seen.push({ replica: name, method: req.method ?? '', url: req.url ?? '', body });
      req.socket.destroy();
    });
  });
}

/** A replica still in its waiting room: 503 SERVICE_STARTING with the header that says it did nothing. */
function starting(name: string): Server {
  return createServer((req, res) => {
    void bodyOf(req).then((body) => {
      seen.push({ replica: name, method: req.method ?? '', url: req.url ?? '', body });
      res
        .writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '2', [REPLICA_STATE_HEADER]: 'starting' })
        .end('{"code":"SERVICE_STARTING","status":503}');
    });
  });
}

let faulty: GatewayService;

beforeAll(async () => {
  const [r1, r2, a1, b1, c1] = await Promise.all([replica('reservation-1'), replica('reservation-2'), replica('assignment-1'), replica('book-1'), replica('customercenter-1')].map(listen));
  closedUrl = await closedPort();
  gateway = await createGatewayService(
    { logger: testLogger(), auth: await testAuth() },
    {
      upstreams: {
        // The closed port is a replica that died: it sits between the two live ones.
        reservation: [r1 as string, closedUrl, r2 as string],
        assignment: [closedUrl, a1 as string],
        book: b1 as string,
        customercenter: c1 as string,
        notification: c1 as string,
      },
      timeoutMs: 2000,
    },
  );
  await gateway.start({ port: 0 });

  const [drop, live, wait, live2] = await Promise.all([dropping('book-dropping'), replica('book-live'), starting('customercenter-starting'), replica('customercenter-live')].map(listen));
  const secondClosed = await closedPort();
  faulty = await createGatewayService(
    { logger: testLogger(), auth: await testAuth() },
    {
      upstreams: {
        // The first replica in turn is the faulty one.
        book: [drop as string, live as string],
        customercenter: [wait as string, live2 as string],
        reservation: [closedUrl, secondClosed],
        assignment: live as string,
        notification: live2 as string,
      },
      timeoutMs: 2000,
    },
  );
  await faulty.start({ port: 0 });
});

afterAll(async () => {
  await gateway.stop();
  await faulty.stop();
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

describe('the gateway in front of several replicas', () => {
  it('sends requests to the live replicas in turn; one with a closed port is passed over, and the client sees no error', async () => {
    seen.length = 0;
    const headers = await as('alice');
    const answers: string[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${gateway.url}/reservations/${i + 1}`, { headers });
      expect(res.status).toBe(200);
      answers.push(((await res.json()) as { replica: string }).replica);
    }
    // Both live replicas took a share; none of the twelve failed.
    expect(answers.filter((r) => r === 'reservation-1').length).toBeGreaterThanOrEqual(4);
    expect(answers.filter((r) => r === 'reservation-2').length).toBeGreaterThanOrEqual(4);
    expect(seen.map((s) => s.url)).toEqual(Array.from({ length: 12 }, (_, i) => `/reservations/${i + 1}`));
  });

  it('a POST that could not connect goes to the next replica with its body, and reaches exactly one replica', async () => {
    seen.length = 0;
    const headers = { ...(await as('alice')), 'content-type': 'application/json' };
    const res = await fetch(`${gateway.url}/assignments`, { method: 'POST', headers, body: '{"reservationId":7}' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ replica: 'assignment-1' });
    expect(seen).toEqual([{ replica: 'assignment-1', method: 'POST', url: '/assignments', body: '{"reservationId":7}' }]);
  });

  it('a dead-letter list reaches a live replica of each service', async () => {
    const res = await fetch(`${gateway.url}/admin/dead-letters`, { headers: await asStaff() });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ items: [], partial: false, failures: [] });
  });

  it('/health/upstreams says up while one replica of each service is ready, and counts them', async () => {
    const res = await fetch(`${gateway.url}/health/upstreams`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: 'up',
      services: { reservation: 'up', assignment: 'up', book: 'up', customercenter: 'up', notification: 'up' },
      replicas: {
        reservation: { up: 2, total: 3 },
        assignment: { up: 1, total: 2 },
        book: { up: 1, total: 1 },
        customercenter: { up: 1, total: 1 },
        notification: { up: 1, total: 1 },
      },
    });
  });
});

describe('the gateway in front of replicas that fail', () => {
  it('a replica that hangs up after taking the request is not retried elsewhere: the client gets 502, the request reached one replica', async () => {
    seen.length = 0;
    const headers = { ...(await asStaff()), 'content-type': 'application/json' };
    const res = await fetch(`${faulty.url}/books`, { method: 'POST', headers, body: '{"bookName":"Once","quantity":1}' });
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(await res.json()).toMatchObject({ code: 'BAD_GATEWAY', service: 'book', detail: expect.stringContaining('may have been carried out') });
    expect(seen.map((s) => s.replica)).toEqual(['book-dropping']);
  });

  it('a replica still starting (its waiting room) did nothing: the request goes on to the next, which answers, and the starting one is passed over after that', async () => {
    seen.length = 0;
    const headers = await as('alice');
    const first = await fetch(`${faulty.url}/reservationPages/1`, { headers });
    expect(first.status).toBe(200);
    expect(first.headers.get('retry-after')).toBeNull();
    expect(await first.json()).toEqual({ replica: 'customercenter-live' });
    const second = await fetch(`${faulty.url}/reservationPages/2`, { headers });
    expect(await second.json()).toEqual({ replica: 'customercenter-live' });
    expect(seen.map((s) => `${s.replica} ${s.url}`)).toEqual(['customercenter-starting /reservationPages/1', 'customercenter-live /reservationPages/1', 'customercenter-live /reservationPages/2']);
  });

  it('when no replica takes the connection, the client gets 503 UPSTREAM_UNAVAILABLE with Retry-After', async () => {
    const res = await fetch(`${faulty.url}/reservations/1`, { headers: await as('alice') });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await res.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', service: 'reservation' });
  });
});
