import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { AssignmentTables } from '@bstore/assignment';
import type { BookTables } from '@bstore/book';
import type { ReservationTables } from '@bstore/reservation';
import type { PageRow, SystemDatabases } from './invariants.ts';
import { asStaff } from './auth.ts';
import { ensurePostgres, POSTGRES_URL } from './postgres.ts';
import { freePort } from './process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type ClusterServiceName = 'book' | 'reservation' | 'assignment' | 'customercenter' | 'notification' | 'gateway';
const ORDER: ClusterServiceName[] = ['book', 'assignment', 'customercenter', 'notification', 'reservation', 'gateway'];
const SQL_SERVICES = ['book', 'reservation', 'assignment', 'notification'] as const;

/** One service running as its own OS process. */
export interface ServiceProcess {
  readonly name: ClusterServiceName;
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or signal) once the process ended. */
  readonly exited: Promise<number | string>;
  signal(sig: NodeJS.Signals): void;
}

export interface TestCluster {
  readonly services: Record<ClusterServiceName, ServiceProcess>;
  readonly gateway: string;
  /** The environment every service got (database URLs excepted). */
  readonly env: Record<string, string>;
  /** Starts a service again (after it was killed or stopped) with the same configuration. */
  restart(name: ClusterServiceName): Promise<ServiceProcess>;
  /** Connections to the services' databases, for the invariants. */
  databases(): SystemDatabases;
  /** Stops every process (SIGTERM, then SIGKILL), closes connections and drops the databases. */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  natsUrl: string;
  redisUrl: string;
  /** Extra environment for every service (sweep timing, timeouts). */
  env?: Record<string, string>;
}

async function waitReady(url: string, proc: ChildProcess, output: () => string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${url} exited before it was ready:\n${output().slice(-3000)}`);
    const ok = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${url} was not ready within ${timeoutMs} ms:\n${output().slice(-3000)}`);
}

export interface ServiceProcessOptions {
  /**
   * Run the compiled build (`node apps/launcher/dist/service.js <name>`, what the container
   * image runs; `npm run build` first) instead of the TypeScript sources. Default false.
   */
  compiled?: boolean;
  /** The folder it runs in (default the repository): a staged copy of the image's /app, say. */
  cwd?: string;
}

/**
 * Starts one service process (`apps/launcher/src/service.ts <name>`, or with `compiled` the
 * built `dist/service.js`) and waits until it is ready. It runs with the demo identity
 * (BSTORE_DEMO_AUTH=true: the demo key and internal key every test process shares), so tokens from
 * `./auth.ts` verify; `env` may override that.
 */
