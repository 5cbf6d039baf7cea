/**
 * Rebuilds the Redis read model from the event stream:
 *
 *   node --conditions=source services/customercenter/src/rebuild.ts    (npm run rebuild:customercenter)
 *
 * Environment: REDIS_URL (default redis://127.0.0.1:6379), NATS_URL (nats://127.0.0.1:4222),
 * BSTORE_STREAM (BSTORE), BSTORE_REDIS_PREFIX (bstore:customercenter:), LOG_LEVEL. Exits 0 when
 * done, 2 on a bad setting (naming the variable), 1 when the rebuild fails.
 */
import { InvalidEventError, parseEvent, subjectOf, type EventEnvelope } from '@bstore/contracts';
import { ConfigError, NatsJetStreamBus, createLogger, readNatsSettings, readSettings, type Env, type Logger, type NatsSettings, type StreamReplayer } from '@bstore/platform';
import { isPageEvent, type PageEvent } from './application/events.ts';
import { ProjectReservationEvent } from './application/project-reservation-event/project-reservation-event.service.ts';
import { PAGE_EVENT_TYPES } from './domain/reservation-page.ts';
import { connectRedis } from './adapters/redis/client.ts';
import { ReadModelKeys } from './adapters/redis/keys.ts';
import { RedisReservationPageStore } from './adapters/redis/reservation-page.store.ts';
import type { RedisReadModelConfig } from './main.ts';
import { customercenterSettings } from './settings.ts';

/** The subjects of the events pages are built from: those the customercenter consumer reads. */
export const PAGE_EVENT_SUBJECTS: readonly string[] = PAGE_EVENT_TYPES.map(subjectOf);

export interface RebuildOptions {
  /** Only the replay of the stream: the rebuild neither publishes nor consumes. */
  bus: StreamReplayer;
  redis: RedisReadModelConfig;
  logger: Logger;
}

export interface RebuildResult {
  /** Keys of the previous read model that were deleted. */
  deletedKeys: number;
  /** Page events replayed from the stream and projected. */
  projected: number;
  /** Replayed messages that are not valid page events (the consumer parked them as dead letters). */
  skipped: number;
}

/**
 * Empties the read model under the prefix (pages, timelines, indexes, waiting lines; dead letters
 * stay) and projects every page event the stream holds into it (the waiting line's, the loan's
 * and the expiry's too: `PAGE_EVENT_TYPES`), through the same projection the consumer runs. Safe while customercenter replicas keep consuming: the merge is commutative and
 * idempotent, and every event stored before the replay began is replayed, so a change a replica
 * applied just before the keys were deleted comes back. Readers see a partial view meanwhile.
 */
export async function rebuildReadModel(options: RebuildOptions): Promise<RebuildResult> {
  const { logger } = options;
  const redis = await connectRedis(options.redis.url, logger);
  try {
    const store = new RedisReservationPageStore(redis, new ReadModelKeys(options.redis.keyPrefix));
    const project = new ProjectReservationEvent();
    const deletedKeys = await store.clear();
    logger.info({ deletedKeys, prefix: store.keys.prefix }, 'read model emptied; replaying the stream');

    let skipped = 0;
    const replayed = await options.bus.replay(PAGE_EVENT_SUBJECTS, async ({ envelope }) => {
      const event = pageEventOf(envelope);
      if (event) {
        await project.execute(event, store);
        return;
      }
      skipped++;
      logger.warn({ eventId: envelope.id, type: envelope.type }, 'skipped a replayed message that is not a valid page event');
    });
    const result = { deletedKeys, projected: replayed - skipped, skipped };
    logger.info(result, 'read model rebuilt');
    return result;
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

/** The page event a message carries, or null for one the consumer would have parked as malformed. */
function pageEventOf(envelope: EventEnvelope): PageEvent | null {
  try {
    const event = parseEvent(envelope);
    return isPageEvent(event) ? event : null;
  } catch (err) {
    if (err instanceof InvalidEventError) return null;
    throw err;
  }
}

/** The command's settings: the bus's and the read model's, from the same schemas as the service process's. */
export function readRebuildSettings(env: Env): { nats: NatsSettings; redis: RedisReadModelConfig } {
  const nats = readNatsSettings(env);
  const { redisUrl, redisKeyPrefix } = readSettings(customercenterSettings, env);
  return { nats, redis: { url: redisUrl, keyPrefix: redisKeyPrefix } };
}

async function main(): Promise<number> {
  const logger = createLogger().child({ command: 'rebuild', service: 'customercenter' });
  let settings: ReturnType<typeof readRebuildSettings>;
  try {
    settings = readRebuildSettings(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    logger.error(err.message);
    return 2;
  }
  try {
    // A mistyped stream name must fail, not create an empty stream and rebuild an empty view.
    const bus = await NatsJetStreamBus.connect({ servers: settings.nats.servers, streamName: settings.nats.stream, logger, name: 'customercenter-rebuild', manageStream: false });
    try {
      await rebuildReadModel({ bus, redis: settings.redis, logger });
    } finally {
      await bus.close();
    }
    return 0;
  } catch (err) {
    logger.error({ err }, 'rebuild failed');
    return 1;
  }
}

if (import.meta.main) process.exitCode = await main();
