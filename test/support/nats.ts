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
  port: number;
  /** The server's process id now (it changes with a restart); undefined when it is not running. */
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM), keeping its store: a bus outage. */
  halt(): Promise<void>;
  /** Starts it again on the same port with the same store (nothing when it runs). */
  restart(): Promise<void>;
  /** Stops it for good and deletes its store. */
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
 * tests never touch the machine's shared server, and can stop and restart this one. Fails naming
 * the binary when it is missing.
 */
export async function startPrivateNats(): Promise<PrivateNats> {
  if (!existsSync(NATS_SERVER_BINARY)) {
    throw new Error(`these tests need nats-server at ${NATS_SERVER_BINARY} (Debian package nats-server, or set BSTORE_TEST_NATS_SERVER)`);
  }
  const port = await freePort();
  const store = await mkdtemp(join(tmpdir(), 'bstore-nats-'));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  const launch = async () => {
    if (running()) return;
    const proc = spawn(NATS_SERVER_BINARY, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store], { stdio: 'ignore' });
    child = proc;
    exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    for (let i = 0; i < 100 && !(await accepting(port)); i++) await new Promise((r) => setTimeout(r, 100));
    if (!(await accepting(port))) {
      proc.kill('SIGKILL');
      throw new Error(`nats-server did not start on port ${port}`);
    }
  };
  const halt = async () => {
    if (running()) child?.kill('SIGTERM');
    await exited;
  };

  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    get pid() {
      return running() ? child?.pid : undefined;
    },
    halt,
    restart: launch,
    stop: async () => {
      await halt();
      await rm(store, { recursive: true, force: true });
    },
  };
}
