import type { Logger } from 'pino';

/**
 * Runs `work` every `intervalMs`, one run at a time, until stopped; a failing run is logged and
 * the next one happens as planned. Used for sweeps and housekeeping.
 */
export class PeriodicTask {
  readonly name: string;
  readonly #intervalMs: number;
  readonly #work: () => Promise<unknown>;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #current: Promise<void> | undefined;
  #running = false;

  constructor(name: string, intervalMs: number, work: () => Promise<unknown>, logger: Logger) {
    this.name = name;
    this.#intervalMs = intervalMs;
    this.#work = work;
    this.#logger = logger;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule();
  }

  /** Runs once now (tests, and start-up recovery). */
  async runOnce(): Promise<void> {
    try {
      await this.#work();
    } catch (err) {
      this.#logger.error({ err, task: this.name }, 'periodic task failed');
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    await this.#current;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#current = this.runOnce().finally(() => {
        this.#current = undefined;
        if (this.#running) this.#schedule();
      });
    }, this.#intervalMs);
    this.#timer.unref();
  }
}
