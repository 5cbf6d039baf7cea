import { ServiceRuntime, createHttpApp, type Logger } from '@bstore/platform';
import { gatewayRoutes, type Upstream } from './routes.ts';

export interface GatewayConfig {
  upstreams: Record<Upstream, string>;
  timeoutMs?: number;
  streamIdleTimeoutMs?: number;
}

export type GatewayService = ServiceRuntime<{ upstreams: Record<Upstream, string> }>;

/** Composition root of the gateway: the only public entry, routing to the four services. */
export async function createGatewayService(deps: { logger: Logger }, config: GatewayConfig): Promise<GatewayService> {
  const logger = deps.logger.child({ service: 'gateway' });
  const app = createHttpApp({ service: 'gateway', logger, bodyLimit: 64 * 1024 });
  await app.register(gatewayRoutes, {
    upstreams: config.upstreams,
    timeoutMs: config.timeoutMs ?? 10_000,
    streamIdleTimeoutMs: config.streamIdleTimeoutMs ?? 60_000,
  });
  return new ServiceRuntime({ name: 'gateway', logger, app, internals: { upstreams: config.upstreams } });
}
