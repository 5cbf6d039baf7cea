import { asyncApiDocument } from '@bstore/contracts';
import { swaggerUiDocs, type HttpApp, type OpenApiDocument } from '@bstore/platform/http';
import { ROUTES, type Upstream } from './routes.ts';
import { fromStartingReplica, type UpstreamPools } from './upstreams.ts';

export interface GatewayApiDocsOptions {
  upstreams: UpstreamPools;
  /** Longest wait for one upstream's document; one that does not answer is listed as missing. */
  timeoutMs?: number;
}

/** The services whose documents are merged, in this order. */
const UPSTREAMS: readonly Upstream[] = ['book', 'reservation', 'assignment', 'customercenter', 'notification'];

/** The service that owns a path through the gateway's proxy (the longest matching prefix), if any. */
export function proxiedBy(path: string): Upstream | undefined {
  let best: { prefix: string; upstream: Upstream } | undefined;
  for (const route of ROUTES) {
    if ((path === route.prefix || path.startsWith(`${route.prefix}/`)) && (!best || route.prefix.length > best.prefix.length)) best = route;
  }
  return best?.upstream;
}

/** The gateway refuses the book holds (`/books/:bookId/holds/*` in routes.ts): reservation's internal call. */
const BLOCKED = /^\/books\/[^/]+\/holds\//;

/** Whether an upstream's path is reachable through the gateway, so belongs in the public document. */
export function isPublic(path: string, upstream: Upstream): boolean {
  return proxiedBy(path) === upstream && !BLOCKED.test(path);
}

type Schemas = Record<string, unknown>;

/** Adds `from`'s component schemas to `into`; a name already taken by another schema is prefixed with the service. */
function mergeSchemas(into: Schemas, from: Schemas, service: string): Record<string, string> {
  const renamed: Record<string, string> = {};
  for (const [name, schema] of Object.entries(from)) {
    const existing = into[name];
    if (existing === undefined || JSON.stringify(existing) === JSON.stringify(schema)) {
      into[name] = schema;
    } else {
      renamed[name] = `${service}.${name}`;
      into[renamed[name]] = schema;
    }
  }
  return renamed;
}

function renameRefs<T>(value: T, renamed: Record<string, string>): T {
  if (Object.keys(renamed).length === 0) return value;
  let text = JSON.stringify(value);
  for (const [from, to] of Object.entries(renamed)) text = text.replaceAll(`"#/components/schemas/${from}"`, `"#/components/schemas/${to}"`);
  return JSON.parse(text) as T;
}

/**
 * The public OpenAPI 3.1 document: the gateway's own routes (health, dead letters; not the proxy
 * itself) and, of each upstream's GET /openapi.json, the paths the gateway proxies. An upstream that
 * does not answer leaves its paths out and is named in `x-bstore-missing`: a partial document, not a 5xx.
 */
export async function aggregateOpenApi(own: OpenApiDocument, upstreams: UpstreamPools, timeoutMs = 2000): Promise<OpenApiDocument> {
  const paths: Record<string, Record<string, unknown>> = {};
  const schemas: Schemas = {};
  const tags = new Map<string, { name: string; description?: string }>();
  const addTags = (doc: OpenApiDocument) => {
    for (const tag of doc.tags ?? []) if (!tags.has(tag.name)) tags.set(tag.name, tag);
  };

  for (const [path, item] of Object.entries(own.paths ?? {})) {
    if (proxiedBy(path) === undefined) paths[path] = item;
  }
  mergeSchemas(schemas, own.components?.schemas ?? {}, 'gateway');
  addTags(own);

  const fetched = await Promise.all(
    UPSTREAMS.map(async (name) => {
      try {
        const res = await upstreams[name].attempt((base) => fetch(`${base}/openapi.json`, { signal: AbortSignal.timeout(timeoutMs) }), fromStartingReplica);
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const doc = (await res.json()) as OpenApiDocument;
        if (typeof doc.paths !== 'object' || doc.paths === null) throw new Error('no paths');
        return { name, doc };
      } catch {
        return { name, doc: undefined };
      }
    }),
  );

  const missing: Upstream[] = [];
  for (const { name, doc } of fetched) {
    if (!doc) {
      missing.push(name);
      continue;
    }
    const renamed = mergeSchemas(schemas, doc.components?.schemas ?? {}, name);
    for (const [path, item] of Object.entries(doc.paths ?? {})) {
      if (isPublic(path, name)) paths[path] = { ...paths[path], ...renameRefs(item, renamed) };
    }
    addTags(doc);
  }

  const usedTags = new Set(Object.values(paths).flatMap((item) => Object.values(item).flatMap((op) => (op as { tags?: string[] }).tags ?? [])));
  return {
    openapi: '3.1.0',
    info: {
      title: 'bstore',
      version: own.info.version,
      description: 'The public API of bstore, through the gateway: merged from the services\' own documents.',
    },
    servers: [{ url: '/' }],
    tags: [...usedTags].sort().map((name) => tags.get(name) ?? { name }),
    paths: Object.fromEntries(Object.entries(paths).sort(([a], [b]) => a.localeCompare(b))),
    // Every service declares the same bearer scheme (platform's openapi.ts); the gateway's is the one kept.
    components: { ...(Object.keys(schemas).length > 0 ? { schemas } : {}), securitySchemes: own.components?.securitySchemes ?? {} },
    ...(missing.length > 0 ? { 'x-bstore-missing': missing } : {}),
  };
}

/**
 * The gateway's documentation: GET /openapi.json (the aggregated public document), GET /docs
 * (Swagger UI, assets served from the package) and GET /asyncapi.json (the integration events).
 */
export async function gatewayApiDocs(app: HttpApp, options: GatewayApiDocsOptions): Promise<void> {
  app.setOpenApiDocument(() => aggregateOpenApi(app.ownOpenApiDocument(), options.upstreams, options.timeoutMs));
  await app.register(swaggerUiDocs, { routePrefix: '/docs', documentUrl: '/openapi.json' });
  const asyncapi = asyncApiDocument();
  app.get('/asyncapi.json', { schema: { hide: true } }, async () => asyncapi);
}
