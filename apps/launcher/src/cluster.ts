import { createLogger } from '@bstore/platform';
import { readClusterConfig } from './cluster-config.ts';
import { ConfigError } from './env.ts';
import { Supervisor } from './supervisor.ts';
import { MODULES } from './registry.ts';

/**
 * `npm run start:cluster`: the five services as separate processes on PostgreSQL, NATS JetStream
 * and Redis (by default this machine's local servers), restarted with backoff when one crashes.
 * Ctrl+C stops them all gracefully. README: "Cluster mode" lists every variable.
 */
const terminal = process.stdout.isTTY === true;
let config;
try {
  config = readClusterConfig(process.env, terminal);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`bstore cluster: configuration error: ${err.message}\n`);
  process.exit(2);
}
const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'info', pretty: terminal && process.env.LOG_FORMAT !== 'json' }).child({ service: 'supervisor' });
const supervisor = new Supervisor(config, logger);
supervisor.start();

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'stopping every service');
  supervisor
    .stop()
    .then(() => process.exit(0))
    .catch((err: unknown) => {
      logger.error({ err }, 'stop failed');
      process.exit(1);
    });
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));

// The banner once every service answers ready; the services themselves log why they wait.
const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
const urls = Object.fromEntries(config.services.map((name) => [name, `http://${host}:${config.ports[name]}`]));
const ready = async (url: string) => (await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined))?.ok === true;
// The public entry (the service that signs users in).
const entry = MODULES.find((m) => m.issuesTokens);
const since = Date.now();
while (!stopping) {
  const states = await Promise.all(Object.values(urls).map(ready));
  if (states.every(Boolean)) break;
  await new Promise((r) => setTimeout(r, 500));
}
if (!stopping) {
  process.stdout.write(`
bstore is running (cluster mode: ${config.services.length} processes, ready in ${((Date.now() - since) / 1000).toFixed(1)} s)

${Object.entries(urls)
  .map(([name, url]) => `  ${name.padEnd(15)} ${url}   pid ${supervisor.pids[name as keyof typeof supervisor.pids] ?? '?'}`)
  .join('\n')}
${
  config.demoAuth
    ? `
Demo sign-in (DEMO ONLY: the signing key is published; never expose this beyond your machine):
  alice/alice and bob/bob (patrons), librarian/librarian (staff), at POST ${entry ? (urls[entry.name] ?? '') : ''}/auth/token
`
    : ''
}
Press Ctrl+C to stop them all.
`);
}
