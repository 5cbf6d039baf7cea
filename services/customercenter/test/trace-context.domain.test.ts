import { describe, expect, it } from 'vitest';
import { createEnvelope, parseEvent, sourceOf } from '@bstore/contracts';
import { traceIdOf } from '../src/domain/trace-context.ts';
import { changeOf, type PageEvent } from '../src/application/events.ts';

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const parentId = '00f067aa0ba902b7';
const valid = `00-${traceId}-${parentId}-01`;

describe('traceIdOf', () => {
  it('reads the trace id of a valid version-00 traceparent, sampled or not', () => {
    expect(traceIdOf(valid)).toBe(traceId);
    expect(traceIdOf(`00-${traceId}-${parentId}-00`)).toBe(traceId);
  });

  it('is null when there is no traceparent, or it is not a string', () => {
    for (const absent of [undefined, null, '', 42, {}, [valid]]) expect(traceIdOf(absent), JSON.stringify(absent)).toBeNull();
  });

  it.each([
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${parentId}-01`],
    ['an all-zero parent id', `00-${traceId}-${'0'.repeat(16)}-01`],
    ['version ff', `ff-${traceId}-${parentId}-01`],
    ['a short trace id', `00-${traceId.slice(1)}-${parentId}-01`],
    ['a long trace id', `00-${traceId}0-${parentId}-01`],
    ['a short parent id', `00-${traceId}-${parentId.slice(1)}-01`],
    ['one-digit flags', `00-${traceId}-${parentId}-1`],
    ['version 00 with more after it', `${valid}-extra`],
    ['version 00 with a trailing space', `${valid} `],
    ['a leading space', ` ${valid}`],
    ['non-hex in the trace id', `00-${traceId.slice(0, 31)}g-${parentId}-01`],
    ['non-hex in the version', `0x-${traceId}-${parentId}-01`],
    ['another separator', `00_${traceId}_${parentId}_01`],
    ['a trace id alone', traceId],
  ])('is null for %s', (_case, traceparent) => {
    expect(traceIdOf(traceparent)).toBeNull();
  });

  it('rejects uppercase hex rather than normalising it, as W3C Trace Context requires of a receiver', () => {
    expect(traceIdOf(`00-${traceId.toUpperCase()}-${parentId}-01`)).toBeNull();
    expect(traceIdOf(`00-${traceId}-${parentId.toUpperCase()}-01`)).toBeNull();
    expect(traceIdOf(`00-${traceId}-${parentId}-0A`)).toBeNull();
  });

  it('reads a later version by its first 55 characters, when what follows starts with a dash', () => {
    expect(traceIdOf(`01-${traceId}-${parentId}-01`)).toBe(traceId);
    expect(traceIdOf(`cc-${traceId}-${parentId}-01-whatever-comes-next`)).toBe(traceId);
    expect(traceIdOf(`01-${traceId}-${parentId}-01x`)).toBeNull();
  });
});

describe('changeOf', () => {
  const requested = (traceparent?: string): PageEvent =>
    parseEvent(
      createEnvelope({
        type: 'ReservationRequested',
        source: sourceOf('reservation'),
        subject: '7',
        data: { reservationId: 7, bookId: 3, customerId: 'alice', bookName: 'Dune', preferredLibraryId: null, status: 'bookReserveReq' as const },
        ...(traceparent === undefined ? {} : { traceparent }),
      }),
    ) as PageEvent;

  it("takes the trace id from the event's traceparent", () => {
    expect(changeOf(requested(valid)).traceId).toBe(traceId);
  });

  it('is null for an event without a traceparent, or with a malformed one', () => {
    expect(changeOf(requested()).traceId).toBeNull();
    expect(changeOf(requested('not-a-traceparent')).traceId).toBeNull();
  });
});
