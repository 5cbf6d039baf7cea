import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A port the kernel says is free now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface LauncherProcess {
  child: ChildProcess;
  gateway: string;
  output: () => string;
  /** Resolves with the exit code (or signal name) once the process has ended. */
  exited: Promise<number | string>;
}

/**
 * Starts `npm start`'s launcher as a real process, with this Node, the source condition and the
 * given environment, and waits for its banner. Fails with the process's output if it does not start.
 */
export async function startLauncher(env: Record<string, string>, ports: Record<string, number>, timeoutMs = 90_000): Promise<LauncherProcess> {
  const portEnv = Object.fromEntries(Object.entries(ports).map(([name, port]) => [`BSTORE_${name.toUpperCase()}_PORT`, String(port)]));
  const child = spawn(process.execPath, ['--conditions=source', 'apps/launcher/src/embedded.ts'], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', LOG_FORMAT: 'json', ...portEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const started = await Promise.race([
    new Promise<boolean>((resolve) => {
      const check = () => (out.includes('bstore is running') ? resolve(true) : setTimeout(check, 50));
      check();
    }),
    exited.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs)),
  ]);
  if (!started) {
    child.kill('SIGKILL');
    throw new Error(`the launcher did not start:\n${out.slice(-3000)}`);
  }
  return { child, gateway: `http://127.0.0.1:${ports.gateway}`, output: () => out, exited };
}
