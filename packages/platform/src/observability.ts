/** `@bstore/platform/observability`: logs (pino with per-request fields), tracing (OpenTelemetry), metrics (prom-client). */
export * from './logger.ts';
export * from './log-context.ts';
export * from './tracing.ts';
export * from './metrics.ts';
