import closeWithGrace from 'close-with-grace';
import { createLogger } from '@bstore/platform';
import { ConfigError } from './env.ts';
import { readServiceConfig } from './service-config.ts';
import { runService } from './service-process.ts';

/**
 * One bstore service as its own process (cluster mode):
 *   node --conditions=source apps/launcher/src/service.ts <book|reservation|assignment|customercenter|gateway>
 * Configuration comes from the environment (README: "Cluster mode"); a bad variable stops the
 * process at once with a message naming it. SIGTERM or SIGINT stops it gracefully; a second
 * signal, or the grace period running out, ends it at once.
 */
const service = process.argv[2] ?? process.env.BSTORE_SERVICE ?? '';
let config;
try {
  config = readServiceConfig(process.env, service);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`bstore ${service || '(no service named)'}: configuration error: ${err.message}\n`);
  process.exit(2);
}

const root = createLogger({ level: config.log.level, pretty: config.log.format === 'pretty' });
const logger = root.child({ service: config.service });
const starting = new AbortController();
let running: Awaited<ReturnType<typeof runService>> | undefined;

closeWithGrace({ delay: config.shutdownGraceMs, logger: { error: (message: string) => logger.error(message) } }, async ({ signal, err }) => {
  if (err) logger.fatal({ err }, 'stopping after an unexpected error');
  else logger.info({ signal }, 'stopping');
  starting.abort();
  await running?.stop();
  logger.info('stopped');
});

// Started by the cluster supervisor: stop when it is gone, rather than live on as an orphan.
if (process.send) process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));

try {
  running = await runService(config, root, starting.signal);
  logger.info({ url: running.url, database: config.database ? 'postgres' : 'none', bus: config.nats ? 'nats' : 'none' }, `${config.service} is ready`);
} catch (err) {
  if (!starting.signal.aborted) {
    logger.fatal({ err }, 'failed to start');
    process.exit(1);
  }
}
