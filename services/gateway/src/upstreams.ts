import type { FastifyReply } from 'fastify';
import type { FastifyReplyFromHooks } from '@fastify/reply-from';
import { HttpProblem, REPLICA_STATE_HEADER } from '@bstore/platform/http';
import { tagCorrelation, withTraceHeaders } from '@bstore/platform/observability';

export type Upstream = 'reservation' | 'assignment' | 'book' | 'customercenter' | 'notification';

/** An error and its causes, outermost first (reply-from and fetch wrap the socket's error). */
function* causesOf(err: unknown): Generator<{ code?: unknown; syscall?: unknown }> {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    yield e;
    e = (e as { cause?: unknown }).cause;
  }
}

/** The first error code in the chain that is not one of Fastify's own wrappers. */
function codeOf(err: unknown): string | undefined {
  for (const { code } of causesOf(err)) if (typeof code === 'string' && !code.startsWith('FST_')) return code;
  return undefined;
}

function isTimeout(err: unknown): boolean {
  const code = codeOf(err);
  const statusCode = (err as { statusCode?: unknown }).statusCode;
  return statusCode === 504 || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}

/**
 * What the client is told when an upstream is down (503: nothing reached it, so a retry is safe),
 * slow (504), or broken (502: the connection broke after the request was sent, or the answer was
 * invalid; the request may have been carried out, which an Idempotency-Key makes safe to retry).
 */
export function upstreamProblem(upstream: Upstream, error: unknown): HttpProblem {
  if (isTimeout(error)) {
    return new HttpProblem(504, 'UPSTREAM_TIMEOUT', `the ${upstream} service did not answer in time`, { extensions: { service: upstream } });
  }
  if (isConnectFailure(error) || (error as { statusCode?: unknown }).statusCode === 503) {
    return new HttpProblem(503, 'UPSTREAM_UNAVAILABLE', `the ${upstream} service is unavailable`, {
      extensions: { service: upstream },
      headers: { 'retry-after': '5' },
    });
  }
  if (BROKEN.has(codeOf(error) ?? '')) {
    return new HttpProblem(502, 'BAD_GATEWAY', `the connection to the ${upstream} service broke before it answered; the request may have been carried out`, {
      extensions: { service: upstream },
    });
  }
  return new HttpProblem(502, 'BAD_GATEWAY', `the ${upstream} service gave an invalid answer`, { extensions: { service: upstream } });
}

/** A connection that broke after the request was sent. */
const BROKEN = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']);

/**
 * The headers passed to a service: the client's, with the gateway's request id and the trace
 * context of the gateway's span (a client's own `traceparent` is its parent, not passed on as
 * is), and without `expect` (a `100-continue` was for this hop, and Node has answered it; undici
 * refuses to send it on, which made such a request a 502).
 */
export function upstreamHeaders<T extends Record<string, unknown>>(headers: T, requestId: string): Omit<T, 'expect'> & { 'x-request-id': string } {
  const { expect: _expect, ...rest } = headers;
  return withTraceHeaders({ ...rest, 'x-request-id': requestId });
}

/** The reservation a public path or a `Location` names (`/reservations/42`, `/reservationPages/42/...`). */
const RESERVATION_PATH = /^\/(?:reservations|reservationPages)\/([1-9]\d{0,14})(?:[/?]|$)/;

/** Tags the current request's span and log lines with the reservation `path` names, if any. */
export function tagReservationOf(path: unknown): void {
  const match = typeof path === 'string' ? RESERVATION_PATH.exec(path) : null;
  if (match?.[1]) tagCorrelation(Number(match[1]));
}

/** Errors only a connection that could not be made gives: nothing was sent. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);
/** Errors that mean nothing was sent only when they came from the connect itself (not a later write). */
const NEVER_SENT_AT_CONNECT = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);

/**
 * The request could not even connect, so nothing reached the replica: another replica may take it,
 * whatever its method. A reset or a broken socket after the request was written is not one of
 * these (the replica may have acted on it).
 */
export function isConnectFailure(error: unknown): boolean {
  for (const { code, syscall } of causesOf(error)) {
    if (typeof code !== 'string') continue;
    if (NEVER_SENT.has(code) || (NEVER_SENT_AT_CONNECT.has(code) && syscall === 'connect')) return true;
  }
  return false;
}

/** What a replica that is still starting answers with (it did nothing): the request may go to another. */
function startingReplica(url: string): Error {
  return Object.assign(new Error(`the replica ${url} is starting (not ready)`), { statusCode: 503 });
}

/**
 * The replicas of one upstream service and the turn among them. Each request goes to the next
 * replica in turn (round robin). A replica that refused a connection, or answered from its waiting
 * room (not ready yet), is passed over and the request goes to the next (passive health checking:
 * no probes of its own): for `downForMs` after its first such failure, twice as long after each
 * further one in a row (up to a minute), until it answers again. When every replica is passed over,
 * all are tried again rather than none. With one URL (a Kubernetes Service, which balances by
 * itself) it is simply that URL.
 */
export class UpstreamPool {
  readonly name: Upstream;
  readonly urls: readonly string[];
  readonly #downForMs: number;
  readonly #maxDownForMs: number;
  readonly #downUntil: number[];
  readonly #failures: number[];
  #turn = 0;

