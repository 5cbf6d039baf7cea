import { randomBytes, randomUUID } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { AssignmentTables } from '@bstore/assignment';
import type { BookTables } from '@bstore/book';
import type { ReservationTables } from '@bstore/reservation';
import { as, asStaff } from '../support/auth.ts';
import { endProcess, readAllPages, startServiceProcess, type ClusterServiceName, type ServiceProcess } from '../support/cluster.ts';
import { busyPercent, machineCpu, processCpuMs } from '../support/cpu.ts';
import { bookSnapshotViolations, checkInvariants } from '../support/invariants.ts';
import { startPrivateNats, type PrivateNats } from '../support/nats.ts';
import { ensurePostgres, POSTGRES_URL } from '../support/postgres.ts';
import { freePort } from '../support/process.ts';
import { startPrivateRedis, type PrivateRedis } from '../support/redis.ts';

/**
 * A chaos run in the spirit of Jepsen: cluster mode with two replicas of reservation and of
 * assignment; many patrons reserve and cancel at once on a few hot books and many cold ones; a
 * fault schedule kills processes (they come back), restarts NATS, freezes book past the timeout
 * (and a reservation replica past the Idempotency-Key lock) and re-publishes events so consumers
 * see duplicates. Patrons retry as the web app does: one Idempotency-Key per intent, the same key
 * on a lost answer, a 5xx, a 429 or 409 IDEMPOTENCY_KEY_IN_USE, some only after the key's lock
 * expired. The load takes the whole life of a hold (issue 18, `lifecycle`): patrons join the
 * waiting line of scarce titles and leave some lines, a librarian checks copies out and in, and
 * with a pickup period of seconds what is not picked up expires (the copy passes to the next in
 * line). Every answer a client got is recorded and classified (an answer no client should get is
 * counted as unexpected), and book is sampled while the load runs (I1, I8, I9, I10 on snapshots);
 * then the system is left to go quiet and invariants I1–I11 are checked over the whole history,
 * treating a call whose answer was lost as indeterminate.
 */
export interface ChaosOptions {
  /** How long the load (and the faults) run. */
  durationMs: number;
  /** Inject faults; without, the run also checks that no answer was a 5xx. */
  faults: boolean;
  customers?: number;
  workers?: number;
  hotBooks?: number;
  coldBooks?: number;
  /** Milliseconds between two faults. */
  faultEveryMs?: number;
  /** Replicas of reservation and of assignment (2 each by default). */
  reservationReplicas?: number;
  assignmentReplicas?: number;
  /**
   * Send the patrons' calls through a gateway process that balances over the replicas (its
   * RESERVATION_URL and ASSIGNMENT_URL list them all), as clients of a deployment do; otherwise
   * each call goes straight to a random replica.
   */
  viaGateway?: boolean;
  /** Kill -9 one replica of this service halfway through the load, and leave it dead. */
  killMidway?: 'reservation' | 'assignment' | null;
  /** Copies of each hot and each cold book (15 and 2 by default). */
  hotQuantity?: number;
  coldQuantity?: number;
  /**
   * The whole life of a hold (issue 18), on by default: a few scarce titles (`scarceBooks` of
   * `scarceQuantity` copies) where lines form; patrons who join the waiting line (`waitlist: true`)
   * and cancel some waiting reservations; a librarian who checks out some reservations awaiting
   * pickup and checks in some loans; and a short pickup period (`pickupPeriod`, the sweep every
   * 500 ms) so that the rest expire. Off: the load of before (reserve and cancel only).
   */
  lifecycle?: boolean;
  scarceBooks?: number;
  scarceQuantity?: number;
  /** BSTORE_PICKUP_PERIOD with `lifecycle` (ISO 8601, PT3S by default). */
  pickupPeriod?: string;
  /** Extra environment for every service process. */
  env?: Record<string, string>;
  /** How long to wait for the system to go quiet after the load. */
  settleTimeoutMs?: number;
  seed?: number;
  log?: (line: string) => void;
}

/** `freezeReservation` comes with each `freezeBook`: one reservation replica stopped past the key lock. */
export type FaultKind = 'kill' | 'natsRestart' | 'freezeBook' | 'freezeReservation' | 'duplicates';

/** One service process of the run, and what its consumer handled (from its /metrics at the end). */
export interface ReplicaReport {
  service: ClusterServiceName;
  index: number;
  /** Killed midway and left dead: its counts died with it. */
  killed: boolean;
  /** Events its consumer handled for the first time (`bstore_consumer_events_total{result="handled"}`). */
  handled: number | null;
  /** Deliveries its consumer found already handled (the inbox caught them). */
  duplicates: number | null;
  /** CPU time the process used during the load (user + system, from /proc), in ms; null if killed. */
  cpuMs: number | null;
}

export interface ChaosReport {
  options: Required<Omit<ChaosOptions, 'log'>>;
  operations: number;
  /** How long the load ran. */
  loadMs: number;
  /**
   * Sagas complete once the system went quiet (reservations bookReserved or bookCanceled), and the
   * time from the start of the load to the last one's completion (its row's updated_at).
   */
  sagas: { completed: number; spanMs: number | null };
  /** How busy the machine's CPUs were during the load (every process, the servers included), in %. */
  machineCpuBusyPct: number | null;
  replicas: ReplicaReport[];
  /** Events each consumer's inbox recorded as handled, by consumer (from the services' databases). */
  inboxRows: Record<string, number>;
  /** Intents to reserve (one Idempotency-Key each) by their final answer; indeterminate: none during the load. */
  reserves: { acknowledged: number; refused: number; indeterminate: number };
  /** The patrons' retries with one Idempotency-Key per intent. */
  idempotency: {
    /** How long a running request owns its key (BSTORE_IDEMPOTENCY_LOCK_MS). */
    lockMs: number;
    keys: number;
    /** Attempts after an intent's first. */
    retries: number;
    /** 409 IDEMPOTENCY_KEY_IN_USE answers. */
    inUse: number;
    /** Keys retried after a lost attempt's lock had surely expired (the retry could take the key over). */
    retriedAfterLock: number;
    /** 201s that were no replay, to a key one of whose earlier answers was lost: the retry placed (a fresh claim or a takeover). */
    placedAfterLost: number;
    /** Replayed 201s to a key one of whose earlier answers was lost. */
    replayedAfterLost: number;
    /** The keys without a final answer, retried once more after the load: their answers by status. */
    finalRetries: Record<string, number>;
  };
  /** Book's held and waiting copies per patron (I8), and snapshots of book (I1, I9, I10), sampled while the load ran and until the checks ended. */
  holdsSampled: { samples: number; maxHeldByOnePatron: number; limit: number; bookSnapshots: number };
  cancels: { acknowledged: number; refused: number; indeterminate: number };
  /** The life of a hold (with `lifecycle`): what the clients did and were told, and what the databases say once quiet. */
  lifecycle: LifecycleReport;
  /**
   * Answers no client should get, whatever the faults (see `isExpected`): by operation, status and
   * code, with the first few in full. Not retried away: each attempt's answer counts.
   */
  unexpected: { count: number; byKind: Record<string, number>; examples: string[] };
  statuses: Record<string, number>;
  serverErrors: number;
  faults: Record<FaultKind, number>;
  violations: string[];
  /** The ids the violations name. */
  offendingIds: number[];
  settledInMs: number | null;
}

