import { v7 as uuidv7 } from 'uuid';

/**
 * An integration event on the wire, with CloudEvents 1.0 attribute names.
 * `traceparent` is the CloudEvents distributed-tracing extension (W3C trace context).
 *
 * @example
 * const e = createEnvelope({ type: 'ReservationRequested', source: 'bstore/reservation',
 *   subject: '42', data: { reservationId: 42, ... } });
 */
export interface EventEnvelope<TType extends string = string, TData = unknown> {
  readonly specversion: '1.0';
  readonly id: string;
  readonly source: string;
  readonly type: TType;
  readonly subject: string;
  readonly time: string;
  readonly datacontenttype: 'application/json';
  readonly data: TData;
  readonly traceparent?: string;
}

export interface NewEnvelope<TType extends string, TData> {
  type: TType;
  source: string;
  subject: string;
  data: TData;
  traceparent?: string;
  time?: Date;
}

/** Event ids are UUID v7: unique, and ordered by creation time. */
export function newEventId(): string {
  return uuidv7();
}

export function createEnvelope<TType extends string, TData>(e: NewEnvelope<TType, TData>): EventEnvelope<TType, TData> {
  return {
    specversion: '1.0',
    id: newEventId(),
    source: e.source,
    type: e.type,
    subject: e.subject,
    time: (e.time ?? new Date()).toISOString(),
    datacontenttype: 'application/json',
    data: e.data,
    ...(e.traceparent ? { traceparent: e.traceparent } : {}),
  };
}
