import { defineService } from '@bstore/platform/runtime';
import { createGatewayService, type GatewayConfig } from './main.ts';
import { DEFAULT_WEB_ROOT, gatewaySettings } from './settings.ts';

export { DEFAULT_WEB_ROOT, gatewaySettings };

type GatewaySettingValues = {
  reservationUrl: readonly string[];
  assignmentUrl: readonly string[];
  bookUrl: readonly string[];
  customercenterUrl: readonly string[];
  timeoutMs: number;
  rateLimitPerToken: number;
  rateLimitPerIp: number;
  loginAttemptsPerMinute: number;
  corsOrigins: readonly string[];
  webRoot: string | undefined;
};

/** The gateway's configuration from its settings. */
export function gatewayConfigOf(s: GatewaySettingValues & Pick<GatewayConfig, 'streamIdleTimeoutMs'>): GatewayConfig {
  return {
    upstreams: { reservation: s.reservationUrl, assignment: s.assignmentUrl, book: s.bookUrl, customercenter: s.customercenterUrl },
    timeoutMs: s.timeoutMs,
    rateLimit: { perTokenPerMinute: s.rateLimitPerToken, perIpPerMinute: s.rateLimitPerIp },
    loginAttemptsPerMinute: s.loginAttemptsPerMinute,
    corsOrigins: s.corsOrigins,
    ...(s.streamIdleTimeoutMs !== undefined ? { streamIdleTimeoutMs: s.streamIdleTimeoutMs } : {}),
    ...(s.webRoot !== undefined ? { webRoot: s.webRoot } : {}),
  };
}

/** The gateway as every host runs it: the only public entry, routing to the four services and serving the web app (the seed's port 8088). */
export const gatewayService = defineService({
  name: 'gateway',
  defaultPort: 8088,
  settings: gatewaySettings,
  usesBus: false,
  issuesTokens: true,
  build: (deps, config: GatewaySettingValues & Pick<GatewayConfig, 'streamIdleTimeoutMs'>) => createGatewayService(deps, gatewayConfigOf(config)),
});
