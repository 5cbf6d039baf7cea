import { EmbeddedBus, createLogger, type Clock, type Logger, type MessageBus } from '@bstore/platform';

/** A quiet logger for tests; LOG_LEVEL=debug shows everything. */
export function testLogger(): Logger {
  return createLogger({ level: process.env.LOG_LEVEL ?? 'silent' });
}

/** A real embedded bus on an in-memory PGlite database. */
export async function memoryBus(logger = testLogger()): Promise<EmbeddedBus & MessageBus> {
  return EmbeddedBus.open({ database: { kind: 'pglite' }, logger, idlePollMs: 200 });
}

/** Polls `probe` until it returns a value that is not undefined, or fails naming `what`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: string | undefined;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A clock the test moves forward (`offsetMs`), so that deadlines and locks expire without waiting. */
export class MovableClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}
