import { randomUUID } from 'node:crypto';

/**
 * The benchmark's load through the gateway (issue 9, item 2; the library's cycle since issue 18):
 * patrons reserve (with an Idempotency-Key); a moment after a reservation is seen `bookReserved`
 * (`pickupDelayMs`) its patron comes to the desk and either cancels it (`cancelShare` of them) or
 * staff look it up and check its copy out (GET, then PATCH `bookLoaned`); a moment later
 * (`loanMs`) staff check it back in (PATCH `bookReturned`), which gives the copy back to stock. So
 * copies come back, and a long run at a fixed stock does not drain. The desk's due work goes
 * first, then reservations, by the patrons round in turn: a patron reserves only a book it has
 * nothing open of (one active reservation per patron per book) and has one operation in flight at
 * a time. An optional unmeasured **lead-in** gets the cycle under way before measuring; after the
 * measured load (and its sagas' settling) comes **closing time**: the desk finishes every cycle
 * still open, counted apart, so that each load starts with nothing open and its mix is not the
 * last one's backlog (a closed loop at the maximum leaves a queue of pickups an open loop at a
 * quarter of its rate would spend its first seconds on). Either **closed loop** (`workers` loops, each waiting for its answer: the maximum the
 * system sustains) or **open loop** (operations sent at a fixed arrival rate whatever the answers:
 * latency at a given load, with the time an operation waited to be sent counted in its latency,
 * so a slow system cannot hide its queue).
 *
 * Saga completion is watched on one staff stream of customercenter's pages through the gateway
 * (`GET /reservationPages/stream`): a reservation's saga latency is from its 201 to the moment its
 * page said `bookReserved` there. That saga is the measured one; cancels, check-outs and check-ins
 * are load around it, counted and timed (their answers' latency) but not sagas.
 */

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of `values` (milliseconds); all zeros when there are none. */
export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
  return { count: sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[sorted.length - 1] as number };
}

export type LoadMode = { kind: 'closed'; workers: number } | { kind: 'open'; perSecond: number };

type Bearer = { authorization: string };

/**
 * One reservation a patron has open: `placed` (answered 201, its saga not yet seen complete),
 * `reserved` (seen `bookReserved`: its copy waits for pickup) or `loaned` (checked out). Placed and
 * reserved ones are active; each of the three holds a copy of its book.
 */
export interface OpenReservation {
  reservationId: number;
  bookId: number;
  /** The patron's index in Patrons. */
  who: number;
  state: 'placed' | 'reserved' | 'loaned';
}

/**
 * The load's patrons: each one's bearer header and the reservations they have open. Make one per
 * system and pass it to every load on that system: a load's closing time normally closes every
 * cycle, and what it could not (a saga not seen complete within `settleTimeoutMs`, a look-up
 * deferred too long) goes on in the next load instead of meeting it as 409
 * ACTIVE_RESERVATION_EXISTS.
 */
export class Patrons {
  readonly headers: readonly Bearer[];
  /** Every open reservation by id, oldest first. */
  readonly open = new Map<number, OpenReservation>();
  /** Per patron, the books it has a reservation of open (at most one each: the load reserves no book a patron has open). */
  readonly #books: Set<number>[];

  constructor(headers: readonly Bearer[]) {
    if (headers.length === 0) throw new Error('the load needs at least one patron');
    this.headers = headers;
    this.#books = headers.map(() => new Set());
  }

  get size(): number {
    return this.headers.length;
  }

