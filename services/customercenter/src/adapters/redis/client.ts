import { Redis } from 'ioredis';
import type { Logger } from '@bstore/platform';

/**
 * A connected Redis client, or the connection error: a service (or the rebuild command) that
 * cannot reach Redis fails at start instead of queueing commands. Once connected, ioredis
 * reconnects by itself; its errors are logged, as an unhandled 'error' event would only be printed.
 */
export async function connectRedis(url: string, logger: Logger): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true });
  redis.on('error', (err: Error) => logger.warn({ err }, 'Redis connection error'));
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new Error(`cannot connect to Redis at ${redactedUrl(url)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return redis;
}

/** The URL without its password, for messages. */
function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
