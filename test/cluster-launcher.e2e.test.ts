import { spawn } from 'node:child_process';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PORTS, type ServiceName } from '@bstore/launcher';
import { asStaff } from './support/auth.ts';
import { endProcess, startServiceProcess } from './support/cluster.ts';
import { eventually } from './support/harness.ts';
import { startPrivateNats, type PrivateNats } from './support/nats.ts';
import { ensurePostgres, POSTGRES_URL } from './support/postgres.ts';
import { freePort } from './support/process.ts';
import { startPrivateRedis } from './support/redis.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

let nats: PrivateNats;
let redis: Awaited<ReturnType<typeof startPrivateRedis>>;

beforeAll(async () => {
  await ensurePostgres();
  [nats, redis] = await Promise.all([startPrivateNats(), startPrivateRedis()]);
});

afterAll(async () => {
  await Promise.all([nats?.stop(), redis?.stop()]);
});

/** The variables that choose a process's identity; none of them is inherited from this test's environment. */
const IDENTITY_ENV = ['BSTORE_DEMO_AUTH', 'BSTORE_AUTH_PUBLIC_KEYS', 'BSTORE_AUTH_PUBLIC_KEYS_FILE', 'BSTORE_AUTH_JWKS_URL', 'BSTORE_AUTH_SIGNING_KEY', 'BSTORE_AUTH_SIGNING_KEY_FILE', 'BSTORE_AUTH_USERS_FILE', 'BSTORE_INTERNAL_KEY'];
const inheritedEnv = () => Object.fromEntries(Object.entries(process.env).filter(([name]) => !IDENTITY_ENV.includes(name)));

/** Runs a launcher script to its end and returns its exit code and output. */
function runToEnd(script: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--conditions=source', script, ...args], { cwd: ROOT, env: { ...inheritedEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, output });
    });
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('configuration is validated at start', () => {
  it.each([
    ['book', { PORT: 'eighty' }, /PORT must be a whole number/],
    ['reservation', { DATABASE_URL: 'mysql://localhost/x' }, /DATABASE_URL must start with postgres:/],
    ['customercenter', { REDIS_URL: 'not a url' }, /REDIS_URL is not a URL/],
    ['assignment', { NATS_URL: 'http://127.0.0.1:4222' }, /NATS_URL must start with nats:/],
    ['reservation', { BOOK_TIMEOUT_MS: '-5' }, /BOOK_TIMEOUT_MS must be a whole number/],
    ['librarian', {}, /unknown service "librarian"/],
  ])('%s with %o stops at once with a message naming the variable', async (service, env, message) => {
    // With an identity, so that the bad variable is the only thing wrong.
    const { code, output } = await runToEnd('apps/launcher/src/service.ts', [service], { BSTORE_DEMO_AUTH: 'true', ...env });
    expect(code).toBe(2);
    expect(output).toMatch(message);
  });

  it('a service with no identity configuration and no BSTORE_DEMO_AUTH refuses to start, naming what to set', async () => {
    const port = await freePort();
    const { code, output } = await runToEnd('apps/launcher/src/service.ts', ['book'], { PORT: String(port), NATS_URL: nats.url });
    expect(code).toBe(2);
    expect(output).toMatch(/bstore book: configuration error: no identity configuration/);
    expect(output).toContain('BSTORE_AUTH_PUBLIC_KEYS');
    expect(output).toContain('BSTORE_DEMO_AUTH=true');
    // It stopped before listening: nothing answers on its port.
    expect(await fetch(`http://127.0.0.1:${port}/health/live`).then(() => 'answered', () => 'refused')).toBe('refused');
  });

  it('the cluster launcher refuses a bad layout before starting anything', async () => {
    const { code, output } = await runToEnd('apps/launcher/src/cluster.ts', [], { BSTORE_DATABASE_LAYOUT: 'tables' });
    expect(code).toBe(2);
    expect(output).toMatch(/BSTORE_DATABASE_LAYOUT must be one of database, schema/);
  });
});

