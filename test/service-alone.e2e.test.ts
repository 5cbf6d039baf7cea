import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endProcess, startServiceProcess, type ServiceProcess } from './support/cluster.ts';
import { freePort } from './support/process.ts';

/**
 * A service started on its own, as in Kubernetes (`npm run start:service -- gateway`), with the
 * settings the README documents for it: the gateway with `BOOK_URL` listing two book replicas
 * (issue 19: such a list used to stop it with "BOOK_URL is not a URL", because every process read
 * every service's settings). The replicas are real HTTP servers that say which one answered.
 */

const servers: Server[] = [];
let gateway: ServiceProcess | undefined;
const answeredBy: string[] = [];

async function bookReplica(name: string): Promise<string> {
  const server = createServer((req, res) => {
    if (req.url === '/health/ready') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"up"}');
      return;
    }
    answeredBy.push(name);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: [], total: 0, limit: 20, offset: 0, replica: name }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const [first, second] = await Promise.all([bookReplica('book-0'), bookReplica('book-1')]);
  gateway = await startServiceProcess('gateway', { PORT: String(await freePort()), BOOK_URL: `${first}, ${second}`, BSTORE_WEB_ROOT: '' });
}, 60_000);

afterAll(async () => {
  if (gateway) await endProcess(gateway);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

describe('a service process started alone', () => {
  it('the gateway starts with a list of book replicas in BOOK_URL and sends requests to them in turn', async () => {
    const live = await fetch(`${gateway?.url}/health/live`);
    expect(live.status).toBe(200);
    const replicas: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${gateway?.url}/books`);
      expect(res.status).toBe(200);
      replicas.push(((await res.json()) as { replica: string }).replica);
    }
    expect(replicas.sort()).toEqual(['book-0', 'book-0', 'book-1', 'book-1']);
    expect(answeredBy).toHaveLength(4);
    // Both replicas are counted, and both are ready (the other services are not running here).
    const upstreams = (await (await fetch(`${gateway?.url}/health/upstreams`)).json()) as { replicas: Record<string, { up: number; total: number }> };
    expect(upstreams.replicas.book).toEqual({ up: 2, total: 2 });
  });
});