  /** Whether patron `who` has a reservation (active or on loan) of `bookId` open. */
  has(who: number, bookId: number): boolean {
    return (this.#books[who] as Set<number>).has(bookId);
  }

  add(r: OpenReservation): void {
    this.open.set(r.reservationId, r);
    (this.#books[r.who] as Set<number>).add(r.bookId);
  }

  close(r: OpenReservation): void {
    this.open.delete(r.reservationId);
    (this.#books[r.who] as Set<number>).delete(r.bookId);
  }

  /** Open reservations of every patron, by state (each holds a copy). */
  counts(): { placed: number; reserved: number; loaned: number } {
    const counts = { placed: 0, reserved: 0, loaned: 0 };
    for (const r of this.open.values()) counts[r.state]++;
    return counts;
  }
}

export interface LoadOptions {
  /** The gateway's base URL. */
  gateway: string;
  /** The patrons (they must be allowed enough active reservations), with what earlier loads on this system left open. */
  patrons: Patrons;
  /** A staff bearer header: the stream of every page, and the desk's look-ups, check-outs and check-ins. */
  staff: Bearer;
  /** The book of the next reservation (a hot book, or one of many). */
  pickBook: () => number;
  /** Share of reservations awaiting pickup that their patron cancels (0 to 1); staff check the others out, then in. */
  cancelShare: number;
  mode: LoadMode;
  durationMs: number;
  /** How long to wait after the load for the sagas of its 201s to complete. */
  settleTimeoutMs: number;
  /** Open loop: operations in flight beyond which the generator stops sending (and counts `skipped`). */
  maxInFlight?: number;
  /**
   * Unmeasured load, in the same mode, before the measured `durationMs` (0 by default): long enough
   * for a cycle or two, so that the measured load starts with the cycle's mix (pickups and
   * check-ins of earlier reservations going on) rather than reserves alone.
   */
  leadInMs?: number;
  /**
   * Told when the measured load starts (after the lead-in) and when it ends (its sagas settled,
   * before closing time): where a caller reads the CPU it charges to the load's sagas.
   */
  onWindow?: (edge: 'start' | 'end') => void;
  /**
   * From `bookReserved` seen to the patron at the desk (cancelling or picking up); 250 ms by
   * default, longer while reservation is seen to lag (its estimated lag, below).
   */
  pickupDelayMs?: number;
  /** From check-out to check-in; 250 ms by default. */
  loanMs?: number;
}

/** One kind of request: what was sent and what came back. */
export interface Answers {
  sent: number;
  /** Answers by HTTP status (`lost` for none). */
  byStatus: Record<string, number>;
  /**
   * Answers other than the expected one, by status and the problem's `code` when the body had one
   * (`409 ACTIVE_RESERVATION_EXISTS`), else by status alone (`500`, `lost`). Refusals are not
   * among them.
   */
  unexpected: Record<string, number>;
  /**
   * Refusals, by status and code (`503 BOOK_CIRCUIT_OPEN`): a 503 application/problem+json with a
   * Retry-After header and a code this request may be refused with on a loaded system (REFUSALS).
   * The system shedding load, not an error: the patron comes back after Retry-After. Also in
   * `byStatus` (as `503`).
   */
  refused: Record<string, number>;
  /** Latency of every answer, from when the operation should have been sent. */
  latencyMs: Percentiles;
}

/** The requests of an unmeasured phase (the lead-in, closing time): counted apart from the measured load's. */
export interface Unmeasured {
  durationMs: number;
  /** (Closing time reserves nothing.) */
  reserve: Answers;
  cancel: Answers;
  lookup: Answers;
  deferred: number;
  checkOut: Answers;
  checkIn: Answers;
  /** Reservations a refusal named (503 BOOK_SERVICE_UNAVAILABLE: stored `rejected`, and book releases any copy a lost answer took). */
  refusedReservations: number[];
}

export interface LoadResult {
  mode: LoadMode;
  /** The measured load's length (lead-in and closing time not included). */
  durationMs: number;
  /** The lead-in before the measured load. */
  leadIn: Unmeasured;
  /** POST /reservations (201 expected). */
  reserve: Answers;
  /** The patron's PATCH /reservations/{id} {"status":"bookCancel"} of a reservation awaiting pickup (202 expected). */
  cancel: Answers;
  /**
   * Staff's GET /reservations/{id} at the desk before a check-out (200 expected): the page stream
   * can say `bookReserved` (from assignment's event) before reservation has recorded it.
   */
  lookup: Answers;
  /** Look-ups that found the reservation not yet `bookReserved` in reservation's own record: the patron comes back later. */
  deferred: number;
  /**
   * How far reservation's own record was estimated to lag behind the page stream's `bookReserved`
   * at the end of the load, ms: pickups come no sooner (see runLoad).
   */
  reservationLagMs: number;
  /** Staff's PATCH {"status":"bookLoaned"} of a reservation the look-up found awaiting pickup (200 expected). */
  checkOut: Answers;
  /** Staff's PATCH {"status":"bookReturned"} of a loan (200 expected). */
  checkIn: Answers;
  /** Reservations a refusal of the measured load's POSTs named (see Unmeasured). */
  refusedReservations: number[];
  /** Open loop: arrivals not sent because `maxInFlight` operations were already waiting. */
  skipped: number;
  /**
   * Open loop: arrivals not sent because no patron had anything to do (each busy, or waiting for
   * its saga, its pickup time, its loan's end or a refusal's Retry-After). Closed loop: times a worker found none and paused 5 ms.
   */
  idle: number;
  /** Reservations answered 201 whose page reached `bookReserved`, and their 201 -> bookReserved latency. */
  sagas: { acknowledged: number; completed: number; latencyMs: Percentiles; perSecond: number };
  /** The most reservations the patrons had open at once during the load (each holds a copy): the copies in use. */
  peakOpen: number;
  /** Closing time: the desk finishing every cycle still open after the load. */
  closing: Unmeasured;
  /** What the patrons still had open after closing time (a saga not seen complete in `settleTimeoutMs`): each holds a copy. */
  openAtEnd: { placed: number; reserved: number; loaned: number };
}

/**
 * Operations the load sent: reserves, cancels, check-outs (each a desk look-up, and its PATCH when
 * the reservation awaits pickup) and check-ins. An open loop's arrival is one of these.
 */
export function operationsOf(load: Pick<LoadResult, 'reserve' | 'cancel' | 'lookup' | 'checkIn'>): number {
  return load.reserve.sent + load.cancel.sent + load.lookup.sent + load.checkIn.sent;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Reads the staff stream of pages and remembers when each reservation was first seen
 * `bookReserved` (and tells `onReserved`). `ready` resolves once the stream is open (watching has begun).
 */
function watchSagas(gateway: string, staff: Bearer, onReserved: (reservationId: number) => void) {
  const reservedAt = new Map<number, number>();
  const abort = new AbortController();
  let opened!: () => void;
  let failed!: (err: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => {
    opened = resolve;
    failed = reject;
  });
  const done = (async () => {
    const res = await fetch(`${gateway}/reservationPages/stream`, { headers: { ...staff, accept: 'text/event-stream' }, signal: abort.signal });
    if (!res.ok || !res.body) throw new Error(`the page stream answered ${res.status}`);
    opened();
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = message.split('\n').find((line) => line.startsWith('data: '));
        if (!data) continue;
        const page = JSON.parse(data.slice('data: '.length)) as { reservationId: number; status: string };
        if (page.status === 'bookReserved' && !reservedAt.has(page.reservationId)) {
          reservedAt.set(page.reservationId, performance.now());
          onReserved(page.reservationId);
        }
      }
    }
  })().catch((err: unknown) => {
    if (!abort.signal.aborted) failed(err);
  });
  return { reservedAt, ready, stop: async () => (abort.abort(), await done) };
}

type Kind = 'reserve' | 'cancel' | 'lookup' | 'checkOut' | 'checkIn';

/**
 * The codes each request may be refused with on a loaded system, 503 with Retry-After (ADR 0013):
 * POST /reservations when reservation's call to book timed out or its bulkhead was full
 * (`BOOK_SERVICE_UNAVAILABLE`: the reservation is stored `rejected`) or book's circuit is open
 * (`BOOK_CIRCUIT_OPEN`: nothing is stored; the load never retries a key, so no pending reservation
 * is named). No other request of the load calls book: a 503 there is unexpected.
 */
const REFUSALS: Partial<Record<Kind, ReadonlySet<string>>> = { reserve: new Set(['BOOK_SERVICE_UNAVAILABLE', 'BOOK_CIRCUIT_OPEN']) };

/** A Retry-After header's wait, ms (delay-seconds or an HTTP-date); undefined when absent or unreadable. */
function retryAfterMs(res: Response): number | undefined {
  const value = res.headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** The refusal `res` is, as `503 <code>` with its Retry-After, or undefined when it is not one `kind` may get (REFUSALS). */
function refusalOf(kind: Kind, res: Response, code: string | undefined): { key: string; retryAfterMs: number } | undefined {
  const wait = retryAfterMs(res);
  const problem = res.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase() === 'application/problem+json';
  if (res.status !== 503 || !problem || wait === undefined || code === undefined || !REFUSALS[kind]?.has(code)) return undefined;
  return { key: `503 ${code}`, retryAfterMs: wait };
}
type Operation = { kind: 'reserve'; who: number; bookId: number } | { kind: 'cancel' | 'checkOut' | 'checkIn'; who: number; reservation: OpenReservation; deferrals: number };
/** A reservation's next step at the desk, from `dueAt` on: pickup (cancel or check out) or check-in; `deferrals`: look-ups that found it not yet ready. */
type DeskTask = { reservation: OpenReservation; dueAt: number; deferrals: number };

/** Statuses of a reservation on its way to `bookReserved` (its copy held for it). */
const ON_ITS_WAY = new Set(['pending', 'bookWaiting', 'bookReserveReq']);
/** Look-ups of one pickup that found it not yet ready (about 30 s with the default delay) before the desk leaves it to the next load. */
const MAX_DEFERRALS = 10;

/** Runs the load, then waits (up to `settleTimeoutMs`) for the sagas of its 201s, and reports. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { patrons, staff } = options;
  const pickupDelayMs = options.pickupDelayMs ?? 250;
  const leadInMs = options.leadInMs ?? 0;
  /**
   * How far reservation's own record lags behind the page stream's `bookReserved`, estimated, ms
   * (at the closed-loop maximum, a second or two): pickups come no sooner, so that the desk's first
   * look-up mostly finds the reservation ready instead of looking again. A pickup found ready after
   * a deferral pulls it a fifth of the way towards the time it took; one found ready at the first
   * look-up, 5 % down. At most 5 s; each load starts from 0.
   */
  let lagMs = 0;
  const loanMs = options.loanMs ?? 250;
  /** The desk's queue: reservations awaiting pickup and loans, each due from its time on, oldest first. */
  const desk: DeskTask[] = [];
  const onReserved = (id: number) => {
    const r = patrons.open.get(id);
    if (r?.state !== 'placed') return;
    r.state = 'reserved';
    desk.push({ reservation: r, dueAt: performance.now() + Math.max(pickupDelayMs, lagMs), deferrals: 0 });
  };
  const watcher = watchSagas(options.gateway, staff, onReserved);
  await watcher.ready;

  // What earlier loads left open goes on: reservations awaiting pickup and loans are due now. A
  // reservation left `placed` (its saga not seen within that load's settling) may have completed
  // unseen by this stream: reservation is asked once.
  for (const r of [...patrons.open.values()]) {
    if (r.state === 'placed') {
      const res = await fetch(`${options.gateway}/reservations/${r.reservationId}`, { headers: staff }).catch(() => undefined);
      const body = res ? ((await res.json().catch(() => ({}))) as { status?: string }) : {};
      const status = res?.ok ? body.status : undefined;
      if (status === 'bookReserved') r.state = 'reserved';
      else if (status === 'bookLoaned') r.state = 'loaned';
      else if (status === undefined || !ON_ITS_WAY.has(status)) patrons.close(r);
    }
    if (r.state !== 'placed' && patrons.open.has(r.reservationId)) desk.push({ reservation: r, dueAt: 0, deferrals: 0 });
  }

  const newAnswers = () => ({ sent: 0, byStatus: {} as Record<string, number>, unexpected: {} as Record<string, number>, refused: {} as Record<string, number>, latency: [] as number[] });
  const newTally = () => ({
    answers: { reserve: newAnswers(), cancel: newAnswers(), lookup: newAnswers(), checkOut: newAnswers(), checkIn: newAnswers() } as Record<Kind, ReturnType<typeof newAnswers>>,
    deferred: 0,
    refusedReservations: [] as number[],
  });
  type Tally = ReturnType<typeof newTally>;
  const leadInTally = newTally();
  const measured = newTally();
  const closingTally = newTally();
  let closingTime = false;
  /** Where an operation starting now is counted (all its requests): the lead-in's, the measured load's, or closing time's. */
  const tallyAt = (at: number): Tally => (closingTime ? closingTally : at < measureFrom ? leadInTally : measured);
  const acknowledgedAt = new Map<number, number>();
  const busy = new Array<boolean>(patrons.size).fill(false);
  /** Per patron, when a refusal's Retry-After lets it reserve again (performance.now()). */
  const notBefore = new Array<number>(patrons.size).fill(0);
  let cursor = 0;
  let peakOpen = patrons.open.size;
  let skipped = 0;
  let idle = 0;
  let inFlight = 0;
  const count = (into: Record<string, number>, key: string) => (into[key] = (into[key] ?? 0) + 1);

  /**
   * The next operation: the desk's oldest due task of a patron not busy (a pickup: cancel or check
   * out; or a check-in), else a reservation by the next patron round the patrons that is not busy,
   * of a book it has nothing open of (one active reservation per patron per book). The patron is
   * then busy until the operation is done: one operation in flight per patron.
   */
  const next = (): Operation | undefined => {
    const now = performance.now();
    for (let i = 0; i < desk.length; i++) {
      const task = desk[i] as DeskTask;
      // At closing time the desk does not wait for a pickup or a loan's end, only for a deferred look-up's retry.
      if ((task.dueAt > now && !(closingTime && task.deferrals === 0)) || busy[task.reservation.who]) continue;
      desk.splice(i, 1);
      const r = task.reservation;
      busy[r.who] = true;
      if (r.state === 'loaned') return { kind: 'checkIn', who: r.who, reservation: r, deferrals: 0 };
      // A deferred pickup is the same patron coming back: it checks out, as it came to.
      return { kind: task.deferrals === 0 && Math.random() < options.cancelShare ? 'cancel' : 'checkOut', who: r.who, reservation: r, deferrals: task.deferrals };
    }
    if (closingTime) return undefined;
    for (let k = 0; k < patrons.size; k++) {
      const who = cursor;
      cursor = (cursor + 1) % patrons.size;
      if (busy[who] || (notBefore[who] as number) > now) continue;
      // A few draws for a book this patron has nothing open of (on the hot book: none while it has one).
      for (let draw = 0; draw < 4; draw++) {
        const bookId = options.pickBook();
        if (patrons.has(who, bookId)) continue;
        busy[who] = true;
        return { kind: 'reserve', who, bookId };
      }
    }
    return undefined;
  };

  /** Sends one request and counts its answer; resolves to the answer's status (undefined: lost), body and refusal (if it was one). */
  const request = async (tally: Tally, kind: Kind, scheduledAt: number, expected: number, url: string, init: RequestInit) => {
    const into = tally.answers[kind];
    into.sent++;
    const res = await fetch(url, init).catch(() => undefined);
    const answeredAt = performance.now();
    const status = res ? String(res.status) : 'lost';
    count(into.byStatus, status);
    if (res) into.latency.push(answeredAt - scheduledAt);
    const body = (res ? await res.json().catch(() => ({})) : {}) as { reservationId?: number; status?: string; code?: string };
    const code = typeof body.code === 'string' ? body.code : undefined;
    const refusal = res && res.status !== expected ? refusalOf(kind, res, code) : undefined;
    if (refusal) count(into.refused, refusal.key);
    else if (res?.status !== expected) count(into.unexpected, code !== undefined ? `${status} ${code}` : status);
    return { status: res?.status, body, answeredAt, refusal };
  };

  const patch = (tally: Tally, kind: 'cancel' | 'checkOut' | 'checkIn', r: OpenReservation, scheduledAt: number) => {
    const to = { cancel: ['bookCancel', 202], checkOut: ['bookLoaned', 200], checkIn: ['bookReturned', 200] } as const;
    const [status, expected] = to[kind];
    // The patron cancels; staff at the desk check out and in.
    const headers = { ...(kind === 'cancel' ? (patrons.headers[r.who] as Bearer) : staff), 'content-type': 'application/json' };
    return request(tally, kind, scheduledAt, expected, `${options.gateway}/reservations/${r.reservationId}`, { method: 'PATCH', headers, body: JSON.stringify({ status }) }).then((a) => a.status === expected);
  };

  /** Performs one operation; `scheduledAt`: when it should have been sent (open loop). */
  const perform = async (op: Operation, scheduledAt: number) => {
    const tally = tallyAt(scheduledAt);
    if (op.kind === 'reserve') {
      const { status, body, answeredAt, refusal } = await request(tally, 'reserve', scheduledAt, 201, `${options.gateway}/reservations`, {
        method: 'POST',
        headers: { ...(patrons.headers[op.who] as Bearer), 'content-type': 'application/json', 'idempotency-key': randomUUID() },
        body: JSON.stringify({ bookId: op.bookId }),
      });
      if (status === 201 && typeof body.reservationId === 'number') {
        // The measured load's sagas are its own 201s'.
        if (tally === measured) acknowledgedAt.set(body.reservationId, answeredAt);
        patrons.add({ reservationId: body.reservationId, bookId: op.bookId, who: op.who, state: 'placed' });
        peakOpen = Math.max(peakOpen, patrons.open.size);
        // The stream may announce the page before the 201 is read here.
        if (watcher.reservedAt.has(body.reservationId)) onReserved(body.reservationId);
      } else if (refusal) {
        // Refused (503 with Retry-After): the patron reserves again once Retry-After has passed.
        notBefore[op.who] = answeredAt + refusal.retryAfterMs;
        if (typeof body.reservationId === 'number') tally.refusedReservations.push(body.reservationId);
      }
      return;
    }
    const r = op.reservation;
    if (op.kind === 'checkOut') {
      // The desk looks the reservation up first: reservation records bookReserved when it consumes
      // assignment's event, which the page stream may have shown earlier.
      const looked = await request(tally, 'lookup', scheduledAt, 200, `${options.gateway}/reservations/${r.reservationId}`, { headers: staff });
      if (looked.status === 200 && looked.body.status !== undefined && ON_ITS_WAY.has(looked.body.status)) {
        tally.deferred++;
        const deferrals = op.deferrals + 1;
        // Back after 0.5, 1, 2, then every 4 s (with the default delay): at the maximum reservation can lag seconds behind.
        // Past MAX_DEFERRALS it stays open (reserved), off the desk: the next load looks again, and openAtEnd shows it.
        if (deferrals <= MAX_DEFERRALS) desk.push({ reservation: r, dueAt: performance.now() + Math.min(16 * pickupDelayMs, pickupDelayMs * 2 ** deferrals), deferrals });
        return;
      }
      if (looked.status !== 200 || looked.body.status !== 'bookReserved') {
        patrons.close(r); // gone (cancelled, expired...) or unknown: forget it
        return;
      }
      const seenAt = watcher.reservedAt.get(r.reservationId);
      if (op.deferrals === 0) lagMs *= 0.95;
      else if (seenAt !== undefined) lagMs = Math.min(5000, 0.8 * lagMs + 0.2 * (performance.now() - seenAt));
    }
    const done = await patch(tally, op.kind, r, scheduledAt);
    if (done && op.kind === 'checkOut') {
      r.state = 'loaned';
      desk.push({ reservation: r, dueAt: performance.now() + loanMs, deferrals: 0 });
    } else {
      // Cancelled or returned: no longer open. Otherwise its state is unknown: forget it (should it
      // still be active, the patron's next reservation of the book shows as a 409 in the report).
      patrons.close(r);
    }
  };

  const run = (op: Operation, scheduledAt: number) => perform(op, scheduledAt).finally(() => (busy[op.who] = false));

  const started = performance.now();
  const measureFrom = started + leadInMs;
  const deadline = measureFrom + options.durationMs;
  let windowStarted = false;
  const startWindow = () => {
    if (windowStarted) return;
    windowStarted = true;
    options.onWindow?.('start');
  };
  const windowTimer = setTimeout(startWindow, leadInMs);
  if (leadInMs === 0) startWindow();
  if (options.mode.kind === 'closed') {
    const { workers } = options.mode;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (performance.now() < deadline) {
          const op = next();
          if (op) await run(op, performance.now());
          else {
            if (performance.now() >= measureFrom) idle++;
            await sleep(5);
          }
        }
      }),
    );
  } else {
    const interval = 1000 / options.mode.perSecond;
    const maxInFlight = options.maxInFlight ?? 2000;
    const pending = new Set<Promise<void>>();
    for (let i = 0; ; i++) {
      const scheduledAt = started + i * interval;
      if (scheduledAt >= deadline) break;
      const wait = scheduledAt - performance.now();
      if (wait > 1) await sleep(wait);
      // Arrivals not sent are counted for the measured load only (the lead-in counts what it sent).
      if (inFlight >= maxInFlight) {
        if (scheduledAt >= measureFrom) skipped++;
        continue;
      }
      const op = next();
      if (!op) {
        if (scheduledAt >= measureFrom) idle++;
        continue;
      }
      inFlight++;
      const sent = run(op, scheduledAt).finally(() => {
        inFlight--;
        pending.delete(sent);
      });
      pending.add(sent);
    }
    await Promise.all(pending);
  }
  clearTimeout(windowTimer);
  startWindow(); // (long done: the load lasts longer than its lead-in)
  const loadMs = performance.now() - measureFrom;

  // The sagas of the 201s: wait until every one is seen bookReserved, or the time is up.
  const settleDeadline = performance.now() + options.settleTimeoutMs;
  const unfinished = () => [...acknowledgedAt.keys()].some((id) => !watcher.reservedAt.has(id));
  while (performance.now() < settleDeadline && unfinished()) await sleep(50);
  options.onWindow?.('end');

  // Closing time: the desk finishes every cycle still open (pickups, then check-ins), as many at
  // once as the closed loop's workers (16 after an open loop), counted apart. It also waits (up to
  // settleTimeoutMs) for the sagas of reservations still placed, the lead-in's among them, and
  // finishes their cycles too; one not seen bookReserved by then stays open (openAtEnd).
  closingTime = true;
  const closingStarted = performance.now();
  const closingSettleDeadline = closingStarted + options.settleTimeoutMs;
  const placedOpen = () => performance.now() < closingSettleDeadline && [...patrons.open.values()].some((r) => r.state === 'placed');
  let closingInFlight = 0;
  await Promise.all(
    Array.from({ length: options.mode.kind === 'closed' ? options.mode.workers : 16 }, async () => {
      while (desk.length > 0 || closingInFlight > 0 || placedOpen()) {
        const op = next();
        if (!op) {
          await sleep(desk.length > 0 || closingInFlight > 0 ? 5 : 50);
          continue;
        }
        closingInFlight++;
        await run(op, performance.now()).finally(() => closingInFlight--);
      }
    }),
  );
  const closingMs = performance.now() - closingStarted;
  await watcher.stop();

  const sagaLatency: number[] = [];
  let lastCompletion = measureFrom;
  for (const [id, acked] of acknowledgedAt) {
    const reserved = watcher.reservedAt.get(id);
    if (reserved === undefined) continue;
    // The stream may announce the page a moment before the 201 is read here: that is 0, not negative.
    sagaLatency.push(Math.max(0, reserved - acked));
    lastCompletion = Math.max(lastCompletion, reserved);
  }
  const report = (a: ReturnType<typeof newAnswers>): Answers => ({ sent: a.sent, byStatus: a.byStatus, unexpected: a.unexpected, refused: a.refused, latencyMs: percentiles(a.latency) });
  const unmeasured = (t: Tally, durationMs: number): Unmeasured => ({
    durationMs,
    reserve: report(t.answers.reserve),
    cancel: report(t.answers.cancel),
    lookup: report(t.answers.lookup),
    deferred: t.deferred,
    checkOut: report(t.answers.checkOut),
    checkIn: report(t.answers.checkIn),
    refusedReservations: t.refusedReservations,
  });
  return {
    mode: options.mode,
    durationMs: loadMs,
    leadIn: unmeasured(leadInTally, leadInMs),
    reserve: report(measured.answers.reserve),
    cancel: report(measured.answers.cancel),
    lookup: report(measured.answers.lookup),
    deferred: measured.deferred,
    reservationLagMs: lagMs,
    checkOut: report(measured.answers.checkOut),
    checkIn: report(measured.answers.checkIn),
    refusedReservations: measured.refusedReservations,
    skipped,
    idle,
    sagas: {
      acknowledged: acknowledgedAt.size,
      completed: sagaLatency.length,
      latencyMs: percentiles(sagaLatency),
      perSecond: sagaLatency.length / (Math.max(loadMs, lastCompletion - measureFrom) / 1000),
    },
    peakOpen,
    closing: unmeasured(closingTally, closingMs),
    openAtEnd: patrons.counts(),
  };
}
