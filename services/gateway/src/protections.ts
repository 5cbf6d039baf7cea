import { createHash } from 'node:crypto';
import cors from '@fastify/cors';
import helmet, { type HelmetOptions } from 'helmet';
import rateLimit, { type CreateRateLimitOptions } from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import { HttpProblem, type HttpApp } from '@bstore/platform/http';

export interface GatewayProtectionOptions {
  rateLimit: {
    /** Requests per minute per caller (bearer token); 0 turns the limit off. */
    perTokenPerMinute: number;
    /** Requests per minute per client IP address; 0 turns the limit off. */
    perIpPerMinute: number;
  };
  /** Exact origins (`https://app.example.org`) a browser may call from; empty: no CORS at all. */
  corsOrigins: readonly string[];
}

export const DEFAULT_PROTECTIONS: GatewayProtectionOptions = {
  rateLimit: { perTokenPerMinute: 600, perIpPerMinute: 1200 },
  corsOrigins: [],
};

/**
 * The Content-Security-Policy of the web app's page (GET /): its own scripts, styles, images and
 * API calls only, nothing inline, no plugins, never framed. Every other answer keeps the API's
 * `default-src 'none'`.
 */
export const WEB_APP_CSP_DIRECTIVES: Readonly<Record<string, readonly string[]>> = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  fontSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

const WINDOW_MS = 60_000;
/** Callers remembered per limiter (least recently seen forgotten first). */
const TRACKED_KEYS = 10_000;

/** Probes and scrapes are never limited: an orchestrator must always see the gateway's health. */
const EXEMPT_ROUTES = new Set(['/health/live', '/health/ready', '/health/upstreams', '/metrics']);

/** The methods and headers of the public API a browser may use and read. */
const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'PUT', 'DELETE'];
const CORS_EXPOSED_HEADERS = [
  'x-request-id',
  'retry-after',
  'location',
  'idempotent-replayed',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
];

/**
 * An origin as a browser sends it: `scheme://host[:port]`, nothing more. Throws on anything else
 * (a path, a trailing slash, a wildcard), so a typo fails at start instead of opening or closing
 * CORS silently.
 */
export function parseOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${JSON.stringify(value)} is not an origin (expected scheme://host[:port])`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== value) {
    throw new Error(`${JSON.stringify(value)} is not an origin (expected scheme://host[:port], e.g. https://app.example.org)`);
  }
  return value;
}

/**
 * The key of the per-token limit: the bearer credential (hashed, so no token is kept in memory).
 * It is read before the token is verified, so that a flood of bad tokens is limited too; a caller
 * who signs in again for a fresh token is still held by the per-IP limit and the sign-in limit.
 * Anonymous calls have no key: only the per-IP limit counts them.
 */
export function tokenKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string' && authorization.trim() !== '') {
    const bearer = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    return `token:${sha256(bearer?.[1] ?? authorization.trim())}`;
  }
  return undefined;
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** The API's security headers: it returns JSON, never a page, so nothing may be loaded, framed or submitted from it. */
const API_SECURITY_HEADERS: Readonly<HelmetOptions> = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
  },
  strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
  xFrameOptions: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
};

/**
 * helmet's headers on every answer, with a route's own options (`config.helmet`, the web app's
 * page and its CSP) over the API's. Each configuration's middleware is built once: @fastify/helmet
 * built helmet's middleware (its options parsed, its CSP directives validated) again on every
 * request, some 7 % of the gateway's CPU under load.
 */
function securityHeaders(app: HttpApp): void {
  const api = helmet(API_SECURITY_HEADERS);
  const perRoute = new WeakMap<HelmetOptions, ReturnType<typeof helmet>>();
  const middlewareOf = (own: HelmetOptions | undefined) => {
    if (own === undefined) return api;
    let middleware = perRoute.get(own);
    if (!middleware) perRoute.set(own, (middleware = helmet({ ...API_SECURITY_HEADERS, ...own } as HelmetOptions)));
    return middleware;
  };
  app.addHook('onRequest', (request, reply, done) => {
    const own = (request.routeOptions.config as { helmet?: HelmetOptions } | undefined)?.helmet;
    middlewareOf(own)(request.raw, reply.raw, (err?: unknown) => done(err instanceof Error ? err : undefined));
  });
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's security headers (helmet's options), over the API's (`gatewayProtections`). */
    helmet?: HelmetOptions;
  }
}

