import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpProblem, requestContext, type Clock } from '@bstore/platform';
import type { IdempotencyClaim } from '../../application/ports.ts';

/** Whose key it is: keys are per customer, so two patrons never see each other's answers. */
export interface IdempotencyScope {
  customerId: string;
  key: string;
}

/** The first answer, exactly as it was sent. */
export interface StoredResponse {
  status: number;
  contentType: string;
  body: string;
}

export type IdempotencyBegin =
  /** This request now owns the key; `claim.reservationId` names the reservation an earlier request with it created. */
  | { kind: 'started'; claim: IdempotencyClaim }
  | { kind: 'replay'; response: StoredResponse }
  /** The key was used with a different request body. */
  | { kind: 'mismatch' }
  /** The first request with this key is still running. */
  | { kind: 'inProgress' };

/** Where keys and first answers are kept (reservation's database). */
export interface IdempotencyStore {
  begin(scope: IdempotencyScope, fingerprint: string, now: Date): Promise<IdempotencyBegin>;
  /** Stores the final answer, if `claim` still owns the key. */
  complete(claim: IdempotencyClaim, response: StoredResponse): Promise<void>;
  /**
   * Frees a key whose request got no final answer (a 5xx, a refusal of the moment), if `claim` still
   * owns it, so a retry runs again; the reservation the key created stays named.
   */
  release(claim: IdempotencyClaim, now: Date): Promise<void>;
  /** Deletes up to `limit` expired keys; returns how many. */
  prune(now: Date, limit: number): Promise<number>;
}

export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;

/**
 * The Idempotency-Key header's value, or undefined when absent. The draft makes it a structured
 * field string ("..."); a bare token is accepted too. Empty, too long, or not printable ASCII: 400.
 */
export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) throw new HttpProblem(400, 'IDEMPOTENCY_KEY_INVALID', 'send one Idempotency-Key header, not several');
  const quoted = header.length >= 2 && header.startsWith('"') && header.endsWith('"');
  const key = quoted ? header.slice(1, -1).replace(/\\(["\\])/g, '$1') : header.trim();
  if (key.length === 0) throw new HttpProblem(400, 'IDEMPOTENCY_KEY_INVALID', 'the Idempotency-Key header is empty');
  if (key.length > IDEMPOTENCY_KEY_MAX_LENGTH) {
    throw new HttpProblem(400, 'IDEMPOTENCY_KEY_INVALID', `the Idempotency-Key is longer than ${IDEMPOTENCY_KEY_MAX_LENGTH} characters`);
  }
  if (!/^[\x20-\x7e]+$/.test(key)) throw new HttpProblem(400, 'IDEMPOTENCY_KEY_INVALID', 'the Idempotency-Key must be printable ASCII');
  return key;
}

/** JSON with object keys sorted, so equal bodies give equal fingerprints whatever their key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function fingerprintOf(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${canonicalJson(body ?? null)}`).digest('hex');
}

export interface IdempotencyHookOptions {
  /**
   * Problem codes of 4xx answers that depend on the moment (the limit of active reservations): like
   * a 5xx they are not stored as the key's final answer, so a retry with the key tries again.
   */
  transientCodes?: readonly string[];
}

/** The problem code of a 4xx answer's body, read only when it may be a transient one. */
function problemCodeOf(payload: unknown): string | undefined {
  if (typeof payload !== 'string') return undefined;
  try {
    const body = JSON.parse(payload) as { code?: unknown };
    return typeof body.code === 'string' ? body.code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The body an onSend hook sees, as text. Fastify has serialized it by then: a string (JSON), a
 * Buffer, or nothing for an empty answer. These routes never stream, so nothing else is stored.
 */
function sentText(payload: unknown): string {
  if (typeof payload === 'string') return payload;
  if (Buffer.isBuffer(payload)) return payload.toString('utf8');
  return '';
}

/**
 * Idempotency-Key for one route (IETF httpapi idempotency-key draft): the first final answer —
 * status and body — is stored per customer and key and replayed for a retry; the same key with
 * another body is 422; while the first request still runs, 409. A 5xx or a refusal of the moment
 * is not stored: the key is released, so a retry after `Retry-After` really tries again. The handler
 * reads the request's claim (`claimOf`) to answer a retry from the reservation the key already
 * created (ADR 0015). Without the header the route behaves as before.
 *
 * @example
 * const idempotency = idempotencyHooks(store, clock, { transientCodes: ['TOO_MANY_ACTIVE_RESERVATIONS'] });
 * app.post('/reservations', { preHandler: idempotency.preHandler, onSend: idempotency.onSend, ... }, handler);
 */
export function idempotencyHooks(store: IdempotencyStore, clock: Clock, options: IdempotencyHookOptions = {}) {
  const claimed = new WeakMap<FastifyRequest, IdempotencyClaim>();
  const transientCodes = new Set(options.transientCodes ?? []);
  const isFinal = (status: number, payload: unknown) =>
    status < 500 && !(status >= 400 && transientCodes.size > 0 && transientCodes.has(problemCodeOf(payload) ?? ''));

  const preHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    const key = parseIdempotencyKey(request.headers['idempotency-key']);
    if (key === undefined) return;
    const scope = { customerId: requestContext(request).customerId, key };
    const path = request.routeOptions.url ?? request.url;
    const begun = await store.begin(scope, fingerprintOf(request.method, path, request.body), clock.now());
    switch (begun.kind) {
      case 'started':
        claimed.set(request, begun.claim);
        return;
      case 'replay':
        return reply.status(begun.response.status).header('idempotent-replayed', 'true').type(begun.response.contentType).send(begun.response.body);
      case 'mismatch':
        throw new HttpProblem(422, 'IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was already used with a different request body; use a new key for a new request');
      case 'inProgress':
        throw new HttpProblem(409, 'IDEMPOTENCY_KEY_IN_USE', 'a request with this Idempotency-Key is still being processed; retry shortly', {
          headers: { 'retry-after': '1' },
        });
    }
  };

  const onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const claim = claimed.get(request);
    if (!claim) return payload;
    claimed.delete(request);
    try {
      if (!isFinal(reply.statusCode, payload)) await store.release(claim, clock.now());
      else {
        const contentType = String(reply.getHeader('content-type') ?? 'application/json');
        await store.complete(claim, { status: reply.statusCode, contentType, body: sentText(payload) });
      }
    } catch (err) {
      // The answer still goes out; a retry with this key then waits for the lock to expire.
      request.log.error({ err }, 'could not record the idempotent answer');
    }
    return payload;
  };

  /** The request's claim on its key, when it sent one: what the handler passes to the use case. */
  const claimOf = (request: FastifyRequest): IdempotencyClaim | undefined => claimed.get(request);

  return { preHandler, onSend, claimOf };
}
