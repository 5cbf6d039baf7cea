/** `@bstore/platform/nats`: the bus on NATS JetStream for cluster mode. */
export * from './messaging/nats-bus.ts';