export async function startServiceProcess(
  name: ClusterServiceName,
  env: Record<string, string>,
  waitForReady = true,
  options: ServiceProcessOptions = {},
): Promise<ServiceProcess> {
  const args = options.compiled ? ['apps/launcher/dist/service.js', name] : ['--conditions=source', 'apps/launcher/src/service.ts', name];
  const child = spawn(process.execPath, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', LOG_FORMAT: 'json', BSTORE_DEMO_AUTH: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const url = `http://127.0.0.1:${env.PORT}`;
  const output = () => out;
  if (waitForReady) {
    try {
      await waitReady(url, child, output);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }
  return { name, url, pid: child.pid ?? -1, child, output, exited, signal: (sig) => child.kill(sig) };
}

/** Stops a process gracefully, then by force; resolves when it has exited. */
export async function endProcess(proc: ServiceProcess, graceMs = 15_000): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.signal('SIGCONT'); // a stopped process cannot handle SIGTERM
  proc.signal('SIGTERM');
  const kill = setTimeout(() => proc.signal('SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(kill);
}

/**
 * The five services as separate processes on real servers: PostgreSQL (a database per service,
 * uniquely named for this test), the given NATS and Redis (the test's own private servers).
 */
export async function startCluster(options: ClusterOptions): Promise<TestCluster> {
  await ensurePostgres();
  const tag = randomBytes(4).toString('hex');
  const dbUrl = (service: string) => {
    const url = new URL(POSTGRES_URL);
    url.pathname = `/bstore_t${tag}_${service}`;
    return url.toString();
  };
  const ports = Object.fromEntries(await Promise.all(ORDER.map(async (n) => [n, await freePort()] as const))) as Record<ClusterServiceName, number>;
  const local = (n: ClusterServiceName) => `http://127.0.0.1:${ports[n]}`;
  const env: Record<string, string> = {
    NATS_URL: options.natsUrl,
    REDIS_URL: options.redisUrl,
    BSTORE_REDIS_PREFIX: `bstore-t${tag}:`,
    BOOK_URL: local('book'),
    RESERVATION_URL: local('reservation'),
    ASSIGNMENT_URL: local('assignment'),
    CUSTOMERCENTER_URL: local('customercenter'),
    NOTIFICATION_URL: local('notification'),
    BSTORE_DEMO_DATA: 'true',
    // The demo identity: every process shares the demo key, so tokens from ./auth.ts verify.
    BSTORE_DEMO_AUTH: 'true',
    BSTORE_SHUTDOWN_GRACE_MS: '10000',
    // The tests poll hundreds of reservations every 50 ms as one librarian from one address: far
    // beyond the gateway's default rate limits, which are tested on their own (services/gateway/test).
    BSTORE_RATE_LIMIT_PER_MINUTE: '0',
    BSTORE_RATE_LIMIT_IP_PER_MINUTE: '0',
    ...options.env,
  };
  const envOf = (n: ClusterServiceName): Record<string, string> => ({
    ...env,
    PORT: String(ports[n]),
    ...((SQL_SERVICES as readonly string[]).includes(n) ? { DATABASE_URL: dbUrl(n), DATABASE_POOL_SIZE: '10' } : {}),
  });

  const services = {} as Record<ClusterServiceName, ServiceProcess>;
  const pools: Kysely<unknown>[] = [];
  const stop = async () => {
    await Promise.all(Object.values(services).map((s) => endProcess(s)));
    await Promise.all(pools.map((db) => db.destroy()));
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    for (const n of SQL_SERVICES) await admin.query(`DROP DATABASE IF EXISTS "bstore_t${tag}_${n}" WITH (FORCE)`);
    await admin.end();
  };
  try {
    // Book and assignment first, so their demo data exists when the others start; the rest at once.
    const [book, assignment] = await Promise.all([startServiceProcess('book', envOf('book')), startServiceProcess('assignment', envOf('assignment'))]);
    Object.assign(services, { book, assignment });
    const [customercenter, notification, reservation, gateway] = await Promise.all(
      (['customercenter', 'notification', 'reservation', 'gateway'] as const).map((n) => startServiceProcess(n, envOf(n))),
    );
    Object.assign(services, { customercenter, notification, reservation, gateway });
  } catch (err) {
    await stop();
    throw err;
  }

  const connect = <DB>(n: string) => {
    const pool = new pg.Pool({ connectionString: dbUrl(n), max: 2 });
    // The databases are dropped WITH (FORCE) at the end: an idle client's termination is expected.
    pool.on('error', () => undefined);
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    pools.push(db as Kysely<unknown>);
    return db;
  };
  let dbs: SystemDatabases | undefined;
  return {
    services,
    gateway: local('gateway'),
    env,
    restart: async (n) => {
      services[n] = await startServiceProcess(n, envOf(n));
      return services[n];
    },
    databases: () =>
      (dbs ??= {
        book: connect<BookTables>('book'),
        reservation: connect<ReservationTables>('reservation'),
        assignment: connect<AssignmentTables>('assignment'),
        customercenter: () => readAllPages(local('customercenter')),
      }),
    stop,
  };
}

/** Every page of the read model, through customercenter's API as staff. */
export async function readAllPages(customercenterUrl: string): Promise<PageRow[]> {
  const rows: PageRow[] = [];
  const headers = await asStaff();
  for (let offset = 0; ; offset += 100) {
    const res = await fetch(`${customercenterUrl}/reservationPages?limit=100&offset=${offset}`, { headers });
    if (!res.ok) throw new Error(`GET /reservationPages answered ${res.status}: ${await res.text()}`);
    const body = (await res.json()) as { items: { reservationId: number; status: string; libraryName: string | null }[]; total: number };
    rows.push(...body.items.map((p) => ({ reservation_id: p.reservationId, status: p.status, library_name: p.libraryName })));
    if (offset + 100 >= body.total) return rows;
  }
}
