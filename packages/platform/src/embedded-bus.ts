/** `@bstore/platform/embedded-bus`: the durable bus in PGlite for embedded mode (ADR 0004). */
export * from './messaging/embedded-bus.ts';
