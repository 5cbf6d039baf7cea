/** `@bstore/platform/http`: the HTTP app (Fastify with problem+json, validation, health, metrics), authentication of requests, OpenAPI, the dead-letter routes. */
export * from './http/app.ts';
export * from './http/problem.ts';
export * from './http/request-context.ts';
export * from './http/openapi.ts';
export * from './http/dead-letter.routes.ts';
