import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, createLogger, createServiceAuth, readSettings } from '@bstore/platform';
import { readAuthConfig } from './auth-config.ts';
import { readTracingConfig } from './tracing-config.ts';
import { warnAboutIdentity } from './service-process.ts';
import { startEmbedded } from './embedded-system.ts';
import { boolSetting, intSetting, listSetting } from './env.ts';
import { DEFAULT_PORTS, MODULES, SERVICE_NAMES, type ServiceName } from './registry.ts';

/**
 * `npm start`: the whole system on this machine, no database or broker to install.
 * Its own environment: BSTORE_DATA_DIR (default ./data), BSTORE_HOST (default 127.0.0.1),
 * BSTORE_<SERVICE>_PORT (default the seed's ports), BSTORE_DEMO_DATA (default true), LOG_LEVEL,
 * LOG_FORMAT, and BSTORE_PAUSED_CONSUMERS (a fault drill: e.g. `assignment` starts with its
 * consumer stopped). Every service reads its own settings from this environment by its module's
 * schema, as a service process does (README: "Environment of a service process"): the book
 * timeout, the limits, the deadlines, the gateway's protections and web root, and the rest.
 * Identity: the demo users (alice, bob, librarian) unless BSTORE_AUTH_* configures real identity
 * (docs/security.md); BSTORE_DEMO_AUTH=false without it refuses to start.
 * Tracing: off unless the OTEL_* variables ask for it (tracing-config.ts, docs/operations.md).
 */
const env = process.env;
const logger = createLogger({ level: env.LOG_LEVEL ?? 'info', pretty: process.stdout.isTTY && env.LOG_FORMAT !== 'json' });

/** Reads a setting at start, or stops with exit code 2 and the message naming the variable. */
function orExit<T>(what: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    logger.fatal({ err }, `bad ${what} configuration`);
    process.exit(2);
  }
}

const dataDir = resolve(env.BSTORE_DATA_DIR ?? 'data');
const host = env.BSTORE_HOST ?? '127.0.0.1';
const ports = orExit('port', () =>
  Object.fromEntries(SERVICE_NAMES.map((name) => [name, intSetting(env, `BSTORE_${name.toUpperCase()}_PORT`, DEFAULT_PORTS[name], { min: 0, max: 65_535 })])),
) as Record<ServiceName, number>;
const pausedConsumers = orExit('drill', () => listSetting(env, 'BSTORE_PAUSED_CONSUMERS', SERVICE_NAMES));
const seedDemoData = orExit('demo data', () => boolSetting(env, 'BSTORE_DEMO_DATA', true));
// Every service's settings are checked before anything starts; each service reads them again, the same way.
const settings = Object.fromEntries(MODULES.map((m) => [m.name, orExit(m.name, () => readSettings(m.settings, env))]));
const authConfig = orExit('identity', () => readAuthConfig(env, 'embedded', true));
const tracing = orExit('tracing', () => readTracingConfig(env));
// In one process every service both makes and takes the internal call: one ServiceAuth, one key.
const auth = await createServiceAuth(authConfig.settings);
// The web app the public entry serves (its BSTORE_WEB_ROOT), for the banner.
const entry = MODULES.find((m) => m.issuesTokens);
const webRoot = entry ? (settings[entry.name] as { webRoot?: string } | undefined)?.webRoot : undefined;

const started = Date.now();
const system = await startEmbedded({ dataDir, host, ports, logger, seedDemoData, pausedConsumers, env, auth, tracing }).catch((err: unknown) => {
  logger.fatal({ err }, 'bstore failed to start');
  process.exit(1);
});

const gw = entry ? system.urls[entry.name as ServiceName] : '';
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

${SERVICE_NAMES.map((name) => `  ${name.padEnd(16)}${system.urls[name]}`).join('\n')}

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
