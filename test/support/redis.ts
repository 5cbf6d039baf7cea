import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './process.ts';

export const REDIS_SERVER_BINARY = process.env.BSTORE_TEST_REDIS_SERVER ?? '/usr/bin/redis-server';

export interface PrivateRedis {
  url: string;
  port: number;
  /** The server's process id. */
  pid: number | undefined;
  stop(): Promise<void>;
}

/** Whether a Redis on `port` answers PING (a listening socket alone may still be loading). */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
    socket.once('error', () => done(false));
  });
}

/**
 * A redis-server of the test's own on a free loopback port, without persistence, in a temporary
 * directory: tests never touch the machine's shared Redis. Fails naming the binary when it is
 * missing; `stop` ends only that child, by its pid.
 */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  if (!existsSync(REDIS_SERVER_BINARY)) {
    throw new Error(`these tests need redis-server at ${REDIS_SERVER_BINARY} (Debian package redis-server, or set BSTORE_TEST_REDIS_SERVER)`);
  }
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'bstore-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  // The server's last words, for the message when it does not start.
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4000));
  const child: ChildProcess = spawn(REDIS_SERVER_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; i < 100 && child.exitCode === null && !(await answersPing(port)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await answersPing(port))) {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`redis-server (${REDIS_SERVER_BINARY}) did not start on port ${port}:\n${output}`);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    stop: async () => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