  constructor(name: Upstream, urls: string | readonly string[], options: { downForMs?: number; maxDownForMs?: number } = {}) {
    const list = [...new Set((typeof urls === 'string' ? [urls] : [...urls]).map((url) => url.replace(/\/+$/, '')))];
    if (list.length === 0) throw new Error(`the ${name} upstream needs at least one URL`);
    this.name = name;
    this.urls = list;
    this.#downForMs = options.downForMs ?? 5000;
    this.#maxDownForMs = options.maxDownForMs ?? 60_000;
    this.#downUntil = list.map(() => 0);
    this.#failures = list.map(() => 0);
  }

  /** The next replica in turn that is not passed over and not in `tried`; undefined when none is left. */
  pick(tried: ReadonlySet<string> = new Set()): string | undefined {
    const now = Date.now();
    let fallback: string | undefined;
    for (let step = 0; step < this.urls.length; step++) {
      const index = (this.#turn + step) % this.urls.length;
      const url = this.urls[index] as string;
      if (tried.has(url)) continue;
      if ((this.#downUntil[index] ?? 0) <= now) {
        this.#turn = index + 1;
        return url;
      }
      fallback ??= url;
    }
    return fallback;
  }

  /** Passes over `url` for a while (it refused a connection, or is starting); longer each time in a row. */
  markDown(url: string): void {
    const index = this.urls.indexOf(url);
    if (index < 0) return;
    const failures = (this.#failures[index] ?? 0) + 1;
    this.#failures[index] = failures;
    this.#downUntil[index] = Date.now() + Math.min(this.#downForMs * 2 ** (failures - 1), this.#maxDownForMs);
  }

  /** `url` answered: it takes its turns again. */
  markUp(url: string): void {
    const index = this.urls.indexOf(url);
    if (index < 0 || this.#failures[index] === 0) return;
    this.#failures[index] = 0;
    this.#downUntil[index] = 0;
  }

  /**
   * Runs `call` on a replica, and on the next ones while the failure is a connection that could not
   * be made, or the answer (`starting`) says the replica is not ready yet: nothing reached a service,
   * so nothing can have happened twice. Any other failure, or the last replica's, is thrown.
   */
  async attempt<T>(call: (url: string) => Promise<T>, starting: (answer: T) => boolean = () => false): Promise<T> {
    const tried = new Set<string>();
    for (let url = this.pick(); url !== undefined; url = this.pick(tried)) {
      tried.add(url);
      const last = tried.size >= this.urls.length;
      let answer: T;
      try {
        answer = await call(url);
      } catch (err) {
        if (!isConnectFailure(err) || last) throw err;
        this.markDown(url);
        continue;
      }
      if (!starting(answer)) {
        this.markUp(url);
        return answer;
      }
      this.markDown(url);
      if (last) return answer;
    }
    throw new Error(`the ${this.name} upstream has no replica`);
  }
}

export type UpstreamPools = Record<Upstream, UpstreamPool>;

/** Whether a fetch answer came from a replica's waiting room (it did nothing). */
export function fromStartingReplica(res: Response): boolean {
  return res.status === 503 && res.headers.get(REPLICA_STATE_HEADER) === 'starting';
}

/**
 * Proxies the request to `path` on a replica of `pool` (reply-from), and to the next replica when
 * one refused the connection or answered from its waiting room; any other failure, or when no
 * replica is left, goes to `onFailure`. reply-from's own retries are off: they would go to the
 * same replica.
 */
export function fromReplica(
  reply: FastifyReply,
  pool: UpstreamPool,
  path: string,
  options: Omit<FastifyReplyFromHooks, 'onError' | 'onResponse' | 'retryDelay'>,
  onFailure: (reply: FastifyReply, error: unknown) => void,
): FastifyReply {
  const tried = new Set<string>();
  const send = (target: FastifyReply, base: string): FastifyReply => {
    tried.add(base);
    let starting = false;
    return target.from(`${base}${path}`, {
      ...options,
      retryDelay: () => null,
      rewriteHeaders: (headers, request) => {
        starting = headers[REPLICA_STATE_HEADER] === 'starting';
        // A waiting room's answer is not passed on (the request goes elsewhere): none of its headers.
        if (starting) return {};
        return options.rewriteHeaders ? options.rewriteHeaders(headers, request) : headers;
      },
      onResponse: (_request, r, res) => {
        if (!starting) {
          pool.markUp(base);
          r.send(res.stream);
          return;
        }
        res.stream.resume();
        pool.markDown(base);
        const next = pool.pick(tried);
        if (next !== undefined && !r.sent) {
          r.request.log.warn({ upstream: pool.name }, 'an upstream replica is starting (not ready); trying the next');
          send(r as FastifyReply, next);
          return;
        }
        onFailure(r as FastifyReply, startingReplica(base));
      },
      onError: (r, { error }) => {
        const next = isConnectFailure(error) ? (pool.markDown(base), pool.pick(tried)) : undefined;
        if (next !== undefined && !r.sent) {
          r.request.log.warn({ err: error, upstream: pool.name }, 'an upstream replica refused the connection; trying the next');
          send(r as FastifyReply, next);
          return;
        }
        onFailure(r as FastifyReply, error);
      },
    });
  };
  return send(reply, pool.pick() as string);
}

/** One pool per upstream, from a URL or a list of replica URLs each. */
export function upstreamPools(upstreams: Record<Upstream, string | readonly string[]>): UpstreamPools {
  const entries = (Object.entries(upstreams) as [Upstream, string | readonly string[]][]).map(([name, urls]) => [name, new UpstreamPool(name, urls)] as const);
  return Object.fromEntries(entries) as UpstreamPools;
}
