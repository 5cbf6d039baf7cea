import SwaggerParser from '@apidevtools/swagger-parser';
import { Parser } from '@asyncapi/parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_TYPES, asyncApiDocument, subjectOf } from '@bstore/contracts';
import type { EmbeddedSystem } from '@bstore/launcher';
import type { OpenApiDocument } from '@bstore/platform';
import { aggregateOpenApi, isPublic } from '../services/gateway/src/api-docs.ts';
import { upstreamPools } from '../services/gateway/src/upstreams.ts';
import { startTestSystem } from './support/system.ts';

const SERVICES = ['book', 'reservation', 'assignment', 'customercenter'] as const;
const OPENAPI_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

/** Fastify's `/books/:bookId` and `/x/*` as OpenAPI writes them (@fastify/swagger's conversion). */
const openApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{*}');

async function getJson<T>(url: string): Promise<{ status: number; body: T; type: string | null }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T, type: res.headers.get('content-type') };
}

/** Validates against the OpenAPI 3.1 schema and resolves every $ref (on a copy: the parser mutates). */
async function validateOpenApi(doc: OpenApiDocument): Promise<void> {
  await SwaggerParser.validate(structuredClone(doc) as never);
}

let system: EmbeddedSystem;

beforeAll(async () => {
  system = await startTestSystem({ seedDemoData: false });
});

afterAll(async () => {
  await system?.stop();
});

describe('OpenAPI document of each service', () => {
  it.each(SERVICES)('%s serves a valid OpenAPI 3.1 document at GET /openapi.json that lists every route it registered', async (service) => {
    const { status, body: doc } = await getJson<OpenApiDocument>(`${system.urls[service]}/openapi.json`);
    expect(status).toBe(200);
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBe(`bstore ${service}`);
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(doc.servers).toEqual([{ url: '/' }]);
    await validateOpenApi(doc);

    const routes = system[service].app.registeredRoutes().filter((r) => !r.hidden && OPENAPI_METHODS.has(r.method.toLowerCase()));
    expect(routes.length).toBeGreaterThan(3);
    const missing = routes.filter((r) => !doc.paths?.[openApiPath(r.url)]?.[r.method.toLowerCase()]).map((r) => `${r.method} ${r.url}`);
    expect(missing).toEqual([]);
    // The document itself is not an operation of the API.
    expect(doc.paths?.['/openapi.json']).toBeUndefined();
    // Health and metrics are listed, under "operations".
    expect((doc.paths?.['/health/ready']?.get as { tags: string[] }).tags).toEqual(['operations']);
  });

  it("describes error answers once, as the shared Problem schema, and renders the routes' TypeBox schemas", async () => {
    const { body: doc } = await getJson<OpenApiDocument>(`${system.urls.book}/openapi.json`);
    expect(doc.components?.schemas?.Problem).toMatchObject({ type: 'object', required: expect.arrayContaining(['type', 'title', 'status', 'detail', 'code']) });
    const getBook = doc.paths?.['/books/{bookId}']?.get as {
      parameters: { name: string; in: string; schema: object }[];
      responses: Record<string, { content: Record<string, { schema: unknown }> }>;
    };
    expect(getBook.responses['404']?.content).toEqual({ 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } });
    expect(getBook.responses['200']?.content['application/json']?.schema).toMatchObject({
      type: 'object',
      properties: { bookId: { type: 'integer' }, author: { anyOf: [{ type: 'string' }, { type: 'null' }] } },
    });
    expect(getBook.parameters).toContainEqual(expect.objectContaining({ name: 'bookId', in: 'path', schema: expect.objectContaining({ type: 'integer', minimum: 1 }) }));
    const createBook = doc.paths?.['/books']?.post as { requestBody: { content: Record<string, { schema: { required: string[] } }> } };
    expect(createBook.requestBody.content['application/json']?.schema.required).toEqual(expect.arrayContaining(['bookName', 'quantity']));
  });
});