/** The librarian's calls of one kind (check-outs or check-ins). */
export interface DeskReport {
  /** Answered 200. */
  acknowledged: number;
  /** Answered 409 (the reservation had moved on: expired, already lent or returned), by code and the status the answer named. */
  refused: Record<string, number>;
  /** No final answer (lost, or 5xx on every attempt). */
  indeterminate: number;
}

export interface LifecycleReport {
  /** 201s that said bookWaiting: the patron was put in the book's line. */
  waitlisted: number;
  /** Intents with `waitlist: true` (some sent after a 409 BOOK_OUT_OF_STOCK, as the web app offers). */
  waitlistIntents: number;
  joinedAfterOutOfStock: number;
  /** Cancels answered 202 of reservations whose 201 said bookWaiting. */
  waitingCancels: number;
  /** Waiting reservations their patrons cancelled at closing time, after the load (counted in the cancels too). */
  leftAtClose: number;
  /** 409s that are the right answer under races (the reservation's state moved meanwhile), by code. */
  raced: Record<string, number>;
  checkOuts: DeskReport;
  checkIns: DeskReport;
  /**
   * From the databases once quiet: reservations that joined a line (book's holds with a ticket),
   * copies granted to the line (CopyGranted), check-outs, returns and expiries written
   * (reservation's outbox), and reservations still waiting or on loan.
   */
  recorded: { waited: number; granted: number; checkedOut: number; returned: number; expired: number; stillWaiting: number; onLoan: number };
}

/** A small seeded generator, so a run's choices can be repeated. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4_294_967_296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Replica {
  name: ClusterServiceName;
  index: number;
  port: number;
  env: Record<string, string>;
  proc: ServiceProcess | undefined;
}

type CallResult = { kind: 'answer'; status: number; body: Record<string, unknown>; retryAfterS: number | null; replayed: boolean } | { kind: 'lost'; reason: string };

/** One patron's intent to reserve, under one Idempotency-Key, and every answer it got. */
interface KeyHistory {
  customerId: string;
  bookId: number;
  key: string;
  /** Each attempt's answer, briefly: `201 #12`, `409 BOOK_OUT_OF_STOCK #13`, `lost`, `503 BOOK_SERVICE_UNAVAILABLE`. */
  answers: string[];
  /** Sent with `waitlist: true`: join the book's line when no copy is free. */
  waitlist: boolean;
  /** The reservations the answers named (201s, and 409 BOOK_OUT_OF_STOCK problems): one at most. */
  reservationIds: Set<number>;
  /** A final answer came: not lost, no 5xx, 429 or 409 IDEMPOTENCY_KEY_IN_USE. */
  settled: boolean;
  /** An earlier attempt's answer was lost. */
  lost: boolean;
  /** When the lock a lost attempt may have claimed has surely expired (its end plus the lock). */
  lockExpiredAt: number | null;
  /** A retry was sent after that: it could take the key over. */
  retriedAfterLock: boolean;
}

/** Attempts a patron makes with one key during the load (the web app retries until told; bounded here). */
const MAX_ATTEMPTS = 6;
/** Share of lost or 5xx answers retried only after the key's lock expired: a patron who comes back later. */
const LATE_RETRY_SHARE = 0.3;
/**
 * Share of intents whose patron stops waiting for each answer after IMPATIENT_TIMEOUT_MS (a flaky
 * network): the request may still run when its retry arrives.
 */
const IMPATIENT_SHARE = 0.25;
const IMPATIENT_TIMEOUT_MS = 1000;
/** The longest Retry-After a patron waits for during the load, so the run stays bounded. */
const MAX_RETRY_AFTER_MS = 3000;
/** The longest wait for a key's lock to expire (a retry, the freeze of a reservation replica), whatever the lock. */
const MAX_LOCK_WAIT_MS = 10_000;
/** How often book's holds are counted per patron while the load runs. */
const HOLDS_SAMPLE_EVERY_MS = 500;

/** Every kind of fault, in the order the schedule cycles through them (the victim is random). */
const FAULT_CYCLE: readonly FaultKind[] = ['kill', 'natsRestart', 'freezeBook', 'duplicates'];
/** How long book is stopped by a freezeBook: past the reservation's 1.5 s attempt at a hold. */
const BOOK_FREEZE_MS = 3000;

/** With `lifecycle`: where patrons reserve (hot titles, else scarce ones, else any), and how many intents ask to wait in line. */
const HOT_SHARE = 0.45;
const SCARCE_SHARE = 0.25;
const WAITLIST_SHARE = 0.4;
/** Patrons told 409 BOOK_OUT_OF_STOCK who then join the line, as the web app offers (a new intent, with its own key). */
const JOIN_AFTER_OUT_OF_STOCK_SHARE = 0.5;
/** Cancels that pick one of the patron's waiting reservations, when they have one. */
const CANCEL_WAITING_SHARE = 0.5;
/**
 * The librarian looks at the desk every DESK_EVERY_MS (0.5 to 1.5 times): checks out this share of
 * the reservations it sees awaiting pickup, each after a random delay up to CHECK_OUT_DELAY_MS (past
 * a 3 s pickup period sometimes: a race with the deadline sweep); the others expire. Checks in this
 * share of the loans it sees, after up to CHECK_IN_DELAY_MS; the others stay lent.
 */
const DESK_EVERY_MS = 400;
const CHECK_OUT_SHARE = 0.5;
const CHECK_OUT_DELAY_MS = 4000;
const CHECK_IN_SHARE = 0.7;
const CHECK_IN_DELAY_MS = 3000;
/** Attempts at one check-out or check-in (again on a lost answer, a 5xx or a 429); each gives up after DESK_TIMEOUT_MS. */
const DESK_ATTEMPTS = 3;
const DESK_TIMEOUT_MS = 5000;
/** Check-outs and check-ins planned or in flight at once, at most. */
const MAX_DESK_TASKS = 40;
/** A reservation still bookReserved this long after its pickup deadline, once quiet, was missed by the sweep (I3). */
const EXPIRY_SLACK_MS = 5000;

type Operation = 'reserve' | 'cancel' | 'checkOut' | 'checkIn' | 'desk';
/** Each operation's success, and the 409s that are the right answer when the reservation's state moved meanwhile. */
const EXPECTED: Record<Operation, { ok: number; conflicts: readonly string[] }> = {
  reserve: { ok: 201, conflicts: ['BOOK_OUT_OF_STOCK', 'TOO_MANY_ACTIVE_RESERVATIONS', 'ACTIVE_RESERVATION_EXISTS', 'IDEMPOTENCY_KEY_IN_USE'] },
  cancel: { ok: 202, conflicts: ['RESERVATION_NOT_CANCELLABLE'] },
  checkOut: { ok: 200, conflicts: ['RESERVATION_NOT_AWAITING_PICKUP'] },
  checkIn: { ok: 200, conflicts: ['RESERVATION_NOT_ON_LOAN'] },
  desk: { ok: 200, conflicts: [] },
};
/** The 409s counted as races in the report (the others are counted elsewhere). */
const RACES = ['ACTIVE_RESERVATION_EXISTS', 'RESERVATION_NOT_AWAITING_PICKUP', 'RESERVATION_NOT_ON_LOAN', 'RESERVATION_NOT_CANCELLABLE'];

const codeOf = (res: CallResult): string | undefined => (res.kind === 'answer' && typeof res.body.code === 'string' ? res.body.code : undefined);

