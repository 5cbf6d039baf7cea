/**
 * A loop's sleep that another part of the process can cut short: `wait(ms)` resolves after `ms`
 * or as soon as `kick()` is called, whichever comes first. A kick while nobody waits is kept, so
 * the next wait returns at once and no signal is lost between two waits.
 */
export class Wakeup {
  #pending = false;
  #resolve: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  kick(): void {
    if (this.#resolve) this.#release();
    else this.#pending = true;
  }

  wait(ms: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#timer = setTimeout(() => this.#release(), ms);
    });
  }

  #release(): void {
    clearTimeout(this.#timer);
    const resolve = this.#resolve;
    this.#resolve = undefined;
    this.#timer = undefined;
    resolve?.();
  }
}
