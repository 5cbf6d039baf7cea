import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileParser } from 'dockerfile-ast';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { endProcess, startServiceProcess, type ClusterServiceName, type ServiceProcess } from './support/cluster.ts';
import { eventually } from './support/harness.ts';
import { startPrivateNats, type PrivateNats } from './support/nats.ts';
import { ensurePostgres, POSTGRES_URL } from './support/postgres.ts';
import { freePort } from './support/process.ts';
import { startPrivateRedis, type PrivateRedis } from './support/redis.ts';

/**
 * What the container image runs, outside Docker (no engine here): the Dockerfile's build steps
 * (`npm run build`, the web app's Vite build), then its runtime stage followed in a folder of the
 * test's own (its COPYs and its production-only `npm ci`, nothing else of the checkout), then the
 * compiled entry points as real processes from that folder
 * the way compose.yaml wires them: `dist/migrate.js` once per SQL service on a database it creates,
 * then the five `dist/service.js <name>` with DATABASE_MIGRATE=false, on PostgreSQL, a private NATS
 * JetStream and a private Redis, with the demo identity and demo data. A smoke test through the
 * gateway, the image's and compose's health-check commands against the running services, and a
 * graceful stop on SIGTERM (the image's STOPSIGNAL).
 */
const ROOT = fileURLToPath(new URL('../', import.meta.url));
// The project's Node 24 first on the PATH (ADR 0001), for npm and the scripts it runs.
const PATH = [join(ROOT, 'node_modules/.bin'), process.env.PATH ?? ''].join(delimiter);
const SQL: ClusterServiceName[] = ['book', 'reservation', 'assignment', 'notification'];
/** The staged runtime image's /app (stageRuntime). */
let app = '';

/** Runs a command to its end (in the staged /app once there is one), with the output kept for the failure message. */
function run(command: string, args: string[], env: Record<string, string> = {}, cwd = app || ROOT): Promise<{ code: number | string; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code: code ?? signal ?? 'unknown', output }));
  });
}

async function mustRun(what: string, command: string, args: string[], env: Record<string, string> = {}, cwd?: string): Promise<string> {
  const { code, output } = await run(command, args, env, cwd);
  if (code !== 0) throw new Error(`${what} (${command} ${args.join(' ')}) ended with ${code}:\n${output.slice(-4000)}`);
  return output;
}

/**
 * The Dockerfile's runtime stage, followed outside Docker in a new folder (the image's /app): each
 * COPY from the build context (from this checkout) or from the build stage (`/app/<path>`: this
 * checkout, just built; the web app from `web`, where this test built it), and each RUN (its
 * `--mount` flags dropped: only a cache). So the image's production-only install and the files it
 * copies are what the services run on; a file the compiled code needs and the Dockerfile forgets
 * fails here.
 */
async function stageRuntime(web: string): Promise<string> {
  const target = await mkdtemp(join(tmpdir(), 'bstore-runtime-'));
  const dockerfile = DockerfileParser.parse(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const lastFrom = dockerfile.getFROMs().at(-1)?.getRange().start.line ?? -1;
  const instructions = dockerfile.getInstructions().filter((i) => i.getRange().start.line > lastFrom);
  let ran = 0;
  for (const instruction of instructions) {
    const args = instruction.getArguments().map((a) => a.getValue());
    if (instruction.getKeyword() === 'COPY') {
      const flags = Object.fromEntries(
        ((instruction as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] }).getFlags() ?? []).map((f) => [f.getName(), f.getValue()]),
      );
      const dest = args.at(-1) as string;
      for (const source of args.slice(0, -1)) {
        let from = join(ROOT, source);
        if (flags.from !== undefined) {
          expect(source.startsWith('/app/'), `COPY --from ${source}`).toBe(true);
          const path = source.slice('/app/'.length);
          from = path === 'web/dist' ? web : join(ROOT, path);
        }
        const to = dest.endsWith('/') || dest === '.' || dest === './' ? join(target, dest, basename(source)) : join(target, dest);
        await cp(from, to, { recursive: true });
      }
    } else if (instruction.getKeyword() === 'RUN') {
      await mustRun(`the runtime stage's RUN ${args.join(' ')}`, 'sh', ['-c', args.join(' ')], {}, target);
      ran++;
    }
  }
  expect(ran, 'the runtime stage runs its npm ci').toBeGreaterThanOrEqual(1);
  return target;
}