/**
 * The gateway's edge protections, on every route of the instance it is registered in (it is not
 * encapsulated, like fastify-plugin): security headers, a CORS allow-list, and rate limits per
 * caller and per IP, answered as 429 problem+json with `Retry-After`.
 *
 * The counters live in this process's memory: with N gateway replicas a caller gets up to N times
 * the limit. A shared store (the plugin's Redis store) is the upgrade path.
 */
export async function gatewayProtections(app: HttpApp, options: GatewayProtectionOptions): Promise<void> {
  // 1. Security headers, first, so that every answer carries them (problems and 429s included).
  securityHeaders(app);

  // 2. CORS for the configured origins only; any other origin gets no CORS header at all.
  const allowed = new Set(options.corsOrigins.map(parseOrigin));
  await app.register(cors, {
    origin: (origin: string | undefined, callback: (err: Error | null, allow: boolean) => void) => callback(null, origin !== undefined && allowed.has(origin)),
    methods: CORS_METHODS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    maxAge: 600,
    credentials: false,
  });

  // 3. Rate limits (plugin's counters, the gateway's own problem+json answer).
  await app.register(rateLimit, { global: false });
  const limiters = [
    { scope: 'ip', max: options.rateLimit.perIpPerMinute, key: (request: FastifyRequest): string | undefined => request.ip },
    { scope: 'token', max: options.rateLimit.perTokenPerMinute, key: tokenKey },
  ]
    .filter((limit) => limit.max > 0)
    .map((limit) => {
      const settings: CreateRateLimitOptions & { cache: number } = {
        max: limit.max,
        timeWindow: WINDOW_MS,
        cache: TRACKED_KEYS,
        // The plugin's default key for the IP limit (it folds an IPv6 /64 into one client).
        ...(limit.scope === 'token' ? { keyGenerator: (request: FastifyRequest) => tokenKey(request) ?? '' } : {}),
      };
      return { ...limit, check: app.createRateLimit(settings) };
    });

  app.addHook('onRequest', async (request, reply) => {
    if (EXEMPT_ROUTES.has(request.routeOptions.url ?? '')) return;
    let shown: { max: number; remaining: number; reset: number } | undefined;
    for (const limiter of limiters) {
      if (limiter.key(request) === undefined) continue;
      const result = await limiter.check(request);
      if (result.isAllowed) continue;
      if (result.isExceeded) {
        const retryAfter = String(Math.max(1, result.ttlInSeconds));
        throw new HttpProblem(429, 'RATE_LIMITED', `too many requests ${limiter.scope === 'ip' ? 'from this address' : 'for this caller'}: at most ${result.max} a minute; retry in ${retryAfter} s`, {
          extensions: { limit: result.max, scope: limiter.scope },
          headers: { 'retry-after': retryAfter, 'x-ratelimit-limit': String(result.max), 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': retryAfter },
        });
      }
      // The headers show the limit closest to running out.
      if (shown === undefined || result.remaining < shown.remaining) shown = { max: result.max, remaining: result.remaining, reset: result.ttlInSeconds };
    }
    if (shown) {
      reply.header('x-ratelimit-limit', String(shown.max)).header('x-ratelimit-remaining', String(shown.remaining)).header('x-ratelimit-reset', String(shown.reset));
    }
  });

  // 4. A preflight from an origin not allowed is refused here, never forwarded to a service.
  app.addHook('onRequest', async (request) => {
    if (request.method === 'OPTIONS' && request.headers.origin !== undefined && request.headers['access-control-request-method'] !== undefined) {
      throw new HttpProblem(403, 'CORS_ORIGIN_NOT_ALLOWED', 'this origin may not call the API from a browser');
    }
  });
}

// Registered like a fastify-plugin: its hooks apply to the whole gateway, not to a child scope.
(gatewayProtections as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
(gatewayProtections as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = 'bstore-gateway-protections';