/**
 * Whether an answer is one a client may get under faults: its operation's success or one of its
 * legitimate 409s; 503 or 429 with Retry-After (come back later); the gateway's 502 BAD_GATEWAY or
 * 504 UPSTREAM_TIMEOUT (its word for an answer lost with a replica); or no answer at all (lost).
 * Anything else (a 500, a 503 without Retry-After, a 400, 403 or 404, another 409) is unexpected.
 */
export function isExpected(op: Operation, res: CallResult): boolean {
  if (res.kind === 'lost') return true;
  const code = codeOf(res);
  if (res.status === EXPECTED[op].ok) return true;
  if (res.status === 409) return code !== undefined && EXPECTED[op].conflicts.includes(code);
  if ((res.status === 503 || res.status === 429) && res.retryAfterS !== null) return true;
  return (res.status === 502 && code === 'BAD_GATEWAY') || (res.status === 504 && code === 'UPSTREAM_TIMEOUT');
}

export async function runChaos(input: ChaosOptions): Promise<ChaosReport> {
  const options = {
    customers: 40,
    workers: 8,
    hotBooks: 3,
    coldBooks: 30,
    faultEveryMs: 2500,
    settleTimeoutMs: 120_000,
    seed: Date.now() % 1_000_000,
    reservationReplicas: 2,
    assignmentReplicas: 2,
    viaGateway: false,
    killMidway: null,
    hotQuantity: 15,
    coldQuantity: 2,
    lifecycle: true,
    scarceBooks: 4,
    scarceQuantity: 1,
    pickupPeriod: 'PT3S',
    env: {},
    ...input,
  };
  const { log: _log, ...reported } = options;
  const log = input.log ?? (() => undefined);
  const random = rng(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

  await ensurePostgres();
  const tag = randomBytes(4).toString('hex');
  const dbUrl = (service: string) => {
    const url = new URL(POSTGRES_URL);
    url.pathname = `/bstore_chaos${tag}_${service}`;
    return url.toString();
  };
  let nats: PrivateNats | undefined;
  let redis: PrivateRedis | undefined;
  const replicas: Replica[] = [];
  const pools: Kysely<unknown>[] = [];
  // The holds sampler: stopped (and awaited) before the pools close, whatever happens.
  const sampler = { stop: false, done: Promise.resolve() };

  const report: ChaosReport = {
    options: reported,
    operations: 0,
    loadMs: 0,
    sagas: { completed: 0, spanMs: null },
    machineCpuBusyPct: null,
    replicas: [],
    inboxRows: {},
    reserves: { acknowledged: 0, refused: 0, indeterminate: 0 },
    idempotency: { lockMs: 0, keys: 0, retries: 0, inUse: 0, retriedAfterLock: 0, placedAfterLost: 0, replayedAfterLost: 0, finalRetries: {} },
    holdsSampled: { samples: 0, maxHeldByOnePatron: 0, limit: 0, bookSnapshots: 0 },
    cancels: { acknowledged: 0, refused: 0, indeterminate: 0 },
    lifecycle: {
      waitlisted: 0,
      waitlistIntents: 0,
      joinedAfterOutOfStock: 0,
      waitingCancels: 0,
      leftAtClose: 0,
      raced: {},
      checkOuts: { acknowledged: 0, refused: {}, indeterminate: 0 },
      checkIns: { acknowledged: 0, refused: {}, indeterminate: 0 },
      recorded: { waited: 0, granted: 0, checkedOut: 0, returned: 0, expired: 0, stillWaiting: 0, onLoan: 0 },
    },
    unexpected: { count: 0, byKind: {}, examples: [] },
    statuses: {},
    serverErrors: 0,
    faults: { kill: 0, natsRestart: 0, freezeBook: 0, freezeReservation: 0, duplicates: 0 },
    violations: [],
    offendingIds: [],
    settledInMs: null,
  };

  try {
    [nats, redis] = await Promise.all([startPrivateNats(), startPrivateRedis()]);
    const layout: [ClusterServiceName, number][] = [
      ['book', 1],
      ['assignment', options.assignmentReplicas],
      ['customercenter', 1],
      ['reservation', options.reservationReplicas],
      ['gateway', options.viaGateway ? 1 : 0],
    ];
    for (const [name, count] of layout) for (let i = 0; i < count; i++) replicas.push({ name, index: i, port: await freePort(), env: {}, proc: undefined });
    const bookReplica = replicas.find((r) => r.name === 'book') as Replica;
    const common = {
      NATS_URL: nats.url,
      REDIS_URL: redis.url,
      BSTORE_REDIS_PREFIX: `bstore-chaos${tag}:`,
      BOOK_URL: `http://127.0.0.1:${bookReplica.port}`,
      BSTORE_SWEEP_INTERVAL_MS: '1000',
      BSTORE_PENDING_STALE_AFTER_MS: '3000',
      BSTORE_START_RETRY_MAX_MS: '1000',
      BSTORE_SHUTDOWN_GRACE_MS: '5000',
      BSTORE_DEMO_DATA: 'true',
      // The demo identity in every process: the customers' tokens (../support/auth.ts) verify everywhere.
      BSTORE_DEMO_AUTH: 'true',
      // A retry with the same Idempotency-Key may take over a key whose request has run this long:
      // short, so takeovers happen within a short run (the product's default is a minute).
      BSTORE_IDEMPOTENCY_LOCK_MS: '3000',
      // The active limit, explicit so the checker knows it: no patron ever holds more copies (I8).
      BSTORE_MAX_ACTIVE_RESERVATIONS: '5',
      // A copy waits on the hold shelf this long, and the deadline sweep runs every 500 ms: what the
      // librarian does not check out expires within the run (ADR 0022).
      ...(options.lifecycle ? { BSTORE_PICKUP_PERIOD: options.pickupPeriod, BSTORE_DEADLINE_SWEEP_INTERVAL_MS: '500' } : {}),
      ...options.env,
    };
    const lockMs = Number(common.BSTORE_IDEMPOTENCY_LOCK_MS);
    const activeLimit = Number(common.BSTORE_MAX_ACTIVE_RESERVATIONS);
    report.idempotency.lockMs = lockMs;
    report.holdsSampled.limit = activeLimit;
    const urlsOf = (name: ClusterServiceName) =>
      replicas
        .filter((r) => r.name === name)
        .map((r) => `http://127.0.0.1:${r.port}`)
        .join(',');
    for (const r of replicas) {
      r.env = {
        ...common,
        PORT: String(r.port),
        ...(r.name === 'book' || r.name === 'reservation' || r.name === 'assignment' ? { DATABASE_URL: dbUrl(r.name), DATABASE_POOL_SIZE: '8' } : {}),
        ...(r.name === 'gateway'
          ? {
              // The gateway balances over every replica, as over a Kubernetes Service's endpoints.
              RESERVATION_URL: urlsOf('reservation'),
              ASSIGNMENT_URL: urlsOf('assignment'),
              CUSTOMERCENTER_URL: urlsOf('customercenter'),
              // Many patrons from one address: the edge limits are tested on their own.
              BSTORE_RATE_LIMIT_PER_MINUTE: '0',
              BSTORE_RATE_LIMIT_IP_PER_MINUTE: '0',
            }
          : {}),
      };
    }
    // One replica of each first (each creates and migrates its database), then the second ones.
    const firsts = replicas.filter((r) => r.index === 0);
    for (const r of firsts) r.proc = await startServiceProcess(r.name, r.env);
    await Promise.all(replicas.filter((r) => r.index > 0).map(async (r) => (r.proc = await startServiceProcess(r.name, r.env))));
    log(`cluster up: ${replicas.map((r) => `${r.name}#${r.index}:${r.port}`).join(' ')}`);

    const urlOf = (r: Replica) => `http://127.0.0.1:${r.port}`;
    const ofService = (name: ClusterServiceName) => replicas.filter((r) => r.name === name);
    // Where a patron's reservation call goes: the gateway, or a random live replica.
    const gateway = replicas.find((r) => r.name === 'gateway');
    const reservationTarget = () => gateway ?? pick(ofService('reservation').filter((r) => r.proc !== undefined));
    // `caller`: a customer's bearer token (signed once per customer and cached) or the librarian's.
    const call = async (
      replica: Replica,
      method: string,
      path: string,
      caller: { authorization: string },
      body?: unknown,
      headers: Record<string, string> = {},
      timeoutMs = 15_000,
    ): Promise<CallResult> => {
      try {
        const res = await fetch(`${urlOf(replica)}${path}`, {
          method,
          headers: { ...caller, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        report.statuses[String(res.status)] = (report.statuses[String(res.status)] ?? 0) + 1;
        if (res.status >= 500) report.serverErrors++;
        const retryAfter = Number(res.headers.get('retry-after'));
        return {
          kind: 'answer',
          status: res.status,
          body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
          retryAfterS: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null,
          replayed: res.headers.get('idempotent-replayed') === 'true',
        };
      } catch (err) {
        report.statuses.lost = (report.statuses.lost ?? 0) + 1;
        return { kind: 'lost', reason: err instanceof Error ? err.message : String(err) };
      }
    };

    // The catalogue: a few hot books with many copies, many cold ones with few, and (with the
    // lifecycle) a few scarce ones where lines form.
    const books: number[] = [];
    const hot: number[] = [];
    const scarce: number[] = [];
    const scarceBooks = options.lifecycle ? options.scarceBooks : 0;
    for (let i = 0; i < options.hotBooks + options.coldBooks + scarceBooks; i++) {
      const kind = i < options.hotBooks ? 'hot' : i < options.hotBooks + options.coldBooks ? 'cold' : 'scarce';
      const quantity = kind === 'hot' ? options.hotQuantity : kind === 'cold' ? options.coldQuantity : options.scarceQuantity;
      const res = await call(bookReplica, 'POST', '/books', await asStaff(), { bookName: `Chaos ${tag} ${kind} ${i}`, quantity });
      if (res.kind !== 'answer' || res.status !== 201) throw new Error(`could not create a book: ${JSON.stringify(res)}`);
      const id = Number(res.body.bookId);
      books.push(id);
      if (kind === 'hot') hot.push(id);
      if (kind === 'scarce') scarce.push(id);
    }

    // The history: what clients were told.
    const acknowledged = new Set<number>();
    const canceled = new Set<number>();
    // 201s that said bookWaiting; 200s to a check-out and to a check-in; everything a client asked for.
    const acknowledgedWaiting = new Set<number>();
    const checkedOut = new Set<number>();
    const returned = new Set<number>();
    const asked = { cancel: new Set<number>(), checkOut: new Set<number>(), checkIn: new Set<number>() };
    const mine = new Map<string, number[]>();
    // Every answer is classified: unexpected ones are counted (with a few in full), races too.
    const note = (op: Operation, res: CallResult, what: string) => {
      const code = codeOf(res);
      if (!isExpected(op, res) && res.kind === 'answer') {
        report.unexpected.count++;
        const kind = [op, String(res.status), code].filter(Boolean).join(' ');
        report.unexpected.byKind[kind] = (report.unexpected.byKind[kind] ?? 0) + 1;
        if (report.unexpected.examples.length < 10) report.unexpected.examples.push(`${op} ${what}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      }
      if (res.kind === 'answer' && res.status === 409 && code !== undefined && RACES.includes(code)) report.lifecycle.raced[code] = (report.lifecycle.raced[code] ?? 0) + 1;
    };
    const customers = Array.from({ length: options.customers }, (_, i) => `chaos-${i}`);

    const keys: KeyHistory[] = [];
    // What the web app retries with the same key: no final answer was given.
    const retryable = (res: CallResult) => res.kind === 'lost' || res.status >= 500 || res.status === 429 || (res.status === 409 && res.body.code === 'IDEMPOTENCY_KEY_IN_USE');
    // One POST of the intent, with its key; records the answer, and the reservation it names.
    const attemptReserve = async (h: KeyHistory, timeoutMs?: number): Promise<CallResult> => {
      if (h.lockExpiredAt !== null && Date.now() >= h.lockExpiredAt && !h.retriedAfterLock) {
        h.retriedAfterLock = true;
        report.idempotency.retriedAfterLock++;
      }
      const body = { bookId: h.bookId, ...(h.waitlist ? { waitlist: true } : {}) };
      const res = await call(reservationTarget(), 'POST', '/reservations', await as(h.customerId), body, { 'idempotency-key': h.key }, timeoutMs);
      note('reserve', res, `key ${h.key} of ${h.customerId}`);
      if (res.kind === 'lost') {
        h.answers.push('lost');
        h.lost = true;
        h.lockExpiredAt = Date.now() + lockMs;
        return res;
      }
      const code = typeof res.body.code === 'string' ? res.body.code : undefined;
      const id = res.status === 201 || (res.status === 409 && code === 'BOOK_OUT_OF_STOCK') ? Number(res.body.reservationId) : NaN;
      const named = Number.isInteger(id) ? id : undefined;
      h.answers.push([String(res.status), code, named !== undefined ? `#${named}` : undefined, res.replayed ? 'replayed' : undefined].filter(Boolean).join(' '));
      if (named !== undefined) h.reservationIds.add(named);
      if (code === 'IDEMPOTENCY_KEY_IN_USE') report.idempotency.inUse++;
      if (res.status === 201 && h.lost) {
        if (res.replayed) report.idempotency.replayedAfterLost++;
        else report.idempotency.placedAfterLost++;
      }
      if (!retryable(res)) {
        h.settled = true;
        if (res.status === 201 && named !== undefined) {
          acknowledged.add(named);
          mine.set(h.customerId, [...(mine.get(h.customerId) ?? []), named]);
          if (res.body.status === 'bookWaiting' && !acknowledgedWaiting.has(named)) {
            acknowledgedWaiting.add(named);
            report.lifecycle.waitlisted++;
          }
        }
      }
      return res;
    };
    // How long a patron waits before the next attempt: Retry-After (bounded) or a short backoff; a
    // share of lost answers and 5xx are retried only after the key's lock expired.
    const retryDelay = (res: CallResult, attempt: number): number => {
      if ((res.kind === 'lost' || res.status >= 500) && random() < LATE_RETRY_SHARE) return Math.min(lockMs + 250 + random() * 1000, MAX_LOCK_WAIT_MS);
      if (res.kind === 'answer' && res.retryAfterS !== null) return Math.min(res.retryAfterS * 1000, MAX_RETRY_AFTER_MS);
      return Math.min(100 * 2 ** attempt, 1600) * (0.5 + random());
    };

    const chooseBook = (): number => {
      if (!options.lifecycle) return random() < 0.6 ? pick(hot) : pick(books);
      const r = random();
      return r < HOT_SHARE && hot.length > 0 ? pick(hot) : r < HOT_SHARE + SCARCE_SHARE && scarce.length > 0 ? pick(scarce) : pick(books);
    };
    const reserve = async (customerId: string, again?: { bookId: number }): Promise<void> => {
      const waitlist = again !== undefined || (options.lifecycle && random() < WAITLIST_SHARE);
      if (waitlist) report.lifecycle.waitlistIntents++;
      const h: KeyHistory = {
        customerId,
        bookId: again?.bookId ?? chooseBook(),
        key: randomUUID(),
        waitlist,
        answers: [],
        reservationIds: new Set(),
        settled: false,
        lost: false,
        lockExpiredAt: null,
        retriedAfterLock: false,
      };
      keys.push(h);
      report.idempotency.keys++;
      const timeoutMs = random() < IMPATIENT_SHARE ? IMPATIENT_TIMEOUT_MS : undefined;
      // Retried with the same key, on another replica if there is one; once the load is over the
      // key is left to the retry after the load.
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (attempt > 0) report.idempotency.retries++;
        const res = await attemptReserve(h, timeoutMs);
        if (h.settled) {
          if (res.kind === 'answer' && res.status === 201) report.reserves.acknowledged++;
          else report.reserves.refused++;
          // A polite client waits as told before its next request (bounded, so the run goes on).
          if (res.kind === 'answer' && res.retryAfterS !== null) await sleep(Math.min(res.retryAfterS * 1000, 2000));
          // No copy: the web app offers the waiting line, and some patrons take it (a new intent).
          if (options.lifecycle && !h.waitlist && codeOf(res) === 'BOOK_OUT_OF_STOCK' && Date.now() < until && random() < JOIN_AFTER_OUT_OF_STOCK_SHARE) {
            report.lifecycle.joinedAfterOutOfStock++;
            return reserve(customerId, { bookId: h.bookId });
          }
          return;
        }
        if (attempt === MAX_ATTEMPTS - 1) break;
        await sleep(retryDelay(res, attempt));
        if (Date.now() >= until) break;
      }
      report.reserves.indeterminate++;
    };

    const cancel = async (customerId: string) => {
      const ids = mine.get(customerId) ?? [];
      if (ids.length === 0) return reserve(customerId);
      // Some patrons give up their place in a line.
      const waiting = ids.filter((id) => acknowledgedWaiting.has(id));
      const id = options.lifecycle && waiting.length > 0 && random() < CANCEL_WAITING_SHARE ? pick(waiting) : pick(ids);
      await cancelOne(customerId, id);
    };
    const cancelOne = async (customerId: string, id: number) => {
      asked.cancel.add(id);
      const res = await call(reservationTarget(), 'PATCH', `/reservations/${id}`, await as(customerId), { status: 'bookCancel' });
      note('cancel', res, `reservation ${id}`);
      if (res.kind === 'lost' || res.status >= 500) {
        report.cancels.indeterminate++;
        await sleep(200);
      } else if (res.status === 202) {
        canceled.add(id);
        mine.set(
          customerId,
          (mine.get(customerId) ?? []).filter((x) => x !== id),
        );
        report.cancels.acknowledged++;
        if (acknowledgedWaiting.has(id)) report.lifecycle.waitingCancels++;
      } else {
        // Not cancellable any more (lent, expired, returned, or cancelled by an earlier lost attempt): forgotten.
        if (codeOf(res) === 'RESERVATION_NOT_CANCELLABLE') mine.set(customerId, (mine.get(customerId) ?? []).filter((x) => x !== id));
        report.cancels.refused++;
      }
    };

    // The librarian's desk (with the lifecycle): check out some of the reservations awaiting pickup
    // and check in some loans, each decided once per reservation, after a random delay. A check-out
    // or check-in is retried (on a lost answer, a 5xx or a 429, as Retry-After says) a few times.
    const staff = await asStaff();
    const deskTasks = new Set<Promise<void>>();
    const deskCall = async (kind: 'checkOut' | 'checkIn', id: number) => {
      const desk = kind === 'checkOut' ? report.lifecycle.checkOuts : report.lifecycle.checkIns;
      asked[kind].add(id);
      for (let attempt = 0; attempt < DESK_ATTEMPTS; attempt++) {
        const res = await call(reservationTarget(), 'PATCH', `/reservations/${id}`, staff, { status: kind === 'checkOut' ? 'bookLoaned' : 'bookReturned' }, {}, DESK_TIMEOUT_MS);
        note(kind, res, `reservation ${id}`);
        if (res.kind === 'answer' && res.status === 200) {
          (kind === 'checkOut' ? checkedOut : returned).add(id);
          desk.acknowledged++;
          return;
        }
        if (res.kind === 'answer' && res.status < 500 && res.status !== 429) {
          const now = typeof res.body.reservationStatus === 'string' ? `(${res.body.reservationStatus})` : undefined;
          const label = [String(res.status), codeOf(res), now, attempt > 0 ? 'on a retry' : undefined].filter(Boolean).join(' ');
          desk.refused[label] = (desk.refused[label] ?? 0) + 1;
          return;
        }
        if (attempt === DESK_ATTEMPTS - 1 || Date.now() >= until) break;
        await sleep(res.kind === 'answer' && res.retryAfterS !== null ? Math.min(res.retryAfterS * 1000, MAX_RETRY_AFTER_MS) : 250 * 2 ** attempt);
      }
      desk.indeterminate++;
    };
    const decided = { checkOut: new Set<number>(), checkIn: new Set<number>() };
    const librarian = async () => {
      const plans = [
        { kind: 'checkOut', status: 'bookReserved', share: CHECK_OUT_SHARE, delayMs: CHECK_OUT_DELAY_MS },
        { kind: 'checkIn', status: 'bookLoaned', share: CHECK_IN_SHARE, delayMs: CHECK_IN_DELAY_MS },
      ] as const;
      while (Date.now() < until) {
        await sleep(DESK_EVERY_MS * (0.5 + random()));
        for (const plan of plans) {
          if (Date.now() >= until) break;
          const res = await call(reservationTarget(), 'GET', `/reservations?status=${plan.status}&limit=50`, staff, undefined, {}, DESK_TIMEOUT_MS);
          note('desk', res, `GET /reservations?status=${plan.status}`);
          if (res.kind !== 'answer' || res.status !== 200) continue;
          for (const item of res.body.items as { reservationId: number }[]) {
            const id = item.reservationId;
            if (decided[plan.kind].has(id)) continue;
            decided[plan.kind].add(id);
            // Planned only if due before the load ends, so the desk stops with it.
            const delayMs = random() * plan.delayMs;
            if (random() >= plan.share || deskTasks.size >= MAX_DESK_TASKS || Date.now() + delayMs >= until) continue;
            const task: Promise<void> = sleep(delayMs)
              .then(() => deskCall(plan.kind, id))
              .finally(() => deskTasks.delete(task));
            deskTasks.add(task);
          }
        }
      }
      await Promise.all([...deskTasks]);
    };

    // The fault schedule.
    let faultNumber = Math.floor(random() * FAULT_CYCLE.length);
    const faultLoop = async (until: number) => {
      while (Date.now() < until) {
        await sleep(options.faultEveryMs * (0.5 + random()));
        if (Date.now() >= until) break;
        const kind = FAULT_CYCLE[faultNumber++ % FAULT_CYCLE.length] as FaultKind;
        report.faults[kind]++;
        if (kind === 'kill') {
          // Half the kills hit a reservation replica: its requests die holding their Idempotency-Keys,
          // which the patrons' retries take over once the lock expires.
          const live = replicas.filter((r) => r.proc !== undefined);
          const liveReservations = live.filter((r) => r.name === 'reservation');
          const victim = pick(liveReservations.length > 0 && random() < 0.5 ? liveReservations : live);
          log(`fault: kill -9 ${victim.name}#${victim.index}`);
          victim.proc?.signal('SIGKILL');
          await victim.proc?.exited;
          await sleep(500);
          victim.proc = await startServiceProcess(victim.name, victim.env);
        } else if (kind === 'natsRestart') {
          log('fault: restart nats-server');
          await nats?.halt();
          await sleep(1500);
          await nats?.restart();
        } else if (kind === 'freezeBook') {
          // With book, one reservation replica, past the Idempotency-Key lock: its requests still run
          // when the patrons who gave up on them retry on the other replica and take their keys over.
          const frozen = ofService('reservation').filter((r) => r.proc !== undefined);
          const victim = frozen.length > 0 ? pick(frozen) : undefined;
          log(`fault: SIGSTOP book past the timeout${victim ? `, and reservation#${victim.index} past the key lock` : ''}`);
          bookReplica.proc?.signal('SIGSTOP');
          victim?.proc?.signal('SIGSTOP');
          if (victim) report.faults.freezeReservation++;
          await sleep(BOOK_FREEZE_MS);
          bookReplica.proc?.signal('SIGCONT');
          await sleep(victim ? Math.max(0, Math.min(lockMs + 1000, MAX_LOCK_WAIT_MS) - BOOK_FREEZE_MS) : 0);
          victim?.proc?.signal('SIGCONT');
        } else {
          const n = await republishSome(nats as PrivateNats, random, 10);
          log(`fault: re-published ${n} events (duplicate deliveries)`);
        }
      }
    };

    // The databases, read while the load runs (book's holds) and once the system is quiet.
    const connectDb = <DB>(service: string) => {
      const pool = new pg.Pool({ connectionString: dbUrl(service), max: 2 });
      pool.on('error', () => undefined); // dropped WITH (FORCE) at the end
      const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
      pools.push(db as Kysely<unknown>);
      return db;
    };
    const customercenter = replicas.find((r) => r.name === 'customercenter') as Replica;
    const dbs = {
      book: connectDb<BookTables>('book'),
      reservation: connectDb<ReservationTables>('reservation'),
      assignment: connectDb<AssignmentTables>('assignment'),
      customercenter: () => readAllPages(urlOf(customercenter)),
    };

    // I8 at any time: no patron holds or waits for more copies than the active limit. Counted from
    // book's holds every HOLDS_SAMPLE_EVERY_MS while the load runs and until the checks end (the
    // recovery sweep and the retries after the load take holds too); bounded by a deadline besides.
    // And I1, I9 and I10 on the same schedule, each on one snapshot of book (bookSnapshotViolations).
    const overLimit = new Map<string, { held: number; samples: number; firstAtMs: number }>();
    const sampled = new Map<string, { samples: number; firstAtMs: number }>();
    const sampleHolds = async (deadline: number) => {
      while (!sampler.stop && Date.now() < deadline) {
        const found = await bookSnapshotViolations(dbs.book).catch(() => undefined);
        if (found) report.holdsSampled.bookSnapshots++;
        for (const v of found ?? []) {
          const seen = sampled.get(v);
          if (seen) seen.samples++;
          else if (sampled.size < 50) sampled.set(v, { samples: 1, firstAtMs: Date.now() - started });
        }
        const rows = await dbs.book
          .selectFrom('holds')
          .select((eb) => ['customer_id', eb.fn.countAll<string>().as('held')])
          .where('status', 'in', ['held', 'waiting'])
          .groupBy('customer_id')
          .execute()
          .catch(() => undefined);
        if (rows) {
          report.holdsSampled.samples++;
          for (const row of rows) {
            const held = Number(row.held);
            report.holdsSampled.maxHeldByOnePatron = Math.max(report.holdsSampled.maxHeldByOnePatron, held);
            if (held <= activeLimit) continue;
            const seen = overLimit.get(row.customer_id);
            overLimit.set(row.customer_id, { held: Math.max(held, seen?.held ?? 0), samples: (seen?.samples ?? 0) + 1, firstAtMs: seen?.firstAtMs ?? Date.now() - started });
          }
        }
        await sleep(HOLDS_SAMPLE_EVERY_MS);
      }
    };

    const cpuAtStart = new Map(replicas.map((r) => [r, processCpuMs(r.proc?.pid)]));
    const machineAtStart = machineCpu();
    const started = Date.now();
    const until = started + options.durationMs;
    // The load, the retries after it (at most a minute) and the checks, then a margin.
    sampler.done = sampleHolds(until + 60_000 + options.settleTimeoutMs + 60_000);
    const workers = Array.from({ length: options.workers }, async () => {
      while (Date.now() < until) {
        const customerId = pick(customers);
        report.operations++;
        await (random() < 0.7 ? reserve(customerId) : cancel(customerId));
      }
    });
    if (options.lifecycle) workers.push(librarian());
    // A replica killed for good halfway: the others (and, through the gateway, the clients) carry on.
    const killed = new Set<Replica>();
    const killMidway = async () => {
      const victims = options.killMidway ? ofService(options.killMidway) : [];
      const victim = victims[victims.length - 1];
      if (!victim || victims.length < 2) return;
      await sleep(options.durationMs / 2);
      log(`kill -9 ${victim.name}#${victim.index} for good`);
      victim.proc?.signal('SIGKILL');
      await victim.proc?.exited;
      victim.proc = undefined;
      killed.add(victim);
    };
    await Promise.all([...workers, options.faults ? faultLoop(until) : Promise.resolve(), killMidway()]);
    report.loadMs = Date.now() - started;
    report.machineCpuBusyPct = busyPercent(machineAtStart, machineCpu());
    const cpuDuringLoad = new Map(
      replicas.map((r) => {
        const before = cpuAtStart.get(r);
        const after = processCpuMs(r.proc?.pid);
        return [r, before !== undefined && after !== undefined ? after - before : null] as const;
      }),
    );
    // Whatever the schedule left stopped runs again.
    for (const r of [bookReplica, ...ofService('reservation')]) r.proc?.signal('SIGCONT');
    await nats.restart();
    log(`load done: ${report.operations} operations; retrying the keys without a final answer`);

    // A patron whose intent got no final answer tries once more with the same key, once the lock
    // of any request still running with it has expired; a few at a time.
    const open = keys.filter((h) => !h.settled);
    if (open.length > 0) await sleep(Math.min(lockMs + 1000, MAX_LOCK_WAIT_MS));
    const queue = [...open];
    const retriesUntil = Date.now() + 60_000;
    await Promise.all(
      Array.from({ length: Math.min(8, queue.length) }, async () => {
        for (let h = queue.shift(); h && Date.now() < retriesUntil; h = queue.shift()) {
          const res = await attemptReserve(h);
          const label = res.kind === 'lost' ? 'lost' : [String(res.status), typeof res.body.code === 'string' ? res.body.code : undefined].filter(Boolean).join(' ');
          report.idempotency.finalRetries[label] = (report.idempotency.finalRetries[label] ?? 0) + 1;
        }
      }),
    );
    log(`retried ${open.length} keys once more`);

    // Closing time (with the lifecycle): the patrons leave the lines they know they are in, a few
    // at a time and within a bound, so the lines need not drain one pickup period per place.
    // Whatever was granted meanwhile is cancelled the same way, or is refused as not cancellable.
    if (options.lifecycle) {
      const leaving = [...mine].flatMap(([customerId, ids]) => ids.filter((id) => acknowledgedWaiting.has(id)).map((id) => ({ customerId, id })));
      report.lifecycle.leftAtClose = leaving.length;
      const leaveUntil = Date.now() + 30_000;
      await Promise.all(
        Array.from({ length: Math.min(8, leaving.length) }, async () => {
          for (let next = leaving.shift(); next && Date.now() < leaveUntil; next = leaving.shift()) await cancelOne(next.customerId, next.id);
        }),
      );
      log(`closing time: ${report.lifecycle.leftAtClose} waiting reservations cancelled by their patrons`);
    }
    log('waiting for the system to go quiet');

    const input = {
      acknowledged: [...acknowledged],
      acknowledgedWaiting: [...acknowledgedWaiting],
      canceled: [...canceled],
      checkedOut: [...checkedOut],
      returned: [...returned],
      asked: { cancel: [...asked.cancel], checkOut: [...asked.checkOut], checkIn: [...asked.checkIn] },
      idempotencyKeys: true,
      maxHeldPerCustomer: activeLimit,
      eventHistory: true,
      expiredWithinMs: options.lifecycle ? EXPIRY_SLACK_MS : undefined,
    };
    // Quiet: every invariant holds and, with the lifecycle, nothing waits on the hold shelf any more
    // (the librarian has stopped, so each copy there expires and passes to the next in line, until
    // the lines are empty or their copies all lent).
    const stillMoving = async (): Promise<string | null> => {
      if (!options.lifecycle) return null;
      const row = await dbs.reservation
        .selectFrom('reservations')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('status', '=', 'bookReserved')
        .executeTakeFirstOrThrow();
      return Number(row.n) > 0 ? `${row.n} reservations still await pickup` : null;
    };
    const settleStart = Date.now();
    let violations: string[] = ['not checked yet'];
    let moving: string | null = null;
    while (Date.now() - settleStart < options.settleTimeoutMs) {
      violations = await checkInvariants(dbs, input).catch((err: unknown) => [`could not check: ${String(err)}`]);
      moving = violations.length === 0 ? await stillMoving().catch((err: unknown) => `could not tell: ${String(err)}`) : null;
      if (violations.length === 0 && moving === null) break;
      await sleep(1000);
    }
    report.settledInMs = violations.length === 0 && moving === null ? Date.now() - settleStart : null;
    if (moving !== null) log(`did not go quiet within ${options.settleTimeoutMs} ms: ${moving}`);
    sampler.stop = true;
    await sampler.done;
    // Over the history: every answer to one key named the same reservation (I7), and no sample of
    // the holds had a patron over the limit (I8).
    const history = [
      ...keys
        .filter((h) => h.reservationIds.size > 1)
        .map(
          (h) =>
            `I7: Idempotency-Key ${h.key} of customer ${h.customerId} was answered with ${[...h.reservationIds].map((id) => `reservation ${id}`).join(' and ')} (answers in order: ${h.answers.join(', ')})`,
        ),
      ...[...overLimit].map(
        ([customer, o]) =>
          `I8: customer ${customer} held or waited for up to ${o.held} copies at once, more than the active limit ${activeLimit} (in ${o.samples} samples, first ${(o.firstAtMs / 1000).toFixed(1)} s after the load started)`,
      ),
      // Unchecked is not held: a sampler that never read the holds must not pass for one that found nothing.
      ...(report.holdsSampled.samples === 0 ? ['I8: book\'s holds could not be sampled during the load'] : []),
      // I1, I9, I10 on snapshots of book while the system ran.
      ...[...sampled].map(([v, o]) => `sampled ${v} (in ${o.samples} samples, first ${(o.firstAtMs / 1000).toFixed(1)} s after the load started)`),
      ...(report.holdsSampled.bookSnapshots === 0 ? ['I1: book could not be sampled during the load'] : []),
    ];
    report.violations = [...history, ...violations];
    report.offendingIds = [...new Set(report.violations.flatMap((v) => [...v.matchAll(/(?:reservation|page|hold of reservation|book) (\d+)/g)].map((m) => Number(m[1]))))];

    const completed = await dbs.reservation
      .selectFrom('reservations')
      .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.max('updated_at').as('last')])
      .where('status', 'in', ['bookReserved', 'bookCanceled', 'bookLoaned', 'bookReturned', 'bookExpired'])
      .executeTakeFirstOrThrow();
    report.sagas = { completed: Number(completed.n), spanMs: completed.last ? new Date(completed.last).getTime() - started : null };

    // The life of a hold as the databases recorded it.
    const countOf = async (query: { executeTakeFirstOrThrow(): Promise<{ n: string | number }> }) => Number((await query.executeTakeFirstOrThrow()).n);
    const written = (db: Kysely<BookTables> | Kysely<ReservationTables>, type: string) =>
      countOf((db as Kysely<BookTables>).selectFrom('outbox').select((eb) => eb.fn.countAll<string>().as('n')).where('type', '=', type));
    const inStatus = (status: 'bookWaiting' | 'bookLoaned') =>
      countOf(dbs.reservation.selectFrom('reservations').select((eb) => eb.fn.countAll<string>().as('n')).where('status', '=', status));
    report.lifecycle.recorded = {
      waited: await countOf(dbs.book.selectFrom('holds').select((eb) => eb.fn.countAll<string>().as('n')).where('queue_ticket', 'is not', null)),
      granted: await written(dbs.book, 'CopyGranted'),
      checkedOut: await written(dbs.reservation, 'ReservationCheckedOut'),
      returned: await written(dbs.reservation, 'ReservationReturned'),
      expired: await written(dbs.reservation, 'ReservationExpired'),
      stillWaiting: await inStatus('bookWaiting'),
      onLoan: await inStatus('bookLoaned'),
    };

    // Who handled what: each live replica's consumer counts, and each consumer's inbox.
    for (const r of replicas) {
      const counts = r.proc && r.name !== 'gateway' ? await consumerCounts(urlOf(r), r.name) : undefined;
      report.replicas.push({
        service: r.name,
        index: r.index,
        killed: killed.has(r),
        handled: counts?.handled ?? null,
        duplicates: counts?.duplicate ?? null,
        cpuMs: cpuDuringLoad.get(r) ?? null,
      });
    }
    for (const [name, db] of [['book', dbs.book], ['reservation', dbs.reservation], ['assignment', dbs.assignment]] as const) {
      const row = await (db as unknown as Kysely<{ inbox: { consumer: string } }>)
        .selectFrom('inbox')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('consumer', '=', name)
        .executeTakeFirstOrThrow();
      report.inboxRows[name] = Number(row.n);
    }
    return report;
  } finally {
    sampler.stop = true;
    await sampler.done;
    for (const r of replicas) if (r.proc) await endProcess(r.proc, 8000);
    await Promise.all(pools.map((db) => db.destroy()));
    await Promise.all([nats?.stop(), redis?.stop()]);
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    for (const n of ['book', 'reservation', 'assignment']) await admin.query(`DROP DATABASE IF EXISTS "bstore_chaos${tag}_${n}" WITH (FORCE)`);
    await admin.end();
  }
}

/** A consumer's handled and duplicate counts, read from its service's /metrics. */
async function consumerCounts(url: string, consumer: string): Promise<Record<'handled' | 'duplicate', number> | undefined> {
  const text = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })
    .then((r) => r.text())
    .catch(() => undefined);
  if (text === undefined) return undefined;
  const read = (result: string) => {
    const line = text.split('\n').find((l) => l.startsWith('bstore_consumer_events_total{') && l.includes(`consumer="${consumer}"`) && l.includes(`result="${result}"`));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };
  return { handled: read('handled'), duplicate: read('duplicate') };
}

/**
 * Duplicate deliveries: copies of events already in the stream, published again without their
 * message id (so JetStream's deduplication does not drop them); every consumer must see them as
 * duplicates through its inbox.
 */
async function republishSome(nats: PrivateNats, random: () => number, count: number): Promise<number> {
  const nc = await connect({ servers: nats.url, timeout: 3000 }).catch(() => undefined);
  if (!nc) return 0;
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info('BSTORE');
    const { first_seq: first, last_seq: last } = info.state;
    if (last < first) return 0;
    let sent = 0;
    for (let i = 0; i < count; i++) {
      const seq = first + Math.floor(random() * (last - first + 1));
      const msg = await jsm.streams.getMessage('BSTORE', { seq }).catch(() => undefined);
      if (!msg) continue;
      await nc.request(msg.subject, msg.data, { timeout: 3000 });
      sent++;
    }
    return sent;
  } catch {
    return 0;
  } finally {
    await nc.close();
  }
}

/** Completed sagas per second, from the start of the load to the last saga's completion. */
export function sagasPerSecond(report: ChaosReport): number {
  return report.sagas.spanMs ? report.sagas.completed / (report.sagas.spanMs / 1000) : 0;
}

const countBy = (keys: string[]): Record<string, number> => keys.reduce<Record<string, number>>((acc, k) => ({ ...acc, [k]: (acc[k] ?? 0) + 1 }), {});

const desk = (d: DeskReport) =>
  `${d.acknowledged} acknowledged, ${d.indeterminate} indeterminate, refused: ${Object.entries(d.refused).map(([k, v]) => `${k}:${v}`).join(', ') || 'none'}`;

/** The report as the table the command prints. */
export function formatReport(report: ChaosReport): string {
  const row = (a: string, b: string | number) => `  ${a.padEnd(34)} ${String(b)}`;
  const lines = [
    `chaos run (${report.options.faults ? 'with faults' : 'no faults'}, ${report.options.durationMs / 1000} s, seed ${report.options.seed})`,
    row('operations', report.operations),
    row('reservations acknowledged (201)', report.reserves.acknowledged),
    row('reservations refused (4xx)', report.reserves.refused),
    row('reservations indeterminate', `${report.reserves.indeterminate} (no final answer during the load)`),
    row('Idempotency-Keys (intents)', `${report.idempotency.keys}, retried ${report.idempotency.retries} times, ${report.idempotency.inUse} answers 409 IDEMPOTENCY_KEY_IN_USE`),
    row('keys retried past their lock', `${report.idempotency.retriedAfterLock} (lock ${report.idempotency.lockMs} ms)`),
    row('201s after a lost answer', `${report.idempotency.placedAfterLost} placed (claim or takeover), ${report.idempotency.replayedAfterLost} replayed`),
    row(
      'keys retried after the load',
      Object.entries(report.idempotency.finalRetries)
        .map(([k, v]) => `${k}:${v}`)
        .join(' ') || 'none',
    ),
    row('most copies one patron held/awaited', `${report.holdsSampled.maxHeldByOnePatron} (limit ${report.holdsSampled.limit}, ${report.holdsSampled.samples} samples)`),
    row('snapshots of book (I1, I9, I10)', report.holdsSampled.bookSnapshots),
    row(
      'cancels acknowledged (202)',
      `${report.cancels.acknowledged} (${report.lifecycle.waitingCancels} of reservations answered bookWaiting; ${report.lifecycle.leftAtClose} sent at closing time)`,
    ),
    row('cancels refused', report.cancels.refused),
    row('cancels indeterminate', report.cancels.indeterminate),
    ...(report.options.lifecycle
      ? [
          row('waitlist intents', `${report.lifecycle.waitlistIntents} (${report.lifecycle.joinedAfterOutOfStock} after a 409 BOOK_OUT_OF_STOCK)`),
          row('201s answered bookWaiting', report.lifecycle.waitlisted),
          row('check-outs (PATCH bookLoaned)', desk(report.lifecycle.checkOuts)),
          row('check-ins (PATCH bookReturned)', desk(report.lifecycle.checkIns)),
          row('409s under races', Object.entries(report.lifecycle.raced).map(([k, v]) => `${k}:${v}`).join(' ') || 'none'),
          row(
            'recorded once quiet',
            Object.entries(report.lifecycle.recorded)
              .map(([k, v]) => `${k}:${v}`)
              .join(' '),
          ),
        ]
      : []),
    row('unexpected answers', `${report.unexpected.count}${report.unexpected.count > 0 ? ` (${Object.entries(report.unexpected.byKind).map(([k, v]) => `${k}:${v}`).join(', ')})` : ''}`),
    ...report.unexpected.examples.map((e) => `    ${e}`),
    row('answers by status', Object.entries(report.statuses).map(([k, v]) => `${k}:${v}`).join(' ')),
    row('5xx answers', report.serverErrors),
    ...Object.entries(report.faults).map(([k, v]) => row(`faults: ${k}`, v)),
    row('sagas completed', `${report.sagas.completed} (${sagasPerSecond(report).toFixed(1)}/s from the start of the load to the last)`),
    row('settled in', report.settledInMs === null ? 'did not settle' : `${(report.settledInMs / 1000).toFixed(1)} s`),
    row('machine CPU busy during the load', report.machineCpuBusyPct === null ? 'unknown' : `${report.machineCpuBusyPct.toFixed(0)} %`),
    ...report.replicas.map((r) =>
      row(
        `${r.service}#${r.index}${r.killed ? ' (killed)' : ''}`,
        [r.killed ? 'killed midway' : null, r.handled !== null ? `handled ${r.handled}, duplicates ${r.duplicates}` : null, r.cpuMs !== null ? `CPU ${(r.cpuMs / 1000).toFixed(1)} s` : null]
          .filter(Boolean)
          .join(', '),
      ),
    ),
    row('inbox rows', Object.entries(report.inboxRows).map(([k, v]) => `${k}:${v}`).join(' ')),
    row(
      'violations',
      `${report.violations.length}${report.violations.length > 0 ? ` (${Object.entries(countBy(report.violations.map((v) => /^(sampled )?(I\d+|[^:]+)/.exec(v)?.[0] ?? v))).map(([k, n]) => `${k}:${n}`).join(' ')})` : ''}`,
    ),
    ...report.violations.slice(0, 50).map((v) => `    ${v}`),
  ];
  if (report.offendingIds.length > 0) lines.push(row('offending ids', report.offendingIds.join(', ')));
  return lines.join('\n');
}
