import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createLogger, createServiceAuth } from '@bstore/platform';
import { readAuthConfig } from './auth-config.ts';
import { readTracingConfig } from './tracing-config.ts';
import { warnAboutIdentity } from './service-process.ts';
import { DEFAULT_PORTS, startEmbedded, type ServiceName } from './embedded-system.ts';
import { intSetting, listSetting } from './env.ts';
import { readGatewayProtections, readLendingSettings, readWebRoot } from './service-config.ts';

/**
 * `npm start`: the whole system on this machine, no database or broker to install.
 * Environment: BSTORE_DATA_DIR (default ./data), BSTORE_HOST (default 127.0.0.1),
 * BSTORE_<SERVICE>_PORT (default the seed's ports), BSTORE_DEMO_DATA (default true), LOG_LEVEL,
 * BSTORE_SWEEP_INTERVAL_MS and BSTORE_PENDING_STALE_AFTER_MS (the recovery sweep), and
 * BSTORE_PAUSED_CONSUMERS (a fault drill: e.g. `assignment` starts with its consumer stopped),
 * and the gateway's BSTORE_RATE_LIMIT_PER_MINUTE, BSTORE_RATE_LIMIT_IP_PER_MINUTE and BSTORE_CORS_ORIGINS,
 * and BSTORE_WEB_ROOT (the built web app served at /; default web/dist, `npm run build:web`; empty: none),
 * and the library's deadlines BSTORE_PICKUP_PERIOD (default P7D), BSTORE_LOAN_PERIOD (default P14D)
 * and BSTORE_DEADLINE_SWEEP_INTERVAL_MS (default 60000) (ADR 0022).
 * Identity: the demo users (alice, bob, librarian) unless BSTORE_AUTH_* configures real identity
 * (docs/security.md); BSTORE_DEMO_AUTH=false without it refuses to start.
 * Tracing: off unless the OTEL_* variables ask for it (tracing-config.ts, docs/operations.md).
 */
const env = process.env;
const dataDir = resolve(env.BSTORE_DATA_DIR ?? 'data');
const host = env.BSTORE_HOST ?? '127.0.0.1';
const names = Object.keys(DEFAULT_PORTS) as ServiceName[];
const ports = Object.fromEntries(
  names.map((name) => [name, intSetting(env, `BSTORE_${name.toUpperCase()}_PORT`, DEFAULT_PORTS[name], { min: 0, max: 65_535 })]),
) as Record<ServiceName, number>;
const pausedConsumers = listSetting(env, 'BSTORE_PAUSED_CONSUMERS', names);
const sweepIntervalMs = intSetting(env, 'BSTORE_SWEEP_INTERVAL_MS', 5000, { min: 100, max: 3_600_000 });
const staleAfterMs = intSetting(env, 'BSTORE_PENDING_STALE_AFTER_MS', 10_000, { min: 0, max: 86_400_000 });
const maxActiveReservationsPerCustomer = intSetting(env, 'BSTORE_MAX_ACTIVE_RESERVATIONS', 5, { min: 1, max: 10_000 });
const gateway = readGatewayProtections(env);
const webRoot = readWebRoot(env);
const logger = createLogger({ level: env.LOG_LEVEL ?? 'info', pretty: process.stdout.isTTY && env.LOG_FORMAT !== 'json' });
const lending = (() => {
  try {
    return readLendingSettings(env);
  } catch (err) {
    logger.fatal({ err }, 'bad deadline configuration');
    process.exit(2);
  }
})();
const authConfig = (() => {
  try {
    return readAuthConfig(env, 'embedded', true);
  } catch (err) {
    logger.fatal({ err }, 'bad identity configuration');
    process.exit(2);
  }
})();
const tracing = (() => {
  try {
    return readTracingConfig(env);
  } catch (err) {
    logger.fatal({ err }, 'bad tracing configuration');
    process.exit(2);
  }
})();
// In one process every service both makes and takes the internal call: one ServiceAuth, one key.
const auth = await createServiceAuth(authConfig.settings);

const started = Date.now();
const system = await startEmbedded({
  dataDir,
  host,
  ports,
  logger,
  seedDemoData: env.BSTORE_DEMO_DATA !== 'false',
  pausedConsumers,
  reservation: {
    sweepIntervalMs,
    staleAfterMs,
    maxActiveReservationsPerCustomer,
    ...lending,
    ...(env.BSTORE_IDEMPOTENCY_LOCK_MS ? { idempotencyLockMs: intSetting(env, 'BSTORE_IDEMPOTENCY_LOCK_MS', 60_000, { min: 1000, max: 86_400_000 }) } : {}),
  },
  assignment: { pickupPeriodMs: lending.pickupPeriodMs },
  gateway: { ...gateway, loginAttemptsPerMinute: intSetting(env, 'BSTORE_LOGIN_ATTEMPTS_PER_MINUTE', 10, { min: 0, max: 1_000_000 }) },
  auth,
  tracing,
  webRoot: webRoot ?? false,
}).catch((err: unknown) => {
  logger.fatal({ err }, 'bstore failed to start');
  process.exit(1);
});

const gw = system.urls.gateway;
// The web app's address as a person would type it: localhost for a loopback or wildcard address.
const appUrl = (() => {
  const url = new URL(gw);
  if (['127.0.0.1', '0.0.0.0', '[::]', '[::1]'].includes(url.hostname)) url.hostname = 'localhost';
  return url.origin;
})();
const webLine =
  webRoot === undefined
    ? ''
    : existsSync(join(webRoot, 'index.html'))
      ? `Open ${appUrl} in a browser (the web app).\n\n`
      : `The web app at ${appUrl} is not built yet: run npm run build:web (${webRoot}).\n\n`;
process.stdout.write(`
${webLine}bstore is running (embedded mode, data in ${dataDir}, started in ${((Date.now() - started) / 1000).toFixed(1)} s)

  gateway         ${gw}
  reservation     ${system.urls.reservation}
  assignment      ${system.urls.assignment}
  book            ${system.urls.book}
  customercenter  ${system.urls.customercenter}

Try it:
  curl ${gw}/books
${auth.demo ? `
Demo sign-in (DEMO ONLY: the signing key is published; never expose this beyond your machine):
  alice/alice and bob/bob (patrons), librarian/librarian (staff)

  TOKEN=$(curl -s -X POST ${gw}/auth/token -H 'content-type: application/json' -d '{"username":"alice","password":"alice"}' | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/')
  curl -X POST ${gw}/reservations -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"bookId":1}'
  curl ${gw}/reservationPages/1 -H "authorization: Bearer $TOKEN"
  curl -X PATCH ${gw}/reservations/1 -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"status":"bookCancel"}'
` : `
Identity is configured (BSTORE_AUTH_*): sign in with your users at POST ${gw}/auth/token, or with your identity provider.
`}
Press Ctrl+C to stop.
`);
warnAboutIdentity(authConfig, logger);
if (pausedConsumers.length > 0) {
  logger.warn({ pausedConsumers }, 'fault drill: these services consume no events until restarted without BSTORE_PAUSED_CONSUMERS');
}

let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'stopping bstore');
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  system
    .stop()
    .then(() => process.exit(0))
    .catch((err: unknown) => {
      logger.error({ err }, 'stop failed');
      process.exit(1);
    });
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
