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
