/**
 * `@bstore/platform/messaging`: the bus's narrow ports, the transactional outbox and its relay, the
 * inbox consumer, and dead letters (their routes are in `@bstore/platform/http`). The bus adapters are entries of their own
 * (`@bstore/platform/embedded-bus`, `@bstore/platform/nats`), so code that only uses a port loads
 * neither.
 */
export * from './messaging/bus.ts';
export * from './messaging/schema.ts';
export * from './messaging/outbox.ts';
export * from './messaging/consumer.ts';
export * from './messaging/inbox.ts';
export * from './messaging/wakeup.ts';
export * from './messaging/dead-letters.ts';
