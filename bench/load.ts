import { randomUUID } from 'node:crypto';

/**
 * The benchmark's load through the gateway (issue 9, item 2; the start of it): patrons reserve
 * (with an Idempotency-Key) and sometimes cancel, either **closed loop** (`workers` patrons' loops,
 * each waiting for its answer: the maximum the system sustains) or **open loop** (requests sent at
 * a fixed arrival rate whatever the answers: latency at a given load, with the time a request
 * waited to be sent counted in its latency, so a slow system cannot hide its queue).
 *
 * Saga completion is watched on one staff stream of customercenter's pages through the gateway
 * (`GET /reservationPages/stream`): a reservation's saga latency is from its 201 to the moment its
 * page said `bookReserved` there.
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

export interface LoadOptions {
  /** The gateway's base URL. */
  gateway: string;
  /** The patrons: a bearer header each (they must be allowed enough active reservations). */
  customers: readonly { authorization: string }[];
  /** A staff bearer header, for the stream of every page. */
  staff: { authorization: string };
  /** The book of the next reservation (a hot book, or one of many). */
  pickBook: () => number;
  /** Share of operations that cancel one of the patron's reserved reservations (0 to 1). */
  cancelShare: number;
  mode: LoadMode;
  durationMs: number;
  /** How long to wait after the load for the sagas of its 201s to complete. */
  settleTimeoutMs: number;
  /** Open loop: requests in flight beyond which the generator stops sending (and counts `skipped`). */
  maxInFlight?: number;
}

export interface LoadResult {
  mode: LoadMode;
  durationMs: number;
  /** POST /reservations: answers by status (`lost` for none), and latency of every answer. */
  reserve: { sent: number; byStatus: Record<string, number>; latencyMs: Percentiles };
  /** PATCH /reservations/{id} to cancel: answers by status. */
  cancel: { sent: number; byStatus: Record<string, number> };
  /** Open loop: arrivals not sent because `maxInFlight` requests were already waiting. */
  skipped: number;
  /** Reservations answered 201 whose page reached `bookReserved`, and their 201 -> bookReserved latency. */
  sagas: { acknowledged: number; completed: number; latencyMs: Percentiles; perSecond: number };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Reads the staff stream of pages and remembers when each reservation was first seen
 * `bookReserved`. `ready` resolves once the stream is open (watching has begun).
 */
function watchSagas(gateway: string, staff: { authorization: string }) {
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
        if (page.status === 'bookReserved' && !reservedAt.has(page.reservationId)) reservedAt.set(page.reservationId, performance.now());
      }
    }
  })().catch((err: unknown) => {
    if (!abort.signal.aborted) failed(err);
  });
  return { reservedAt, ready, stop: async () => (abort.abort(), await done) };
}

/** Runs the load, then waits (up to `settleTimeoutMs`) for the sagas of its 201s, and reports. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const watcher = watchSagas(options.gateway, options.staff);
  await watcher.ready;

  const reserveLatency: number[] = [];
  const reserveStatus: Record<string, number> = {};
  const cancelStatus: Record<string, number> = {};
  const acknowledgedAt = new Map<number, number>();
  const reservedBy = options.customers.map(() => [] as number[]);
  let reserveSent = 0;
  let cancelSent = 0;
  let skipped = 0;
  let inFlight = 0;
  const count = (into: Record<string, number>, key: string) => (into[key] = (into[key] ?? 0) + 1);

  /** One operation for patron `who`; `scheduledAt`: when it should have been sent (open loop). */
  const operate = async (who: number, scheduledAt: number) => {
    const customer = options.customers[who] as { authorization: string };
    const mine = reservedBy[who] as number[];
    // Only a reservation whose saga completed is cancelled: each 201 is then watched to bookReserved.
    const done = mine.filter((id) => watcher.reservedAt.has(id));
    if (done.length > 0 && Math.random() < options.cancelShare) {
      const id = done[Math.floor(Math.random() * done.length)] as number;
      mine.splice(mine.indexOf(id), 1);
      cancelSent++;
      const res = await fetch(`${options.gateway}/reservations/${id}`, {
        method: 'PATCH',
        headers: { ...customer, 'content-type': 'application/json' },
        body: JSON.stringify({ status: 'bookCancel' }),
      }).catch(() => undefined);
      count(cancelStatus, res ? String(res.status) : 'lost');
      await res?.arrayBuffer();
      return;
    }
    reserveSent++;
    const res = await fetch(`${options.gateway}/reservations`, {
      method: 'POST',
      headers: { ...customer, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
      body: JSON.stringify({ bookId: options.pickBook() }),
    }).catch(() => undefined);
    const answeredAt = performance.now();
    count(reserveStatus, res ? String(res.status) : 'lost');
    if (!res) return;
    reserveLatency.push(answeredAt - scheduledAt);
    const body = (await res.json().catch(() => ({}))) as { reservationId?: number };
    if (res.status === 201 && typeof body.reservationId === 'number') {
      acknowledgedAt.set(body.reservationId, answeredAt);
      mine.push(body.reservationId);
    }
  };

  const started = performance.now();
  const deadline = started + options.durationMs;
  if (options.mode.kind === 'closed') {
    const { workers } = options.mode;
    await Promise.all(
      Array.from({ length: workers }, async (_, worker) => {
        for (let i = 0; performance.now() < deadline; i++) {
          await operate((worker + i * workers) % options.customers.length, performance.now());
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
      if (inFlight >= maxInFlight) {
        skipped++;
        continue;
      }
      inFlight++;
      const op = operate(i % options.customers.length, scheduledAt).finally(() => {
        inFlight--;
        pending.delete(op);
      });
      pending.add(op);
    }
    await Promise.all(pending);
  }
  const loadMs = performance.now() - started;

  // The sagas of the 201s: wait until every one is seen bookReserved, or the time is up.
  const settleDeadline = performance.now() + options.settleTimeoutMs;
  const unfinished = () => [...acknowledgedAt.keys()].some((id) => !watcher.reservedAt.has(id));
  while (performance.now() < settleDeadline && unfinished()) await sleep(50);
  await watcher.stop();

  const sagaLatency: number[] = [];
  let lastCompletion = started;
  for (const [id, acked] of acknowledgedAt) {
    const reserved = watcher.reservedAt.get(id);
    if (reserved === undefined) continue;
    // The stream may announce the page a moment before the 201 is read here: that is 0, not negative.
    sagaLatency.push(Math.max(0, reserved - acked));
    lastCompletion = Math.max(lastCompletion, reserved);
  }
  return {
    mode: options.mode,
    durationMs: loadMs,
    reserve: { sent: reserveSent, byStatus: reserveStatus, latencyMs: percentiles(reserveLatency) },
    cancel: { sent: cancelSent, byStatus: cancelStatus },
    skipped,
    sagas: {
      acknowledged: acknowledgedAt.size,
      completed: sagaLatency.length,
      latencyMs: percentiles(sagaLatency),
      perSecond: sagaLatency.length / (Math.max(loadMs, lastCompletion - started) / 1000),
    },
  };
}
