import { Type, type Static, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import type { EventEnvelope } from './envelope.ts';

/**
 * The integration events of the reservation saga: one schema each, used by the producer to build
 * the event and by every consumer to parse it. Each event names the service that produces it,
 * which gives its bus subject `bstore.<service>.<type>`.
 */
const Id = Type.Integer({ minimum: 1 });
const CustomerId = Type.String({ minLength: 1, maxLength: 64 });

export const ReservationRequested = Type.Object(
  {
    reservationId: Id,
    bookId: Id,
    bookName: Type.String({ maxLength: 300 }),
    customerId: CustomerId,
    preferredLibraryId: Type.Union([Id, Type.Null()]),
    status: Type.Literal('bookReserveReq'),
  },
  { additionalProperties: false },
);

export const ReservationRejected = Type.Object(
  {
    reservationId: Id,
    bookId: Id,
    customerId: CustomerId,
    /** Known when book answered (out of stock); null when it did not answer. */
    bookName: Type.Union([Type.String({ maxLength: 300 }), Type.Null()]),
    status: Type.Union([Type.Literal('bookOutOfStock'), Type.Literal('rejected')]),
    reason: Type.String({ maxLength: 200 }),
  },
  { additionalProperties: false },
);

export const ReservationCancelRequested = Type.Object(
  {
    reservationId: Id,
    bookId: Id,
    customerId: CustomerId,
    status: Type.Literal('bookCancel'),
  },
  { additionalProperties: false },
);

const Instant = Type.String({ format: 'date-time', maxLength: 40 });

export const ReservationAccepted = Type.Object(
  {
    reservationId: Id,
    bookId: Id,
    customerId: CustomerId,
    assignmentId: Id,
    libraryId: Id,
    libraryName: Type.String({ maxLength: 200 }),
    status: Type.Literal('bookReserved'),
    /**
     * Until when the copy waits on the branch's hold shelf: the assignment's time plus the pickup
     * period. Optional only for events of versions before it existed (consumers then count from the
     * event's time).
     */
    pickupBy: Type.Optional(Instant),
  },
  { additionalProperties: false },
);

export const ReservationCanceled = Type.Object(
  {
    reservationId: Id,
    bookId: Id,
    customerId: CustomerId,
    status: Type.Literal('bookCanceled'),
  },
  { additionalProperties: false },
);

export const ReservationAssignmentFailed = Type.Object(
  {
    reservationId: Id,
    bookId: Id,
    customerId: CustomerId,
    reason: Type.String({ maxLength: 200 }),
    status: Type.Literal('rejected'),
  },
  { additionalProperties: false },
);

export const ReservationWaitlisted = Type.Object(
  {
    reservationId: Id,
    bookId: Id,
    bookName: Type.String({ maxLength: 300 }),
    customerId: CustomerId,
    /** The reservation's place in its book's line, in book's order: smaller joined earlier. */
    queueTicket: Id,
    status: Type.Literal('bookWaiting'),
  },
  { additionalProperties: false },
);

export const CopyGranted = Type.Object(
  {
    reservationId: Id,
    bookId: Id,
    bookName: Type.String({ maxLength: 300 }),
    customerId: CustomerId,
    queueTicket: Id,
    /** What freed the copy. */
    cause: Type.Union([Type.Literal('released'), Type.Literal('returned'), Type.Literal('copiesAdded')]),
    status: Type.Literal('bookReserveReq'),
  },
  { additionalProperties: false },
);

export const ReservationCheckedOut = Type.Object(
  {
    reservationId: Id,
    bookId: Id,
    customerId: CustomerId,
    libraryId: Type.Union([Id, Type.Null()]),
    dueAt: Instant,
    status: Type.Literal('bookLoaned'),
  },
  { additionalProperties: false },
);

export const ReservationReturned = Type.Object(
  {
    reservationId: Id,
    bookId: Id,
    customerId: CustomerId,
    libraryId: Type.Union([Id, Type.Null()]),
    status: Type.Literal('bookReturned'),
  },
  { additionalProperties: false },
);

export const ReservationExpired = Type.Object(
  {
    reservationId: Id,
    bookId: Id,
    customerId: CustomerId,
    libraryId: Type.Union([Id, Type.Null()]),
    pickupBy: Instant,
    status: Type.Literal('bookExpired'),
  },
  { additionalProperties: false },
);

export const QuantityChanged = Type.Object(
  {
    bookId: Id,
    quantity: Type.Integer({ minimum: 0 }),
    copies: Type.Integer({ minimum: 0 }),
    reason: Type.Union([
      Type.Literal('created'),
      Type.Literal('held'),
      Type.Literal('released'),
      Type.Literal('copiesAdded'),
      Type.Literal('copiesWithdrawn'),
      Type.Literal('returned'),
    ]),
  },
  { additionalProperties: false },
);

export const EVENT_CATALOG = {
  ReservationRequested: { producer: 'reservation', schema: ReservationRequested, summary: 'A copy is held; the reservation waits for a library.' },
  ReservationRejected: { producer: 'reservation', schema: ReservationRejected, summary: 'The reservation was refused; book releases any hold it may have for it.' },
  ReservationCancelRequested: { producer: 'reservation', schema: ReservationCancelRequested, summary: 'The patron asked to cancel: book restores the copy, assignment releases the library.' },
  ReservationAccepted: { producer: 'assignment', schema: ReservationAccepted, summary: 'A library was assigned: the reservation is complete (bookReserved).' },
  ReservationCanceled: { producer: 'assignment', schema: ReservationCanceled, summary: 'The assignment is released (or never made): the cancellation is complete (book restores the copy if it has not yet).' },
  ReservationAssignmentFailed: {
    producer: 'assignment',
    schema: ReservationAssignmentFailed,
    summary: 'No library branch can serve the reservation: reservation rejects it, which makes book release its copy.',
  },
  ReservationWaitlisted: {
    producer: 'reservation',
    schema: ReservationWaitlisted,
    summary: 'No copy was available and the patron joined the book\'s waiting line (bookWaiting); book keeps the line.',
  },
  CopyGranted: {
    producer: 'book',
    schema: CopyGranted,
    summary: 'A copy that became free went to the oldest waiting reservation of its book, in the transaction that freed it: reservation continues it as a new hold (bookReserveReq).',
  },
  ReservationCheckedOut: {
    producer: 'reservation',
    schema: ReservationCheckedOut,
    summary: 'Staff checked the held copy out to the patron (bookLoaned, due at dueAt): book counts it on loan.',
  },
  ReservationReturned: {
    producer: 'reservation',
    schema: ReservationReturned,
    summary: 'Staff checked the copy in (bookReturned): book gives it to the next waiting reservation or back to stock.',
  },
  ReservationExpired: {
    producer: 'reservation',
    schema: ReservationExpired,
    summary: 'The copy was not picked up by pickupBy (bookExpired): book gives it to the next waiting reservation or back to stock.',
  },
  QuantityChanged: { producer: 'book', schema: QuantityChanged, summary: 'A book\'s available quantity changed.' },
} as const satisfies Record<string, { producer: ServiceName; schema: TSchema; summary: string }>;

export type ServiceName = 'reservation' | 'assignment' | 'book' | 'customercenter' | 'gateway';
export type EventType = keyof typeof EVENT_CATALOG;
export type EventData<T extends EventType> = Static<(typeof EVENT_CATALOG)[T]['schema']>;
export type IntegrationEvent<T extends EventType = EventType> = EventEnvelope<T, EventData<T>>;

export const EVENT_TYPES = Object.keys(EVENT_CATALOG) as EventType[];

/** The bus subject of an event type: `bstore.<producing service>.<type>`. */
export function subjectOf(type: EventType): string {
  return `bstore.${EVENT_CATALOG[type].producer}.${type}`;
}

/** The CloudEvents `source` of a service's events. */
export function sourceOf(service: ServiceName): string {
  return `bstore/${service}`;
}

export function isEventType(type: string): type is EventType {
  return Object.hasOwn(EVENT_CATALOG, type);
}

const validators = Object.fromEntries(
  EVENT_TYPES.map((t) => [t, Compile(EVENT_CATALOG[t].schema)]),
) as { [T in EventType]: ReturnType<typeof Compile<(typeof EVENT_CATALOG)[T]['schema']>> };

export class InvalidEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidEventError';
  }
}

/**
 * Checks that an envelope carries a known event type whose data matches its schema.
 * Throws InvalidEventError otherwise: a consumer parks such an event as a dead letter.
 */
export function parseEvent<T extends EventType>(envelope: EventEnvelope, expected?: T): IntegrationEvent<T> {
  if (!isEventType(envelope.type)) throw new InvalidEventError(`unknown event type ${JSON.stringify(envelope.type)}`);
  if (expected && envelope.type !== expected) throw new InvalidEventError(`expected ${expected}, got ${envelope.type}`);
  const validator = validators[envelope.type];
  if (!validator.Check(envelope.data)) {
    const first = [...validator.Errors(envelope.data)][0];
    throw new InvalidEventError(`${envelope.type} data is invalid${first ? `: ${first.instancePath || '/'} ${first.message}` : ''}`);
  }
  return envelope as IntegrationEvent<T>;
}
