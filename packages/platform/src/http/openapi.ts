/// <reference types="@fastify/swagger" preserve="true" />
import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { ANY_MEDIA_TYPE } from './method-and-accept.ts';
import { ProblemSchema } from './problem.ts';
import { guardOf } from './request-context.ts';

/** An OpenAPI document, loosely typed: it is produced and merged as plain JSON. */
export type OpenApiDocument = {
  openapi: string;
  info: { title: string; version: string; [key: string]: unknown };
  paths?: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, unknown>; [key: string]: unknown };
  tags?: { name: string; description?: string }[];
  [key: string]: unknown;
};

/** One route as registered with Fastify, and whether the published document leaves it out. */
export interface RegisteredRoute {
  method: string;
  url: string;
  hidden: boolean;
}

export interface OpenApiOptions {
  service: string;
  /** The version in `info`; the platform package's version when not given. */
  version?: string;
}

/** The tag of what operators use (health, metrics, dead letters); every other route is tagged by its first path segment. */
export const OPERATIONS_TAG = 'operations';

const OPERATIONS_PREFIXES = ['/health', '/metrics', '/admin'];

function platformVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The `Problem` schema every error answer refers to (RFC 9457). */
export const PROBLEM_COMPONENT = JSON.parse(JSON.stringify(ProblemSchema)) as Record<string, unknown>;
const PROBLEM_JSON = JSON.stringify(PROBLEM_COMPONENT);
const PROBLEM_REF = { $ref: '#/components/schemas/Problem' };

function tagOf(url: string): string {
  if (OPERATIONS_PREFIXES.some((p) => url === p || url.startsWith(`${p}/`))) return OPERATIONS_TAG;
  return url.split('/')[1] || 'default';
}

const OPENAPI_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

/**
 * The document as @fastify/swagger made it, made valid and compact: a route for every method
 * (`app.all`) lists only the methods OpenAPI knows (not PROPFIND and the like), and error answers
 * refer to the shared Problem schema.
 */
export function normalizeOpenApi(generated: unknown): OpenApiDocument {
  const doc = JSON.parse(JSON.stringify(generated)) as OpenApiDocument;
  for (const item of Object.values(doc.paths ?? {})) {
    for (const key of Object.keys(item)) {
      if (!OPENAPI_METHODS.has(key) && !['summary', 'description', 'servers', 'parameters'].includes(key)) delete item[key];
    }
  }
  return shareProblemSchema(doc);
}

/**
 * Error answers are described once, as `#/components/schemas/Problem` with media type
 * application/problem+json, instead of a copy of the same schema under every operation.
 */
export function shareProblemSchema(doc: OpenApiDocument): OpenApiDocument {
  let used = false;
  for (const item of Object.values(doc.paths ?? {})) {
    for (const operation of Object.values(item)) {
      const responses = (operation as { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> }).responses ?? {};
      for (const response of Object.values(responses)) {
        const json = response.content?.['application/json'];
        if (json && JSON.stringify(json.schema) === PROBLEM_JSON) {
          response.content = { 'application/problem+json': { schema: PROBLEM_REF } };
          used = true;
        }
      }
    }
  }
  if (used) doc.components = { ...doc.components, schemas: { ...doc.components?.schemas, Problem: PROBLEM_COMPONENT } };
  return doc;
}

/**
 * Makes the service describe itself: @fastify/swagger collects every route's schema (routes use
 * TypeBox, which is JSON Schema) into an OpenAPI 3.1 document served at GET /openapi.json.
 * Must run before any route is added: the routes are collected as they are registered.
 */
export function registerOpenApi(app: FastifyInstance, options: OpenApiOptions): void {
  const registered: RegisteredRoute[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const schema = route.schema;
    for (const method of methods) registered.push({ method: String(method), url: route.url, hidden: schema?.hide === true });
  });
  app.decorate('registeredRoutes', () => registered.filter((r) => r.method !== 'HEAD'));

  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: `bstore ${options.service}`, version: options.version ?? platformVersion() },
      // Relative: the document is right wherever the service is reached (directly or behind a proxy).
      servers: [{ url: '/' }],
      tags: [{ name: OPERATIONS_TAG, description: 'Health, metrics and dead letters, for operators' }],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A token from POST /auth/token (or the identity provider); see docs/security.md' },
        },
      },
    },
    transform: ({ schema, url, route }) => {
      const given = (schema ?? {}) as { tags?: string[]; description?: string };
      // Guarded routes say so: Swagger UI then sends the token given under "Authorize".
      const guard = guardOf(route.onRequest);
      const security = guard ? { security: [{ bearerAuth: [] }], 'x-bstore-role': guard } : {};
      return { schema: { ...given, tags: given.tags ?? [tagOf(url)], ...security }, url };
    },
  });

  const own = () => normalizeOpenApi(app.swagger());
  let provider: () => Promise<OpenApiDocument> | OpenApiDocument = own;
  app.decorate('ownOpenApiDocument', own);
  app.decorate('setOpenApiDocument', (next: () => Promise<OpenApiDocument> | OpenApiDocument) => {
    provider = next;
  });
  // A plugin, so that it is added once @fastify/swagger is loaded (and is itself collected, hidden).
  void app.register(async (scope) => {
    scope.get('/openapi.json', { schema: { hide: true } }, async () => provider());
  });
}

/**
 * A plugin: Swagger UI at `routePrefix` (default /docs) (the assets are served from the @fastify/swagger-ui package,
 * no CDN), showing the document at `documentUrl` (default /openapi.json).
 *
 * @example
 * await app.register(swaggerUiDocs, { routePrefix: '/docs' });
 */
export async function swaggerUiDocs(scope: FastifyInstance, options: { routePrefix?: string; documentUrl?: string }): Promise<void> {
  // HTML, scripts, styles and images: exempt from the JSON-only Accept check of createHttpApp.
  scope.addHook('onRoute', (route) => {
    route.config = { ...route.config, produces: [ANY_MEDIA_TYPE] };
  });
  await scope.register(swaggerUi, {
    routePrefix: options.routePrefix ?? '/docs',
    // `urls` takes precedence over the plugin's own `./json`: the UI loads the published document.
    uiConfig: { urls: [{ url: options.documentUrl ?? '/openapi.json', name: 'bstore' }], deepLinking: true },
    staticCSP: true,
    // The plugin's own GET <prefix>/json serves the generated document: the same, made valid.
    transformSpecification: (spec) => normalizeOpenApi(spec) as unknown as typeof spec,
  });
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered so far (HEAD left out), with whether the OpenAPI document hides it. */
    registeredRoutes(): RegisteredRoute[];
    /** This service's own OpenAPI document, generated from its routes. */
    ownOpenApiDocument(): OpenApiDocument;
    /** Replaces what GET /openapi.json serves (the gateway serves the aggregated document). */
    setOpenApiDocument(provider: () => Promise<OpenApiDocument> | OpenApiDocument): void;
  }
}