describe('a service whose bus is down at start', () => {
  it('stays live but not ready, answers 503 with Retry-After, retries with backoff, and becomes ready when the bus returns', async () => {
    const db = `bstore_t${randomBytes(4).toString('hex')}_book`;
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${db}`;
    const port = await freePort();
    await nats.halt();
    let service;
    try {
      service = await startServiceProcess('book', { PORT: String(port), NATS_URL: nats.url, DATABASE_URL: url.toString(), BSTORE_START_RETRY_MAX_MS: '1000' }, false);
      const base = `http://127.0.0.1:${port}`;
      await eventually('the waiting service to answer', async () => ((await fetch(`${base}/health/live`).catch(() => undefined))?.ok ? true : undefined));
      const ready = await fetch(`${base}/health/ready`);
      expect(ready.status).toBe(503);
      const books = await fetch(`${base}/books`);
      expect(books.status).toBe(503);
      expect(books.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(books.headers.get('retry-after')).toBe('2');
      expect(await books.json()).toMatchObject({ status: 503, code: 'SERVICE_STARTING' });
      const current = service;
      await eventually('a logged retry', async () => (current.output().includes('cannot start yet; retrying') ? true : undefined));
      expect(alive(service.pid)).toBe(true);

      await nats.restart();
      await eventually('the service to become ready', async () => ((await fetch(`${base}/health/ready`)).status === 200 ? true : undefined), 30_000);
      expect((await fetch(`${base}/books`)).status).toBe(200);
    } finally {
      if (service) await endProcess(service);
      await nats.restart();
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
      await admin.end();
    }
  });
});

describe('a service whose bus went away', () => {
  it('still stops gracefully on SIGTERM (exit 0, within its grace period) instead of waiting for NATS', async () => {
    const privateNats = await startPrivateNats();
    const db = `bstore_t${randomBytes(4).toString('hex')}_book`;
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${db}`;
    const port = await freePort();
    let service;
    try {
      service = await startServiceProcess('book', { PORT: String(port), NATS_URL: privateNats.url, DATABASE_URL: url.toString(), BSTORE_SHUTDOWN_GRACE_MS: '20000' });
      await privateNats.halt();
      service.signal('SIGTERM');
      // close-with-grace would end it with code 1 had the stop outlasted the grace period.
      expect(await service.exited).toBe(0);
    } finally {
      if (service) await endProcess(service);
      await privateNats.stop();
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
      await admin.end();
    }
  }, 60_000);
});

/** A TCP forwarder from a loopback port to PostgreSQL: "the database comes up" when it starts. */
async function forwardToPostgres(port: number): Promise<{ close(): Promise<void> }> {
  const target = new URL(POSTGRES_URL);
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = tcpConnect({ host: target.hostname, port: Number(target.port || 5432) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.once('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('a service whose database is down at start', () => {
  it('stays live but not ready, retries, and becomes ready once the database answers', async () => {
    const db = `bstore_t${randomBytes(4).toString('hex')}_assignment`;
    const [port, dbPort] = await Promise.all([freePort(), freePort()]);
    const url = new URL(POSTGRES_URL);
    url.port = String(dbPort);
    url.pathname = `/${db}`;
    let service;
    let forwarder;
    try {
      service = await startServiceProcess('assignment', { PORT: String(port), NATS_URL: nats.url, DATABASE_URL: url.toString(), BSTORE_START_RETRY_MAX_MS: '1000' }, false);
      const base = `http://127.0.0.1:${port}`;
      const current = service;
      await eventually('a logged retry', async () => (current.output().includes('cannot start yet; retrying') ? true : undefined));
      expect((await fetch(`${base}/health/live`)).status).toBe(200);
      expect((await fetch(`${base}/health/ready`)).status).toBe(503);
      expect((await fetch(`${base}/libraries`)).status).toBe(503);

      forwarder = await forwardToPostgres(dbPort);
      await eventually('the service to become ready', async () => ((await fetch(`${base}/health/ready`)).status === 200 ? true : undefined), 30_000);
      expect((await fetch(`${base}/libraries`)).status).toBe(200);
    } finally {
      if (service) await endProcess(service);
      await forwarder?.close();
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
      await admin.end();
    }
  });
});

