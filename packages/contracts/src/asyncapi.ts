import { readFileSync } from 'node:fs';
import { EVENT_CATALOG, EVENT_TYPES, sourceOf, subjectOf, type EventType } from './events.ts';

/** An AsyncAPI document, as plain JSON. */
export type AsyncApiDocument = {
  asyncapi: '3.0.0';
  info: { title: string; version: string; description?: string };
  channels: Record<string, { address: string; messages: Record<string, { $ref: string }>; [key: string]: unknown }>;
  operations: Record<string, unknown>;
  components: { messages: Record<string, unknown>; schemas: Record<string, unknown> };
  [key: string]: unknown;
};

function contractsVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** A TypeBox schema as the plain JSON Schema it is (TypeBox's own markers are not enumerable). */
const plain = (schema: unknown): Record<string, unknown> => JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;

/** The CloudEvents 1.0 envelope (structured mode) around the data of one event type. */
function envelopeSchema(type: EventType): Record<string, unknown> {
  return {
    type: 'object',
    description: 'A CloudEvents 1.0 envelope in structured mode: the event data is under `data`.',
    required: ['specversion', 'id', 'source', 'type', 'subject', 'time', 'datacontenttype', 'data'],
    additionalProperties: false,
    properties: {
      specversion: { const: '1.0' },
      id: { type: 'string', format: 'uuid', description: 'UUID v7: unique, ordered by creation time; consumers deduplicate by it' },
      source: { const: sourceOf(EVENT_CATALOG[type].producer) },
      type: { const: type },
      subject: { type: 'string', description: 'the id of the aggregate the event is about (e.g. the reservation id)' },
      time: { type: 'string', format: 'date-time' },
      datacontenttype: { const: 'application/json' },
      data: { $ref: `#/components/schemas/${type}` },
      traceparent: { type: 'string', description: 'W3C trace context (CloudEvents distributed-tracing extension)' },
    },
  };
}

/**
 * The AsyncAPI 3.0 document of every integration event, generated from EVENT_CATALOG: one channel
 * per event type at its bus subject (`subjectOf`), one `send` operation by its producing service,
 * and the message: a CloudEvents envelope whose `data` is the event's schema.
 *
 * @example
 * const doc = asyncApiDocument();
 * doc.channels.ReservationRequested.address; // 'bstore.reservation.ReservationRequested'
 */
export function asyncApiDocument(options: { version?: string } = {}): AsyncApiDocument {
  const channels: AsyncApiDocument['channels'] = {};
  const operations: AsyncApiDocument['operations'] = {};
  const messages: AsyncApiDocument['components']['messages'] = {};
  const schemas: AsyncApiDocument['components']['schemas'] = {};

  for (const type of EVENT_TYPES) {
    const { producer, schema, summary } = EVENT_CATALOG[type];
    schemas[type] = plain(schema);
    messages[type] = {
      name: type,
      title: type,
      summary,
      contentType: 'application/cloudevents+json',
      headers: {
        type: 'object',
        properties: { 'Nats-Msg-Id': { type: 'string', description: 'the envelope id: JetStream drops a duplicate publish' } },
      },
      payload: envelopeSchema(type),
      'x-producer': producer,
    };
    channels[type] = {
      address: subjectOf(type),
      title: type,
      summary,
      messages: { [type]: { $ref: `#/components/messages/${type}` } },
    };
    operations[`publish${type}`] = {
      action: 'send',
      title: `${producer} publishes ${type}`,
      summary,
      channel: { $ref: `#/channels/${type}` },
      messages: [{ $ref: `#/channels/${type}/messages/${type}` }],
      tags: [{ name: producer }],
    };
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'bstore integration events',
      version: options.version ?? contractsVersion(),
      description:
        'The events of the reservation saga. Each is published once by its producing service through its outbox, on the subject `bstore.<service>.<EventType>` (NATS JetStream in cluster mode, an in-process bus in embedded mode); consumers deduplicate by the envelope id.',
    },
    defaultContentType: 'application/cloudevents+json',
    servers: {
      nats: { host: 'localhost:4222', protocol: 'nats', description: 'NATS JetStream (cluster mode); the stream holds every `bstore.>` subject' },
    },
    channels,
    operations,
    components: { messages, schemas },
  };
}
