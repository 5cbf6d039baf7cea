import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export interface LoggerConfig {
  level?: string;
  /** Human-readable lines (embedded mode in a terminal); JSON otherwise. */
  pretty?: boolean;
}

/** Never log credentials, whatever the caller passes in. */
const redact: LoggerOptions['redact'] = {
  paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'password', '*.password', 'access_token', '*.access_token'],
  censor: '[redacted]',
};

/**
 * The root logger: pino JSON lines, or pino-pretty when `pretty` is set.
 *
 * @example
 * const logger = createLogger({ level: 'info', pretty: process.stdout.isTTY }).child({ service: 'book' });
 */
export function createLogger(config: LoggerConfig = {}): Logger {
  const level = config.level ?? process.env.LOG_LEVEL ?? 'info';
  if (config.pretty) {
    return pino({
      level,
      redact,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, redact });
}
