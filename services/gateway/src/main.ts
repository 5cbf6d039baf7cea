import type { ServiceAuth } from '@bstore/platform/auth';
import { createHttpApp, registerAuthentication } from '@bstore/platform/http';
import { tracingOf, type Logger, type ServiceTracing } from '@bstore/platform/observability';
import { ServiceRuntime, readSettings } from '@bstore/platform/runtime';
import type { FastifyInstance } from 'fastify';
import { authRoutes } from './auth.routes.ts';
import { gatewayRoutes, type Upstream } from './routes.ts';
import { upstreamPools } from './upstreams.ts';
import { gatewayApiDocs } from './api-docs.ts';
import { DEFAULT_PROTECTIONS, gatewayProtections, type GatewayProtectionOptions } from './protections.ts';
import { gatewaySettings } from './settings.ts';
import { webApp } from './web.ts';

/** The settings' defaults (settings.ts), for a gateway built without them (tests). */
const DEFAULTS = readSettings(gatewaySettings, {});

export interface GatewayConfig {
  /** Each service's URL, or its replicas' URLs (requests go to them in turn; see upstreams.ts). */
  upstreams: Record<Upstream, string | readonly string[]>;
  timeoutMs?: number;
  streamIdleTimeoutMs?: number;
  /** Rate limits per caller and per IP (default 600 and 1200 a minute; 0 turns one off). */
  rateLimit?: Partial<GatewayProtectionOptions['rateLimit']>;
  /** Exact origins allowed to call from a browser (CORS); default none. */
  corsOrigins?: readonly string[];
  /** Sign-in attempts per minute per address and user name (default 10; 0 turns it off). */
  loginAttemptsPerMinute?: number;
  /**
   * Absolute path of the built web app (web/dist), served at GET / and /assets/*; omitted: no web
   * app (GET / is a 404). A folder without index.html answers GET / with 503 WEB_APP_NOT_BUILT.
   */
  webRoot?: string;
}

export type GatewayService = ServiceRuntime<Record<string, never>>;

/** Composition root of the gateway: the only public entry, routing to the four services (and serving the web app). */
export async function createGatewayService(deps: { logger: Logger; auth: ServiceAuth; tracing?: ServiceTracing }, config: GatewayConfig): Promise<GatewayService> {
  const logger = deps.logger.child({ service: 'gateway' });
  const tracing = tracingOf(deps, 'gateway');
  const app = createHttpApp({ service: 'gateway', tracing, logger, bodyLimit: 64 * 1024 });
  await app.register(gatewayProtections, {
    rateLimit: { ...DEFAULT_PROTECTIONS.rateLimit, ...config.rateLimit },
    corsOrigins: config.corsOrigins ?? DEFAULT_PROTECTIONS.corsOrigins,
  });
  // Tokens are verified here first (after the rate limits, so a flood of bad tokens is limited too)
  // and again by each service, which can be reached inside the cluster without the gateway.
  registerAuthentication(app as unknown as FastifyInstance, deps.auth);
  await app.register(authRoutes, { auth: deps.auth, loginAttemptsPerMinute: config.loginAttemptsPerMinute ?? DEFAULTS.loginAttemptsPerMinute });
  const upstreams = upstreamPools(config.upstreams);
  await app.register(gatewayRoutes, {
    upstreams,
    timeoutMs: config.timeoutMs ?? DEFAULTS.timeoutMs,
    streamIdleTimeoutMs: config.streamIdleTimeoutMs ?? 60_000,
  });
  await app.register(gatewayApiDocs, { upstreams });
  if (config.webRoot !== undefined) await app.register(webApp, { root: config.webRoot });
  return new ServiceRuntime<Record<string, never>>({ name: 'gateway', logger, tracing, app, operations: {} });
}