describe('the gateway', () => {
  it('serves at GET /openapi.json one valid 3.1 document of the public API, merged from the services', async () => {
    const { status, body: doc } = await getJson<OpenApiDocument>(`${system.urls.gateway}/openapi.json`);
    expect(status).toBe(200);
    expect(doc.openapi).toBe('3.1.0');
    expect(doc['x-bstore-missing']).toBeUndefined();
    await validateOpenApi(doc);

    // Every route the gateway proxies, as the owning service describes it.
    for (const service of SERVICES) {
      const own = (await getJson<OpenApiDocument>(`${system.urls[service]}/openapi.json`)).body;
      for (const [path, item] of Object.entries(own.paths ?? {})) {
        if (isPublic(path, service)) expect(Object.keys(doc.paths?.[path] ?? {}), path).toEqual(expect.arrayContaining(Object.keys(item)));
        else if (!path.startsWith('/health') && path !== '/metrics' && !path.startsWith('/admin/')) expect(doc.paths?.[path], path).toBeUndefined();
      }
    }
    expect(doc.paths?.['/books']?.post).toBeDefined();
    expect(doc.paths?.['/reservations']?.post).toBeDefined();
    expect(doc.paths?.['/reservationPages/{reservationId}']?.get ?? doc.paths?.['/reservationPages/{id}']?.get).toBeDefined();
    // The internal hold is not public; the proxy's wildcards are not operations.
    expect(Object.keys(doc.paths ?? {}).filter((p) => p.includes('/holds') || p.includes('{*}'))).toEqual([]);
    // The gateway's own routes: health of the upstreams, the dead letters of every service.
    expect(doc.paths?.['/health/upstreams']?.get).toBeDefined();
    expect(Object.keys(doc.paths ?? {}).some((p) => p.startsWith('/admin/dead-letters'))).toBe(true);
    expect(doc.components?.schemas?.Problem).toBeDefined();

    // Sign-in is documented, and every operation that needs a token says so (Swagger UI's "Authorize").
    expect(doc.paths?.['/auth/token']?.post).toBeDefined();
    expect(doc.components?.securitySchemes).toMatchObject({ bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } });
    const op = (path: string, method: string) => doc.paths?.[path]?.[method] as { security?: unknown; 'x-bstore-role'?: string } | undefined;
    expect(op('/books', 'post')).toMatchObject({ security: [{ bearerAuth: [] }], 'x-bstore-role': 'staff' });
    expect(op('/reservations', 'post')).toMatchObject({ security: [{ bearerAuth: [] }], 'x-bstore-role': 'customer' });
    expect(op('/reservations/{reservationId}', 'get')).toMatchObject({ security: [{ bearerAuth: [] }], 'x-bstore-role': 'any' });
    expect(op('/books', 'get')?.security).toBeUndefined();
    expect(op('/libraries', 'get')?.security).toBeUndefined();
  });

  it("lists every route it registered itself, except the proxy's, in its own document", async () => {
    const own = system.gateway.app.ownOpenApiDocument();
    await validateOpenApi(own);
    const routes = system.gateway.app
      .registeredRoutes()
      .filter((r) => !r.hidden && OPENAPI_METHODS.has(r.method.toLowerCase()) && !r.url.endsWith('*') && !r.url.includes('/holds/'));
    const missing = routes.filter((r) => !own.paths?.[openApiPath(r.url)]?.[r.method.toLowerCase()]).map((r) => `${r.method} ${r.url}`);
    expect(missing).toEqual([]);
  });

  it('answers with a partial document naming the upstream that is down, not a 5xx', async () => {
    const upstreams = upstreamPools({ ...system.urls, book: 'http://127.0.0.1:9' });
    const doc = await aggregateOpenApi(system.gateway.app.ownOpenApiDocument(), upstreams, 1000);
    expect(doc['x-bstore-missing']).toEqual(['book']);
    expect(doc.paths?.['/books']).toBeUndefined();
    expect(doc.paths?.['/reservations']?.post).toBeDefined();
    await validateOpenApi(doc);
  });

  it('serves Swagger UI at GET /docs from the package, pointed at /openapi.json', async () => {
    const page = await fetch(`${system.urls.gateway}/docs`, { redirect: 'follow' });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('swagger-ui');
    expect(html).not.toMatch(/https?:\/\/(cdn|unpkg)/);
    const initializer = await fetch(`${system.urls.gateway}/docs/static/swagger-initializer.js`);
    expect(initializer.status).toBe(200);
    expect(await initializer.text()).toContain('"/openapi.json"');
    const bundle = await fetch(`${system.urls.gateway}/docs/static/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toMatch(/javascript/);
    await bundle.arrayBuffer();
  });

  it('serves at GET /asyncapi.json the AsyncAPI document of the integration events', async () => {
    const { status, body } = await getJson<unknown>(`${system.urls.gateway}/asyncapi.json`);
    expect(status).toBe(200);
    expect(body).toEqual(asyncApiDocument());
  });
});

describe('AsyncAPI document', () => {
  it('is a valid AsyncAPI 3.0 document (@asyncapi/parser) with every event type at its subject', async () => {
    const doc = asyncApiDocument();
    const { document, diagnostics } = await new Parser().parse(doc);
    expect(diagnostics.filter((d) => d.severity === 0).map((d) => `${d.path.join('.')}: ${d.message}`)).toEqual([]);
    expect(document).toBeDefined();
    expect(document?.version()).toBe('3.0.0');

    const parsedChannels = new Map(document?.channels().all().map((c) => [c.address(), c]) ?? []);
    for (const type of EVENT_TYPES) {
      const channel = parsedChannels.get(subjectOf(type));
      expect(channel, type).toBeDefined();
      expect(channel?.messages().all().map((m) => m.name())).toEqual([type]);
      const payload = channel?.messages().all()[0]?.payload()?.json() as { properties: { type: { const: string }; data: { properties: object } } };
      expect(payload.properties.type.const).toBe(type);
      expect(Object.keys(payload.properties.data.properties).length).toBeGreaterThan(0);
    }
    expect(document?.channels().all()).toHaveLength(EVENT_TYPES.length);
    expect(document?.operations().all().every((o) => o.action() === 'send')).toBe(true);
  });
});
