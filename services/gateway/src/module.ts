import { defineService, type SettingsOf } from '@bstore/platform/runtime';
import { createGatewayService, type GatewayConfig } from './main.ts';
import { DEFAULT_WEB_ROOT, gatewaySettings } from './settings.ts';

export { DEFAULT_WEB_ROOT, gatewaySettings };

/** What the gateway's `build` takes: its settings, and a host's idle timeout of streams (tests). */
type GatewaySettingValues = SettingsOf<typeof gatewaySettings> & Pick<GatewayConfig, 'streamIdleTimeoutMs'>;

/** The gateway's configuration from its settings. */
function gatewayConfigOf(s: GatewaySettingValues): GatewayConfig {
  return {
    upstreams: { reservation: s.reservationUrl, assignment: s.assignmentUrl, book: s.bookUrl, customercenter: s.customercenterUrl, notification: s.notificationUrl },
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
  build: (deps, config: GatewaySettingValues) => createGatewayService(deps, gatewayConfigOf(config)),
});
