import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbedded, type EmbeddedSystem } from '@bstore/launcher';
import { createLogger } from '@bstore/platform';
import { eventually } from './support/harness.ts';
import { client } from './support/system.ts';

/*
 * One reservation is one trace across the six services: the gateway's request, reservation's
 * call to book, the events through the outbox and the bus to assignment, reservation and
 * customercenter. Proved on the whole embedded system, every service with its own tracer provider
 * exporting to one in-memory exporter; and the same trace id on the reservation's timeline and on
 * the log lines of the requests and events that made it.
 */

const SERVICES = ['gateway', 'reservation', 'book', 'assignment', 'customercenter', 'notification'] as const;

const exporter = new InMemorySpanExporter();
const raw: string[] = [];
const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void raw.push(line) } });

let system: EmbeddedSystem;
let alice: ReturnType<typeof client>;

type Line = Record<string, unknown> & { msg?: string; service?: string; trace_id?: string; span_id?: string; reservationId?: number };

function lines(): Line[] {
  return raw.flatMap((chunk) => chunk.split('\n').filter((l) => l.trim() !== '')).map((l) => JSON.parse(l) as Line);
}

const serviceOf = (span: ReadableSpan) => String(span.resource.attributes['service.name']);
const spansOf = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

/** The span of `service` named `name` in the trace, once it has ended. */
function spanNamed(traceId: string, service: string, name: string): Promise<ReadableSpan> {
  return eventually(`${service}'s span "${name}"`, async () => spansOf(traceId).find((s) => serviceOf(s) === service && s.name === name));
}

beforeAll(async () => {
  system = await startEmbedded({
    logger,
    ports: { gateway: 0, reservation: 0, assignment: 0, book: 0, customercenter: 0, notification: 0 },
    seedDemoData: true,
    env: { BSTORE_MAX_ACTIVE_RESERVATIONS: '1000', BSTORE_WEB_ROOT: '' },
    reservation: { sweepIntervalMs: 60_000 },
    gateway: { rateLimitPerToken: 0, rateLimitPerIp: 0, loginAttemptsPerMinute: 0 },
    tracing: { exports: [{ kind: 'exporter', exporter, simple: true }] },
  });
  alice = client(system.urls.gateway, 'alice');
});

afterAll(async () => {
  await system?.stop();
});

