import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './process.ts';

export const NATS_SERVER_BINARY = process.env.BSTORE_TEST_NATS_SERVER ?? '/usr/sbin/nats-server';

export interface PrivateNats {
  url: string;
  stop(): Promise<void>;
}

function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * A nats-server of the test's own, with JetStream, on a free loopback port and a temporary store:
 * tests never touch the machine's shared server. Fails naming the binary when it is missing.
 */
export async function startPrivateNats(): Promise<PrivateNats> {
  if (!existsSync(NATS_SERVER_BINARY)) {
    throw new Error(`these tests need nats-server at ${NATS_SERVER_BINARY} (Debian package nats-server, or set BSTORE_TEST_NATS_SERVER)`);
  }
  const port = await freePort();
  const store = await mkdtemp(join(tmpdir(), 'bstore-nats-'));
  const child: ChildProcess = spawn(NATS_SERVER_BINARY, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; i < 100 && !(await accepting(port)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await accepting(port))) {
    child.kill('SIGKILL');
    throw new Error(`nats-server did not start on port ${port}`);
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await rm(store, { recursive: true, force: true });
    },
  };
}
