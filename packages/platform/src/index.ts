/**
 * Everything of `@bstore/platform`. Each part is also an entry of its own (package.json's
 * exports), so a service loads only what it uses: the gateway, with no database or bus, imports
 * `@bstore/platform/http`, `/auth`, `/observability` and `/runtime`, and never loads PGlite, pg or
 * NATS (dependency-cruiser checks it).
 */
export * from './kernel/index.ts';
export * from './observability.ts';
export * from './persistence.ts';
export * from './messaging.ts';
export * from './embedded-bus.ts';
export * from './nats.ts';
export * from './http.ts';
export * from './auth.ts';
export * from './runtime.ts';
export * from './sql-service.ts';