describe('one reservation, one trace', () => {
  let reservationId: number;
  let traceId: string;

  beforeAll(async () => {
    const book = await alice.createBook('Tracing in Practice', 5);
    const reserved = await alice.reserve(book.body.bookId);
    expect(reserved.status).toBe(201);
    reservationId = reserved.body.reservationId;
    await eventually('the page to show bookReserved', async () => ((await alice.page(reservationId)).body.status === 'bookReserved' ? true : undefined));
    const root = await eventually('the gateway span of POST /reservations', async () =>
      exporter.getFinishedSpans().find((s) => serviceOf(s) === 'gateway' && s.name === 'POST /reservations' && s.attributes['bstore.reservation.id'] === reservationId),
    );
    traceId = root.spanContext().traceId;
  });

  it('has spans from all six services, in one connected tree under the gateway span', async () => {
    // The last spans of the saga: customercenter and notification taking the acceptance.
    await spanNamed(traceId, 'customercenter', 'process ReservationAccepted');
    await spanNamed(traceId, 'notification', 'process ReservationAccepted');
    const spans = spansOf(traceId);
    expect(new Set(spans.map(serviceOf))).toEqual(new Set(SERVICES));
    const ids = new Set(spans.map((s) => s.spanContext().spanId));
    const roots = spans.filter((s) => parentOf(s) === undefined);
    expect(roots.map((s) => `${serviceOf(s)} ${s.name}`)).toEqual(['gateway POST /reservations']);
    // No orphan: every other span's parent is in the same trace.
    expect(spans.filter((s) => parentOf(s) !== undefined && !ids.has(parentOf(s) ?? ''))).toEqual([]);
  });

  it('follows the HTTP calls: gateway -> reservation -> book', async () => {
    const gateway = await spanNamed(traceId, 'gateway', 'POST /reservations');
    const reservation = await spanNamed(traceId, 'reservation', 'POST /reservations');
    const call = await spanNamed(traceId, 'reservation', 'PUT /books/{bookId}/holds/{reservationId}');
    const book = await spanNamed(traceId, 'book', 'PUT /books/{bookId}/holds/{reservationId}');
    expect([gateway.kind, reservation.kind, call.kind, book.kind]).toEqual([SpanKind.SERVER, SpanKind.SERVER, SpanKind.CLIENT, SpanKind.SERVER]);
    expect(parentOf(reservation)).toBe(gateway.spanContext().spanId);
    expect(parentOf(call)).toBe(reservation.spanContext().spanId);
    expect(parentOf(book)).toBe(call.spanContext().spanId);
    expect(reservation.attributes['http.response.status_code']).toBe(201);
    expect(reservation.attributes['bstore.reservation.id']).toBe(reservationId);
  });

  it('follows the events through the outbox and the bus, each consumer a child of the span that wrote the event', async () => {
    const reservation = await spanNamed(traceId, 'reservation', 'POST /reservations');
    const published = await spanNamed(traceId, 'reservation', 'publish ReservationRequested');
    expect(published.kind).toBe(SpanKind.PRODUCER);
    expect(parentOf(published)).toBe(reservation.spanContext().spanId);
    // ReservationRequested, written by the request, goes to assignment and customercenter.
    for (const service of ['assignment', 'customercenter']) {
      const consumed = await spanNamed(traceId, service, 'process ReservationRequested');
      expect(consumed.kind).toBe(SpanKind.CONSUMER);
      expect(parentOf(consumed)).toBe(reservation.spanContext().spanId);
      expect(consumed.attributes['messaging.message.id']).toBe(published.attributes['messaging.message.id']);
      expect(consumed.attributes['bstore.reservation.id']).toBe(reservationId);
    }
    // Assignment's answer, written while it handled the request event, continues from that span.
    const assigning = await spanNamed(traceId, 'assignment', 'process ReservationRequested');
    const answered = spansOf(traceId).find((s) => serviceOf(s) === 'assignment' && s.kind === SpanKind.PRODUCER);
    expect(answered && parentOf(answered)).toBe(assigning.spanContext().spanId);
    const answerType = String(answered?.name).replace('publish ', '');
    const applied = await spanNamed(traceId, 'reservation', `process ${answerType}`);
    expect(parentOf(applied)).toBe(assigning.spanContext().spanId);
  });

  it('shows the trace id on every entry of the reservation timeline', async () => {
    const page = await alice.call<{ timeline: { eventType: string; traceId: string | null }[] }>('GET', `/reservationPages/${reservationId}`);
    expect(page.body.timeline.map((e) => e.eventType)).toEqual(['ReservationRequested', 'ReservationAccepted']);
    expect(page.body.timeline.map((e) => e.traceId)).toEqual([traceId, traceId]);
  });

  it('writes the trace id, span id and reservation id on the log lines of its requests and events', async () => {
    const ofTrace = () => lines().filter((l) => l.trace_id === traceId);
    const requestLines = await eventually('request lines of gateway, reservation and book', async () => {
      const found = ofTrace().filter((l) => l.msg === 'request');
      return ['gateway', 'reservation', 'book'].every((s) => found.some((l) => l.service === s)) ? found : undefined;
    });
    for (const line of requestLines) {
      expect(line.span_id).toMatch(/^[0-9a-f]{16}$/);
      expect(line.reservationId).toBe(reservationId);
    }
    const handled = await eventually('event lines of assignment, reservation and customercenter', async () => {
      const found = ofTrace().filter((l) => l.msg === 'event handled');
      return ['assignment', 'reservation', 'customercenter'].every((s) => found.some((l) => l.service === s)) ? found : undefined;
    });
    for (const line of handled) {
      expect(line.reservationId).toBe(reservationId);
      expect(line.eventId).toEqual(expect.any(String));
    }
  });

  it('starts a new trace for the cancellation, and its events join it', async () => {
    const canceled = await alice.cancel(reservationId);
    expect(canceled.status).toBe(202);
    const patch = await eventually('the gateway span of the cancellation', async () =>
      exporter.getFinishedSpans().find((s) => serviceOf(s) === 'gateway' && s.name === 'PATCH /reservations/*' && s.attributes['bstore.reservation.id'] === reservationId),
    );
    const cancelTrace = patch.spanContext().traceId;
    expect(cancelTrace).not.toBe(traceId);
    await spanNamed(cancelTrace, 'customercenter', 'process ReservationCanceled');
    await spanNamed(cancelTrace, 'notification', 'process ReservationCanceled');
    expect(new Set(spansOf(cancelTrace).map(serviceOf))).toEqual(new Set(SERVICES));
    const page = await eventually('the page to show bookCanceled', async () => {
      const p = await alice.call<{ status: string; timeline: { eventType: string; traceId: string | null }[] }>('GET', `/reservationPages/${reservationId}`);
      return p.body.status === 'bookCanceled' ? p.body : undefined;
    });
    expect(page.timeline.map((e) => [e.eventType, e.traceId])).toEqual([
      ['ReservationRequested', traceId],
      ['ReservationAccepted', traceId],
      ['ReservationCancelRequested', cancelTrace],
      ['ReservationCanceled', cancelTrace],
    ]);
  });
});

describe('a caller that sends its own trace context', () => {
  it('gets its trace continued: the gateway span is the child of the caller span', async () => {
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const book = await alice.createBook('Distributed Context', 2);
    const res = await alice.call<{ reservationId: number }>('POST', '/reservations', { bookId: book.body.bookId }, { traceparent: `00-${callerTrace}-${callerSpan}-01` });
    expect(res.status).toBe(201);
    const gateway = await spanNamed(callerTrace, 'gateway', 'POST /reservations');
    expect(parentOf(gateway)).toBe(callerSpan);
    await spanNamed(callerTrace, 'customercenter', 'process ReservationAccepted');
  });
});