/** The health-check commands of the Dockerfile (HEALTHCHECK CMD) and of compose.yaml (gateway's). */
function healthCheckScripts(): { image: string; compose: string } {
  const dockerfile = DockerfileParser.parse(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const content = dockerfile.getHEALTHCHECKs().at(-1)?.getArgumentsContent() ?? '';
  const image = JSON.parse(content.slice(content.indexOf('['))) as string[];
  const compose = parseYaml(readFileSync(join(ROOT, 'compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<string, { healthcheck: { test: string[] } }>;
  };
  const test = compose.services.gateway?.healthcheck.test ?? [];
  expect(image.slice(0, 2)).toEqual(['node', '-e']);
  expect(test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
  return { image: image[2] as string, compose: test[3] as string };
}

let nats: PrivateNats | undefined;
let redis: PrivateRedis | undefined;
let webRoot = '';
const tag = randomBytes(4).toString('hex');
const databaseName = (service: string) => `bstore_test_compiled_${tag}_${service}`;
const databaseUrl = (service: string) => {
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${databaseName(service)}`;
  return url.toString();
};
const services: Partial<Record<ClusterServiceName, ServiceProcess>> = {};
const ports = {} as Record<ClusterServiceName, number>;
const migrations: Record<string, string> = {};
let gateway = '';

/** The environment compose.yaml gives each service, with this machine's addresses. */
function serviceEnv(name: ClusterServiceName): Record<string, string> {
  const local = (n: ClusterServiceName) => `http://127.0.0.1:${ports[n]}`;
  const common = {
    HOST: '127.0.0.1',
    PORT: String(ports[name]),
    LOG_LEVEL: 'warn',
    // DEMO IDENTITY: a test machine, like compose.yaml's laptop.
    BSTORE_DEMO_AUTH: 'true',
    // The compiled JavaScript alone: no `source` condition from anywhere.
    NODE_OPTIONS: '',
    // As the image's ENV.
    NODE_ENV: 'production',
  };
  switch (name) {
    case 'notification':
      return { ...common, DATABASE_URL: databaseUrl(name), DATABASE_MIGRATE: 'false', NATS_URL: nats?.url ?? '' };
    case 'book':
    case 'assignment':
      return { ...common, DATABASE_URL: databaseUrl(name), DATABASE_MIGRATE: 'false', NATS_URL: nats?.url ?? '', BSTORE_DEMO_DATA: 'true' };
    case 'reservation':
      return { ...common, DATABASE_URL: databaseUrl(name), DATABASE_MIGRATE: 'false', NATS_URL: nats?.url ?? '', BOOK_URL: local('book') };
    case 'customercenter':
      return { ...common, NATS_URL: nats?.url ?? '', REDIS_URL: redis?.url ?? '', BSTORE_REDIS_PREFIX: `bstore-compiled-${tag}:` };
    case 'gateway':
      return {
        ...common,
        BOOK_URL: local('book'),
        RESERVATION_URL: local('reservation'),
        ASSIGNMENT_URL: local('assignment'),
        CUSTOMERCENTER_URL: local('customercenter'),
        NOTIFICATION_URL: local('notification'),
        // No BSTORE_WEB_ROOT: the default, <app>/web/dist, where the image puts the web app.
      };
  }
}

const start = async (name: ClusterServiceName) => {
  services[name] = await startServiceProcess(name, serviceEnv(name), true, { compiled: true, cwd: app });
};

beforeAll(async () => {
  // The Dockerfile's build stage: tsc -b to every dist/, and the web app. The web app goes to a
  // folder of this test's own, so web/dist, which other suites serve, is never emptied under them.
  webRoot = await mkdtemp(join(tmpdir(), 'bstore-compiled-web-'));
  await mustRun('npm run build', 'npm', ['run', 'build']);
  await mustRun('the web app build', 'npm', ['run', 'build', '-w', '@bstore/web', '--', '--outDir', webRoot, '--emptyOutDir']);
  // The runtime stage: production dependencies only, the compiled files only.
  app = await stageRuntime(webRoot);

  await ensurePostgres();
  [nats, redis] = await Promise.all([startPrivateNats(), startPrivateRedis()]);
  for (const name of ['book', 'reservation', 'assignment', 'customercenter', 'notification', 'gateway'] as const) ports[name] = await freePort();

  // compose.yaml's migration jobs: each creates its service's database and brings it to the latest schema.
  await Promise.all(
    SQL.map(async (name) => {
      // As compose.yaml's job: the database settings alone, no identity.
      migrations[name] = await mustRun(`the migration of ${name}`, process.execPath, ['apps/launcher/dist/migrate.js', name], {
        DATABASE_URL: databaseUrl(name),
        LOG_LEVEL: 'info',
        BSTORE_DEMO_AUTH: '',
        NODE_OPTIONS: '',
      });
    }),
  );

  // In compose.yaml's order of depends_on.
  await Promise.all([start('book'), start('assignment'), start('customercenter'), start('notification')]);
  await start('reservation');
  await start('gateway');
  gateway = services.gateway?.url ?? '';
}, 600_000);

afterAll(async () => {
  await Promise.all(Object.values(services).map((s) => endProcess(s)));
  await Promise.all([nats?.stop(), redis?.stop()]);
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    for (const name of SQL) await admin.query(`DROP DATABASE IF EXISTS "${databaseName(name)}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  if (webRoot) await rm(webRoot, { recursive: true, force: true });
  if (app) await rm(app, { recursive: true, force: true });
}, 120_000);

async function signIn(username: string, password: string): Promise<Record<string, string>> {
  const res = await fetch(`${gateway}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { access_token: string; token_type: string };
  expect(body.token_type).toBe('Bearer');
  return { authorization: `Bearer ${body.access_token}` };
}

async function call<T>(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${gateway}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

describe('the compiled build, run as the container image runs it', () => {
  it('runs every service from dist/service.js of the staged image, without the source condition or any dev dependency', () => {
    expect(existsSync(join(app, 'apps/launcher/dist/service.js'))).toBe(true);
    expect(existsSync(join(app, 'apps/launcher/dist/migrate.js'))).toBe(true);
    // Only what the Dockerfile copies: no sources, no dev tools, no test-only binary.
    expect(existsSync(join(app, 'apps/launcher/src'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/typescript'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/vitest'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/@install-binary'))).toBe(false);
    // The web app is bundled by Vite: React is in web/dist, not needed as a package at run time.
    expect(existsSync(join(app, 'node_modules/react'))).toBe(false);
    for (const name of ['book', 'reservation', 'assignment', 'customercenter', 'notification', 'gateway'] as const) {
      const proc = services[name] as ServiceProcess;
      const commandLine = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      expect(commandLine.slice(1), name).toEqual(['apps/launcher/dist/service.js', name]);
    }
  });

  it('migrated each database with dist/migrate.js; a check afterwards finds the schema current', async () => {
    for (const name of SQL) {
      // The job's log: the fresh database got its migrations.
      expect(migrations[name], name).toContain('"msg":"database migrated"');
      const { code, output } = await run(process.execPath, ['apps/launcher/dist/migrate.js', name, '--check'], { DATABASE_URL: databaseUrl(name), NODE_OPTIONS: '' });
      expect(code, `${name}: ${output}`).toBe(0);
      expect(output, name).toContain('"msg":"the schema is current"');
    }
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`bstore_test_compiled_${tag}_%`]);
      expect(rows.map((r) => r.datname).sort()).toEqual(SQL.map(databaseName).sort());
    } finally {
      await admin.end();
    }
  });

  it('a patron signs in, reserves a demo book, sees it reserved in customercenter, and cancels it', async () => {
    const alice = await signIn('alice', 'alice');
    const books = await call<{ items: { bookId: number; bookName: string; quantity: number }[] }>('GET', '/books?limit=100', {});
    expect(books.status).toBe(200);
    const book = books.body.items.find((b) => b.quantity > 0);
    expect(book, 'a demo book with a copy to lend').toBeDefined();
    const { bookId, quantity } = book as { bookId: number; quantity: number };

    const reserved = await call<{ reservationId: number; status: string; customerId: string }>('POST', '/reservations', alice, { bookId });
    expect(reserved.status).toBe(201);
    expect(reserved.body).toMatchObject({ status: 'bookReserveReq', customerId: 'alice' });
    const id = reserved.body.reservationId;

    const page = await eventually(
      `reservation ${id}'s page in customercenter to say bookReserved`,
      async () => {
        const res = await call<{ status: string; libraryName: string | null; timeline: { eventType: string }[] }>('GET', `/reservationPages/${id}`, alice);
        return res.status === 200 && res.body.status === 'bookReserved' ? res.body : undefined;
      },
      60_000,
    );
    expect(page.libraryName).toEqual(expect.any(String));
    expect(page.timeline.map((e) => e.eventType)).toEqual(expect.arrayContaining(['ReservationRequested', 'ReservationAccepted']));
    expect((await call<{ quantity: number }>('GET', `/books/${bookId}`, {})).body.quantity).toBe(quantity - 1);

    const cancel = await call<{ status: string }>('PATCH', `/reservations/${id}`, alice, { status: 'bookCancel' });
    expect(cancel.status).toBe(202);
    expect(cancel.body.status).toBe('bookCancel');
    await eventually(
      `reservation ${id} to be canceled, its copy back`,
      async () => {
        const [res, pageNow, bookNow] = await Promise.all([
          call<{ status: string }>('GET', `/reservations/${id}`, alice),
          call<{ status: string }>('GET', `/reservationPages/${id}`, alice),
          call<{ quantity: number }>('GET', `/books/${bookId}`, {}),
        ]);
        return res.body.status === 'bookCanceled' && pageNow.body.status === 'bookCanceled' && bookNow.body.quantity === quantity ? true : undefined;
      },
      60_000,
    );
  });

  it('the gateway reports every upstream up, and serves the web app built with it', async () => {
    const upstreams = await call<{ status: string; services: Record<string, string> }>('GET', '/health/upstreams', {});
    expect(upstreams.status).toBe(200);
    expect(upstreams.body.status).toBe('up');
    expect(upstreams.body.services).toEqual({ reservation: 'up', assignment: 'up', book: 'up', customercenter: 'up', notification: 'up' });
    const home = await fetch(`${gateway}/`);
    expect(home.status).toBe(200);
    expect(home.headers.get('content-type')).toContain('text/html');
    expect(await home.text()).toBe(readFileSync(join(webRoot, 'index.html'), 'utf8'));
  });

  it('finds the web app where the image puts it: the compiled default web root is <app>/web/dist', async () => {
    const { code, output } = await run(process.execPath, [
      '--input-type=module',
      '-e',
      "const m = await import('./services/gateway/dist/module.js'); process.stdout.write(m.DEFAULT_WEB_ROOT);",
    ]);
    expect(code, output).toBe(0);
    expect(output.replace(/\/$/, '')).toBe(join(app, 'web/dist'));
  });

  it("the image's and compose's health checks pass on each running service and fail on a closed port", async () => {
    const scripts = healthCheckScripts();
    const check = (script: string, port: number) => run(process.execPath, ['-e', script], { PORT: String(port), BSTORE_SERVICE: '' });
    for (const name of ['book', 'reservation', 'assignment', 'customercenter', 'notification', 'gateway'] as const) {
      expect((await check(scripts.image, ports[name])).code, `image HEALTHCHECK on ${name}`).toBe(0);
      expect((await check(scripts.compose, ports[name])).code, `compose healthcheck on ${name}`).toBe(0);
    }
    const closed = await freePort();
    expect((await check(scripts.image, closed)).code).toBe(1);
    expect((await check(scripts.compose, closed)).code).toBe(1);
  });

  it('stops gracefully on SIGTERM (the image\'s STOPSIGNAL): every process exits 0', async () => {
    for (const name of ['gateway', 'reservation', 'notification', 'customercenter', 'assignment', 'book'] as const) {
      const proc = services[name] as ServiceProcess;
      proc.signal('SIGTERM');
      expect(await proc.exited, `${name}:\n${proc.output().slice(-2000)}`).toBe(0);
    }
  });
});
