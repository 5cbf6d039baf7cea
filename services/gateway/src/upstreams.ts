import type { FastifyReply } from 'fastify';
import type { FastifyReplyFromHooks } from '@fastify/reply-from';
import { HttpProblem, tagReservation, withTraceHeaders } from '@bstore/platform';

export type Upstream = 'reservation' | 'assignment' | 'book' | 'customercenter';

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNRESET', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

function codeOf(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && !code.startsWith('FST_')) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function isTimeout(err: unknown): boolean {
  const code = codeOf(err);
  const statusCode = (err as { statusCode?: unknown }).statusCode;
  return statusCode === 504 || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}

/** What the client is told when an upstream is down (503), slow (504) or broken (502). */
export function upstreamProblem(upstream: Upstream, error: unknown): HttpProblem {
  if (isTimeout(error)) {
    return new HttpProblem(504, 'UPSTREAM_TIMEOUT', `the ${upstream} service did not answer in time`, { extensions: { service: upstream } });
  }
  if (UNREACHABLE.has(codeOf(error) ?? '') || (error as { statusCode?: unknown }).statusCode === 503) {
    return new HttpProblem(503, 'UPSTREAM_UNAVAILABLE', `the ${upstream} service is unavailable`, {
      extensions: { service: upstream },
      headers: { 'retry-after': '5' },
    });
  }
  return new HttpProblem(502, 'BAD_GATEWAY', `the ${upstream} service gave an invalid answer`, { extensions: { service: upstream } });
}


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
  if (match?.[1]) tagReservation(Number(match[1]));
}

/** Errors that mean the request never reached the replica: it is safe to send it to another. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

/** The request could not even connect (nothing was sent): another replica may take it, whatever its method. */
export function isConnectFailure(error: unknown): boolean {
  return NOT_CONNECTED.has(codeOf(error) ?? '');
}

/**
 * The replicas of one upstream service and the turn among them. Each request goes to the next
 * replica in turn (round robin); a replica that refused a connection is passed over for
 * `downForMs` and the request goes to the next (passive health checking: no probes of its own).
 * When every replica is marked down, all are tried again rather than none. With one URL (a
 * Kubernetes Service, which balances by itself) it is simply that URL.
 */
export class UpstreamPool {
  readonly name: Upstream;
  readonly urls: readonly string[];
  readonly #downForMs: number;
  readonly #downUntil: number[];
  #turn = 0;

  constructor(name: Upstream, urls: string | readonly string[], options: { downForMs?: number } = {}) {
    const list = (typeof urls === 'string' ? [urls] : [...urls]).map((url) => url.replace(/\/+$/, ''));
    if (list.length === 0) throw new Error(`the ${name} upstream needs at least one URL`);
    this.name = name;
    this.urls = list;
    this.#downForMs = options.downForMs ?? 5000;
    this.#downUntil = list.map(() => 0);
  }

  /** The next replica in turn that is not marked down and not in `tried`; undefined when none is left. */
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

  /** Passes over `url` for a while (it refused a connection). */
  markDown(url: string): void {
    const index = this.urls.indexOf(url);
    if (index >= 0) this.#downUntil[index] = Date.now() + this.#downForMs;
  }

  /**
   * Runs `call` on a replica, and on the next ones while the failure is a connection that could not
   * be made (nothing reached the replica, so nothing can have happened twice); any other failure,
   * or the last replica's, is thrown.
   */
  async attempt<T>(call: (url: string) => Promise<T>): Promise<T> {
    const tried = new Set<string>();
    for (;;) {
      const url = this.pick(tried) as string;
      tried.add(url);
      try {
        return await call(url);
      } catch (err) {
        if (!isConnectFailure(err) || tried.size >= this.urls.length) throw err;
        this.markDown(url);
      }
    }
  }
}

export type UpstreamPools = Record<Upstream, UpstreamPool>;

/**
 * Proxies the request to `path` on a replica of `pool` (reply-from), and to the next replica when
 * one refused the connection; any other failure, or when no replica is left, goes to `onFailure`.
 */
export function fromReplica(
  reply: FastifyReply,
  pool: UpstreamPool,
  path: string,
  options: Omit<FastifyReplyFromHooks, 'onError'>,
  onFailure: (reply: FastifyReply, error: unknown) => void,
): FastifyReply {
  const tried = new Set<string>();
  const send = (target: FastifyReply, base: string): FastifyReply => {
    tried.add(base);
    return target.from(`${base}${path}`, {
      ...options,
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
