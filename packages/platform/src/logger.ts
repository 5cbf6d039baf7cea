import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { currentLogFields } from './log-context.ts';
import { activeTraceFields } from './tracing.ts';

export type { Logger } from 'pino';

export interface LoggerConfig {
  level?: string;
  /** Human-readable lines (embedded mode in a terminal); JSON otherwise. */
  pretty?: boolean;
  /**
   * Where the JSON lines go (default stdout); ignored when `pretty`. Tests pass a stream that
   * collects them.
   */
  destination?: DestinationStream;
}

/**
 * What is never logged, whatever the caller passes in: bearer tokens and other credentials in
 * request headers, passwords, and issued tokens. Paths in pino's redact syntax (`*` is one level
 * only; names with a dash in brackets). test/logs.e2e.test.ts proves it against the whole system.
 */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'headers.authorization',
  'headers.cookie',
  'headers["proxy-authorization"]',
  '*.authorization',
  '*.cookie',
  '*["proxy-authorization"]',
  'authorization',
  'cookie',
  'password',
  '*.password',
  'access_token',
  '*.access_token',
  'token',
  '*.token',
];

/** The redaction every logger createLogger makes applies (pretty or JSON alike). */
export const REDACT: NonNullable<LoggerOptions['redact']> = { paths: [...REDACT_PATHS], censor: '[redacted]' };

/**
 * What every line written while handling a request or an event carries, whichever logger writes
 * it: the active span's `trace_id` and `span_id`, and the request's or event's own fields
 * (`reservationId`, `eventId`; log-context.ts). A field the call itself passes wins.
 */
function correlationFields(): Record<string, unknown> {
  const fields = currentLogFields();
  const ids = activeTraceFields();
  return fields || ids ? { ...fields, ...ids } : {};
}

/**
 * The root logger: pino JSON lines, or pino-pretty when `pretty` is set. Both redact REDACT_PATHS
 * and add the correlation fields (trace and span ids, reservation id) to every line.
 *
 * @example
 * const logger = createLogger({ level: 'info', pretty: process.stdout.isTTY }).child({ service: 'book' });
 */
export function createLogger(config: LoggerConfig = {}): Logger {
  const level = config.level ?? process.env.LOG_LEVEL ?? 'info';
  const options: LoggerOptions = { level, redact: REDACT, mixin: correlationFields };
  if (config.pretty) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,span_id' } },
    });
  }
  return config.destination ? pino(options, config.destination) : pino(options);
}
