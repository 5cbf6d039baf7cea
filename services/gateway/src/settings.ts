import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, setting } from '@bstore/platform/runtime';
import { DEFAULT_PROTECTIONS } from './protections.ts';

const HTTP = ['http:', 'https:'];

/** The repository's built web app (`npm run build:web`), from this package's src/ or dist/ alike. */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../../web/dist', import.meta.url));

/** BSTORE_CORS_ORIGINS: comma-separated exact origins (`https://app.example.org`), each checked. */
function corsOrigins(text: string | undefined): string[] {
  const origins = (text ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin.length > 0);
  for (const origin of origins) {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== origin) {
      throw new ConfigError(`BSTORE_CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin (scheme://host[:port], no path or trailing slash, e.g. https://app.example.org)`);
    }
  }
  return origins;
}

/**
 * BSTORE_WEB_ROOT: the built web app's folder (a relative path is taken from the current
 * directory); unset: the repository's web/dist; set but empty: none (undefined: GET / is a 404).
 */
function webRoot(text: string | undefined): string | undefined {
  if (text === undefined) return DEFAULT_WEB_ROOT;
  return text.trim() === '' ? undefined : resolve(text.trim());
}

/** The gateway's own settings (README: "Environment of a service process" and "Gateway protections"). */
export const gatewaySettings = {
  /** Each upstream: one URL (a Kubernetes Service) or its replicas, comma-separated, taken in turn. */
  reservationUrl: setting.urlList('RESERVATION_URL', HTTP, 'http://127.0.0.1:8081'),
  assignmentUrl: setting.urlList('ASSIGNMENT_URL', HTTP, 'http://127.0.0.1:8082'),
  bookUrl: setting.urlList('BOOK_URL', HTTP, 'http://127.0.0.1:8083'),
  customercenterUrl: setting.urlList('CUSTOMERCENTER_URL', HTTP, 'http://127.0.0.1:8084'),
  notificationUrl: setting.urlList('NOTIFICATION_URL', HTTP, 'http://127.0.0.1:8085'),
  timeoutMs: setting.int('UPSTREAM_TIMEOUT_MS', 10_000, { min: 100, max: 300_000 }),
  rateLimitPerToken: setting.int('BSTORE_RATE_LIMIT_PER_MINUTE', DEFAULT_PROTECTIONS.rateLimit.perTokenPerMinute, { min: 0, max: 1_000_000 }),
  rateLimitPerIp: setting.int('BSTORE_RATE_LIMIT_IP_PER_MINUTE', DEFAULT_PROTECTIONS.rateLimit.perIpPerMinute, { min: 0, max: 1_000_000 }),
  loginAttemptsPerMinute: setting.int('BSTORE_LOGIN_ATTEMPTS_PER_MINUTE', 10, { min: 0, max: 1_000_000 }),
  corsOrigins: setting.custom('BSTORE_CORS_ORIGINS', '— (no CORS)', corsOrigins),
  webRoot: setting.custom('BSTORE_WEB_ROOT', "the repository's web/dist", webRoot),
};