describe('npm run start:cluster (the supervisor)', () => {
  it('starts a process per registered service (a schema each in one database), restarts a killed one, drains on SIGTERM, and stops them all on Ctrl-C', async () => {
    const database = `bstore_t${randomBytes(4).toString('hex')}`;
    const dbUrl = new URL(POSTGRES_URL);
    dbUrl.pathname = `/${database}`;
    // Every service of the registry (six: the seed's five and notification).
    const names = Object.keys(DEFAULT_PORTS) as ServiceName[];
    const ports = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await freePort()] as const)));
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${database}"`);

    const supervisor = spawn(process.execPath, ['--conditions=source', 'apps/launcher/src/cluster.ts'], {
      cwd: ROOT,
      // No identity variable at all: the supervisor gives its children the demo identity by default.
      env: {
        ...inheritedEnv(),
        LOG_LEVEL: 'info',
        LOG_FORMAT: 'json',
        NATS_URL: nats.url,
        REDIS_URL: redis.url,
        BSTORE_REDIS_PREFIX: `${database}:`,
        BSTORE_DATABASE_URL: dbUrl.toString(),
        BSTORE_DATABASE_LAYOUT: 'schema',
        BSTORE_RESTART_INITIAL_MS: '200',
        BSTORE_DRAIN_DELAY_MS: '1500',
        ...Object.fromEntries(names.map((n) => [`BSTORE_${n.toUpperCase()}_PORT`, String(ports[n])])),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    supervisor.stdout.on('data', (d: Buffer) => (out += d.toString()));
    supervisor.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | string>((resolve) => supervisor.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
    const started = () =>
      out
        .split('\n')
        .filter((l) => l.includes('service process started'))
        .map((l) => JSON.parse(l) as { child: string; pid: number });

    try {
      await eventually('the cluster banner', async () => (out.includes(`bstore is running (cluster mode: ${names.length} processes`) ? true : undefined), 90_000);
      const first = new Map(started().map((s) => [s.child, s.pid]));
      expect(first.size).toBe(names.length);

      // The demo data is there through the gateway, and each service has its own schema.
      const books = (await (await fetch(`http://127.0.0.1:${ports.gateway}/books`)).json()) as { total: number };
      expect(books.total).toBeGreaterThan(0);
      // No identity was configured, so the children run with the demo identity (BSTORE_DEMO_AUTH=true
      // by default): the librarian signs in at the gateway, and a staff-only route behind it accepts the token.
      const signIn = await fetch(`http://127.0.0.1:${ports.gateway}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'librarian', password: 'librarian' }),
      });
      expect(signIn.status).toBe(200);
      const { access_token: token } = (await signIn.json()) as { access_token: string };
      expect((await fetch(`http://127.0.0.1:${ports.gateway}/assignments`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      const schemas = await admin.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace`);
      const db = new pg.Client({ connectionString: dbUrl.toString() });
      await db.connect();
      const tables = await db.query<{ table_schema: string; table_name: string }>(
        `SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN ('book', 'reservation', 'assignment')`,
      );
      await db.end();
      expect(schemas.rows.length).toBeGreaterThan(0);
      const bySchema = (s: string) => tables.rows.filter((r) => r.table_schema === s).map((r) => r.table_name);
      expect(bySchema('book')).toEqual(expect.arrayContaining(['books', 'holds', 'outbox', 'inbox']));
      expect(bySchema('reservation')).toEqual(expect.arrayContaining(['reservations', 'outbox', 'inbox']));
      expect(bySchema('assignment')).toEqual(expect.arrayContaining(['libraries', 'assignments', 'outbox', 'inbox']));

      // A crashed service comes back as a new process.
      const assignmentPid = first.get('assignment') ?? -1;
      process.kill(assignmentPid, 'SIGKILL');
      await eventually('a new assignment process', async () => started().find((s) => s.child === 'assignment' && s.pid !== assignmentPid), 30_000);
      await eventually('assignment ready again', async () => ((await fetch(`http://127.0.0.1:${ports.assignment}/health/ready`).catch(() => undefined))?.ok ? true : undefined), 60_000);
      expect(out).toContain('service process exited; restarting it');

      // SIGTERM on one service: readiness fails first while requests are still served.
      const reservationPid = first.get('reservation') ?? -1;
      process.kill(reservationPid, 'SIGTERM');
      const draining = await eventually('reservation to report draining', async () => {
        const res = await fetch(`http://127.0.0.1:${ports.reservation}/health/ready`).catch(() => undefined);
        return res?.status === 503 ? ((await res.json()) as { status: string }) : undefined;
      });
      expect(draining.status).toBe('draining');
      expect((await fetch(`http://127.0.0.1:${ports.reservation}/reservations`, { headers: await asStaff() })).status).toBe(200);
      await eventually('reservation to stop and be started again', async () => started().find((s) => s.child === 'reservation' && s.pid !== reservationPid), 30_000);

      // Ctrl-C: every child stops, the supervisor exits 0.
      const children = started().map((s) => s.pid);
      supervisor.kill('SIGINT');
      expect(await exited).toBe(0);
      for (const pid of children) expect(alive(pid)).toBe(false);
    } catch (err) {
      throw new Error(`${String(err)}\n--- supervisor output ---\n${out.slice(-6000)}`, { cause: err });
    } finally {
      if (supervisor.exitCode === null) {
        supervisor.kill('SIGKILL');
        for (const s of started()) if (alive(s.pid)) process.kill(s.pid, 'SIGKILL');
      }
      await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await admin.end();
    }
  }, 180_000);
});
