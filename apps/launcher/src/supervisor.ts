import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@bstore/platform';
import type { ClusterConfig } from './cluster-config.ts';
import type { ServiceName } from './embedded-system.ts';

/** The service entry point beside this file: the .ts source, or the compiled .js in dist/. */
const SELF = fileURLToPath(import.meta.url);
const FROM_SOURCE = SELF.endsWith('.ts');
const SERVICE_ENTRY = SELF.replace(/supervisor\.(ts|js)$/, `service.$1`);

/** Variables the supervisor sets per child; a value in its own environment must not leak into every child. */
const PER_CHILD = ['PORT', 'HOST', 'DATABASE_URL', 'DATABASE_SCHEMA', 'BSTORE_SERVICE'];

interface Child {
  readonly name: ServiceName;
  process: ChildProcess | undefined;
  startedAt: number;
  /** Consecutive crashes without a stable run between them. */
  crashes: number;
  restartTimer: NodeJS.Timeout | undefined;
}

/**
 * Runs each service as its own OS process and keeps it running: a child that exits while the
 * cluster is up is started again after a backoff that doubles with each quick crash (reset once a
 * child ran for `stableAfterMs`). `stop()` sends SIGTERM to every child, waits for their graceful
 * stop, and kills what is left after `stopTimeoutMs`.
 */
export class Supervisor {
  readonly #config: ClusterConfig;
  readonly #logger: Logger;
  readonly #children = new Map<ServiceName, Child>();
  #stopping = false;

  constructor(config: ClusterConfig, logger: Logger) {
    this.#config = config;
    this.#logger = logger;
  }

  /** Process ids of the running children (for operators and fault tests). */
  get pids(): Partial<Record<ServiceName, number>> {
    const pids: Partial<Record<ServiceName, number>> = {};
    for (const [name, child] of this.#children) if (child.process?.pid !== undefined) pids[name] = child.process.pid;
    return pids;
  }

  start(): void {
    for (const name of this.#config.services) {
      const child: Child = { name, process: undefined, startedAt: 0, crashes: 0, restartTimer: undefined };
      this.#children.set(name, child);
      this.#spawn(child);
    }
  }

  #spawn(child: Child): void {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const key of PER_CHILD) delete env[key];
    Object.assign(env, this.#config.envOf[child.name], { BSTORE_SERVICE: child.name });
    const args = [...(FROM_SOURCE ? ['--conditions=source'] : []), SERVICE_ENTRY, child.name];
    // Its own process group, so a Ctrl-C in the terminal reaches the supervisor alone, which then
    // stops each child once; the IPC channel lets a child notice when the supervisor is gone.
    const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });
    child.process = proc;
    child.startedAt = Date.now();
    this.#logger.info({ child: child.name, pid: proc.pid }, 'service process started');
    proc.once('exit', (code, signal) => this.#onExit(child, proc, code, signal));
    proc.once('error', (err) => this.#logger.error({ err, child: child.name }, 'could not start the service process'));
  }

  #onExit(child: Child, proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child.process !== proc) return;
    child.process = undefined;
    if (this.#stopping) {
      this.#logger.info({ child: child.name, code, signal }, 'service process stopped');
      return;
    }
    const ranMs = Date.now() - child.startedAt;
    child.crashes = ranMs >= this.#config.restart.stableAfterMs ? 1 : child.crashes + 1;
    const delay = Math.min(this.#config.restart.initialMs * 2 ** (child.crashes - 1), this.#config.restart.maxMs);
    this.#logger.error({ child: child.name, code, signal, ranMs, restartInMs: delay }, 'service process exited; restarting it');
    child.restartTimer = setTimeout(() => {
      child.restartTimer = undefined;
      if (!this.#stopping) this.#spawn(child);
    }, delay);
  }

  /** Stops every child gracefully (SIGTERM), killing what has not stopped after the timeout. */
  async stop(): Promise<void> {
    this.#stopping = true;
    const exits: Promise<void>[] = [];
    for (const child of this.#children.values()) {
      clearTimeout(child.restartTimer);
      const proc = child.process;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) continue;
      exits.push(
        new Promise<void>((resolve) => {
          const kill = setTimeout(() => {
            this.#logger.warn({ child: child.name, pid: proc.pid }, 'service did not stop in time; killing it');
            proc.kill('SIGKILL');
          }, this.#config.stopTimeoutMs);
          proc.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          proc.kill('SIGTERM');
        }),
      );
    }
    await Promise.all(exits);
  }
}
