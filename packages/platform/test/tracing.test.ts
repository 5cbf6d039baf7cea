import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ServiceTracing,
  SpanKind,
  activeTraceFields,
  addLogFields,
  contextOfTraceparent,
  createHttpApp,
  createLogger,
  inSpan,
  runWithLogFields,
  tagCorrelation,
  traceparentOf,
  withTraceHeaders,
} from '../src/index.ts';

/*
 * The tracing parts on their own: spans exported over OTLP/HTTP (protobuf and JSON) to a real
 * receiver, tracing off still making ids, the trace context in headers and envelopes, and the log
 * lines that carry it.
 */

interface Received {
  path: string;
  contentType: string;
  body: Buffer;
}

let receiver: Server;
let endpoint: string;
const received: Received[] = [];

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

beforeAll(async () => {
  // An OTLP/HTTP receiver, as a collector or Jaeger listens on 4318: it records and accepts.
  receiver = createServer((req, res) => {
    void readBody(req).then((body) => {
      received.push({ path: req.url ?? '', contentType: String(req.headers['content-type']), body });
      res.writeHead(200, { 'content-type': String(req.headers['content-type']) }).end(req.headers['content-type'] === 'application/json' ? '{}' : '');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => receiver.close(resolve));
});

const saved = { ...process.env };
afterEach(() => {
  for (const key of Object.keys(process.env)) if (key.startsWith('OTEL_') && !(key in saved)) delete process.env[key];
  received.length = 0;
});

describe('OTLP export', () => {
  it('sends spans as OTLP/HTTP JSON to the configured endpoint, with the service as the resource', async () => {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint;
    process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment.name=test';
    const tracing = new ServiceTracing('book', { exports: [{ kind: 'otlp', protocol: 'http/json' }], version: '9.9.9' });
    const span = tracing.tracer.startSpan('PUT /books/{bookId}/holds/{reservationId}', { kind: SpanKind.SERVER });
    span.setAttribute('bstore.reservation.id', 42);
    span.end();
    await tracing.shutdown();

    expect(received.map((r) => [r.path, r.contentType])).toEqual([['/v1/traces', 'application/json']]);
    const body = JSON.parse(received[0]?.body.toString('utf8') ?? '{}') as {
      resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: { name: string; traceId: string; kind: number }[] }[] }[];
    };
    const resource = Object.fromEntries(body.resourceSpans[0]?.resource.attributes.map((a) => [a.key, a.value.stringValue]) ?? []);
    expect(resource).toMatchObject({ 'service.name': 'book', 'service.namespace': 'bstore', 'service.version': '9.9.9', 'deployment.environment.name': 'test' });
    const exported = body.resourceSpans[0]?.scopeSpans[0]?.spans[0];
    expect(exported?.name).toBe('PUT /books/{bookId}/holds/{reservationId}');
    expect(exported?.traceId).toBe(span.spanContext().traceId);
  });

  it('sends OTLP/HTTP protobuf (the default protocol) to the traces endpoint when one is set', async () => {
    process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `${endpoint}/custom/traces`;
    const tracing = new ServiceTracing('assignment', { exports: [{ kind: 'otlp', protocol: 'http/protobuf' }] });
    const span = tracing.tracer.startSpan('process ReservationRequested', { kind: SpanKind.CONSUMER });
    span.end();
    await tracing.shutdown();
    expect(received.map((r) => [r.path, r.contentType])).toEqual([['/custom/traces', 'application/x-protobuf']]);
    // The protobuf holds the span's name and the service's as plain UTF-8 strings, and its trace id as raw bytes.
    const bytes = received[0]?.body ?? Buffer.alloc(0);
    expect(bytes.includes('process ReservationRequested')).toBe(true);
    expect(bytes.includes('assignment')).toBe(true);
    expect(bytes.includes(Buffer.from(span.spanContext().traceId, 'hex'))).toBe(true);
  });
});

describe('tracing off (the default)', () => {
  it('records and exports nothing, yet makes trace and span ids that propagate', async () => {
    const exporter = new InMemorySpanExporter();
    const off = new ServiceTracing('reservation');
    expect(off.exporting).toBe(false);
    const span = off.tracer.startSpan('POST /reservations');
    expect(span.isRecording()).toBe(false);
    expect(span.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    const traceparent = traceparentOf(trace.setSpan(context.active(), span));
    expect(traceparent).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-00`);
    // A service downstream, tracing or not, continues the same trace.
    const on = new ServiceTracing('book', { exports: [{ kind: 'exporter', exporter, simple: true }], sampler: { name: 'always_on' } });
    const child = on.tracer.startSpan('child', {}, contextOfTraceparent(traceparent));
    child.end();
    span.end();
    expect(exporter.getFinishedSpans().map((s) => [s.spanContext().traceId, s.parentSpanContext?.spanId])).toEqual([[span.spanContext().traceId, span.spanContext().spanId]]);
    await on.shutdown();
  });

  it('follows the parent-based default: an unsampled caller is not recorded, a sampled one is', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = new ServiceTracing('book', { exports: [{ kind: 'exporter', exporter, simple: true }] });
    tracing.tracer.startSpan('unsampled', {}, contextOfTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00')).end();
    tracing.tracer.startSpan('sampled', {}, contextOfTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).end();
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['sampled']);
    await tracing.shutdown();
  });

  it('reads a missing or malformed traceparent as no parent: a new trace', () => {
    for (const bad of [undefined, 42, '', 'garbage', '00-00000000000000000000000000000000-00f067aa0ba902b7-01']) {
      expect(trace.getSpan(contextOfTraceparent(bad))).toBeUndefined();
    }
  });
});

describe('trace context on the wire', () => {
  it('replaces a traceparent already in outgoing headers with the active one, keeping the others', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = new ServiceTracing('gateway', { exports: [{ kind: 'exporter', exporter, simple: true }] });
    await inSpan(tracing.tracer, 'call', { kind: SpanKind.CLIENT }, async (span) => {
      const headers = withTraceHeaders({ accept: 'application/json', traceparent: '00-11111111111111111111111111111111-2222222222222222-01' });
      expect(headers).toEqual({ accept: 'application/json', traceparent: `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01` });
    });
    await tracing.shutdown();
  });

  it('marks a span whose work threw as an error, and rethrows', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = new ServiceTracing('book', { exports: [{ kind: 'exporter', exporter, simple: true }] });
    await expect(inSpan(tracing.tracer, 'failing', { kind: SpanKind.INTERNAL }, async () => Promise.reject(new RangeError('no such hold')))).rejects.toThrow('no such hold');
    const [span] = exporter.getFinishedSpans();
    expect(span?.status).toEqual({ code: 2, message: 'no such hold' });
    expect(span?.attributes['error.type']).toBe('RangeError');
    await tracing.shutdown();
  });
});

describe('log lines', () => {
  function capture() {
    const raw: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void raw.push(line) } });
    return { logger, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
  }

  it('carry the active span ids and the fields of the current request, from any logger', async () => {
    const { logger, lines } = capture();
    const child = logger.child({ service: 'book' });
    const tracing = new ServiceTracing('book');
    logger.info('outside');
    await inSpan(tracing.tracer, 'work', { kind: SpanKind.SERVER }, async (span) => {
      await runWithLogFields({ eventId: 'e-1' }, async () => {
        child.info('before');
        tagCorrelation(42);
        await Promise.resolve();
        child.info({ eventId: 'given' }, 'after');
      });
      expect(activeTraceFields()).toEqual({ trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId });
    });
    const [outside, before, after] = lines();
    expect(outside).not.toHaveProperty('trace_id');
    expect(outside).not.toHaveProperty('reservationId');
    expect(before).toMatchObject({ service: 'book', eventId: 'e-1', trace_id: expect.stringMatching(/^[0-9a-f]{32}$/), span_id: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(before).not.toHaveProperty('reservationId');
    // Added on the way, and a field the call passes wins over the context's.
    expect(after).toMatchObject({ reservationId: 42, eventId: 'given', trace_id: before?.trace_id });
  });

  it('carry the request span and the reservation of a route on every line of an HTTP request', async () => {
    const { logger, lines } = capture();
    const app = createHttpApp({ service: 'reservation', logger: logger.child({ service: 'reservation' }) });
    app.get('/reservations/:reservationId', async (request) => {
      request.log.info('handler line');
      addLogFields({ note: 'added' });
      return { ok: true };
    });
    const res = await app.inject({ method: 'GET', url: '/reservations/7', headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } });
    expect(res.statusCode).toBe(200);
    const [handler, request] = lines().filter((l) => l.msg === 'handler line' || l.msg === 'request');
    for (const line of [handler, request]) {
      expect(line).toMatchObject({ service: 'reservation', reservationId: 7, trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' });
      expect(line?.span_id).not.toBe('00f067aa0ba902b7');
    }
    expect(request).toMatchObject({ note: 'added' });
    await app.close();
  });
});

describe('probes and scrapes', () => {
  it('get no span: they would bury real traces', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = new ServiceTracing('book', { exports: [{ kind: 'exporter', exporter, simple: true }] });
    const app = createHttpApp({ service: 'book', logger: createLogger({ level: 'silent' }), tracing });
    app.get('/books/:bookId', async () => ({ ok: true }));
    for (const url of ['/health/live', '/health/ready', '/metrics', '/books/3']) expect((await app.inject({ method: 'GET', url })).statusCode).toBe(200);
    expect(exporter.getFinishedSpans().map((s) => [s.name, s.kind, s.attributes['http.response.status_code']])).toEqual([['GET /books/{bookId}', SpanKind.SERVER, 200]]);
    await app.close();
    await tracing.shutdown();
  });
});
