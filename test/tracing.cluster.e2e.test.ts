import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from './support/cluster.ts';
import { eventually } from './support/harness.ts';
import { startPrivateNats, type PrivateNats } from './support/nats.ts';
import { startPrivateRedis } from './support/redis.ts';
import { client } from './support/system.ts';

/*
 * Tracing as an operator turns it on: the five services as their own processes, on PostgreSQL,
 * NATS JetStream and Redis, given only the standard OTEL_* variables, export their spans over
 * OTLP/HTTP to a receiver (here the test, as a collector would be); one reservation's spans, from
 * all six processes, share the trace id its timeline shows.
 */

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
}
interface OtlpExport {
  resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

const spans: (OtlpSpan & { service: string })[] = [];
let receiver: Server;
let nats: PrivateNats;
let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
let cluster: TestCluster;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport;
        for (const rs of body.resourceSpans) {
          const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '?';
          for (const ss of rs.scopeSpans) for (const span of ss.spans) spans.push({ ...span, service });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  [nats, redis] = await Promise.all([startPrivateNats(), startPrivateRedis()]);
  cluster = await startCluster({
    natsUrl: nats.url,
    redisUrl: redis.url,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
  });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await Promise.all([nats?.stop(), redis?.stop()]);
  await new Promise((resolve) => receiver?.close(resolve));
});

describe('tracing in cluster mode', () => {
  it('exports one trace per reservation from all six processes over OTLP', async () => {
    const librarian = client(cluster.gateway, 'librarian', 'staff');
    const alice = client(cluster.gateway, 'alice');
    const book = await librarian.createBook('Observability Engineering', 3);
    expect(book.status).toBe(201);
    const reserved = await alice.reserve(book.body.bookId);
    expect(reserved.status).toBe(201);
    const page = await eventually('the page to show bookReserved', async () => {
      const p = await alice.call<{ status: string; timeline: { eventType: string; traceId: string | null }[] }>('GET', `/reservationPages/${reserved.body.reservationId}`);
      return p.body.status === 'bookReserved' && p.body.timeline.length === 2 ? p.body : undefined;
    });
    const traceId = page.timeline[0]?.traceId;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(page.timeline[1]?.traceId).toBe(traceId);

    // Batches leave each process every few seconds.
    const services = ['gateway', 'reservation', 'book', 'assignment', 'customercenter', 'notification'];
    const trace = await eventually(
      'spans of the trace from all six services',
      async () => {
        const found = spans.filter((s) => s.traceId === traceId);
        return services.every((service) => found.some((s) => s.service === service && s.name.startsWith('process ') === (service === 'assignment' || service === 'customercenter' || service === 'notification')))
          ? found
          : undefined;
      },
      30_000,
    );
    const root = trace.filter((s) => !s.parentSpanId);
    expect(root.map((s) => `${s.service} ${s.name}`)).toEqual(['gateway POST /reservations']);
    expect(trace.map((s) => `${s.service} ${s.name}`)).toEqual(
      expect.arrayContaining([
        'reservation POST /reservations',
        'reservation PUT /books/{bookId}/holds/{reservationId}',
        'book PUT /books/{bookId}/holds/{reservationId}',
        'reservation publish ReservationRequested',
        'assignment process ReservationRequested',
        'customercenter process ReservationRequested',
      ]),
    );
  }, 90_000);
});
