import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Identity, Role } from '../auth/identity.ts';
import { InvalidTokenError, TokenKeysUnavailableError } from '../auth/tokens.ts';
import type { ServiceAuth } from '../auth/service-auth.ts';
import { HttpProblem } from './problem.ts';

export type RequestContext = Identity;

/** Route config of a service-to-service route: only an internal token is accepted there. */
export const INTERNAL_ROUTE = { auth: 'internal' } as const;

const GUARD = Symbol('bstore.guard');

const identities = new WeakMap<FastifyRequest, Identity>();
const internalCallers = new WeakMap<FastifyRequest, string>();

const CHALLENGE = 'Bearer realm="bstore"';

function unauthorized(detail: string, error?: 'invalid_token' | 'invalid_request'): HttpProblem {
  const challenge = error ? `${CHALLENGE}, error="${error}", error_description="${detail.replace(/"/g, "'")}"` : CHALLENGE;
  return new HttpProblem(401, error ? 'INVALID_TOKEN' : 'UNAUTHENTICATED', detail, { headers: { 'www-authenticate': challenge } });
}

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header);
  if (!match) throw unauthorized('the Authorization header must be "Bearer <token>"', 'invalid_request');
  return match[1];
}

/**
 * Verifies the caller's bearer token, if there is one, before anything else runs: a bad token is a
 * 401 problem+json (RFC 6750 challenge), a good one becomes the request's identity. A request
 * without a token goes on anonymous; the routes that need an identity refuse it (requireRole,
 * requireIdentity, requestContext). Routes with `config: INTERNAL_ROUTE` take only a
 * service-to-service token instead.
 *
 * @example
 * registerAuthentication(app, auth); // once, on the instance, before the routes
 */
export function registerAuthentication(app: FastifyInstance, auth: ServiceAuth): void {
  app.addHook('onRequest', async (request) => {
    const internal = (request.routeOptions.config as { auth?: string } | undefined)?.auth === 'internal';
    const token = bearerToken(request);
    if (internal) {
      if (token === undefined) throw unauthorized('this route is for bstore services only');
      try {
        internalCallers.set(request, await auth.internal.verify(token));
      } catch {
        throw unauthorized('the service token is not valid', 'invalid_token');
      }
      return;
    }
    if (token === undefined) return;
    try {
      identities.set(request, await auth.verifier.verify(token));
    } catch (err) {
      if (err instanceof InvalidTokenError) throw unauthorized(err.message, 'invalid_token');
      if (err instanceof TokenKeysUnavailableError) {
        request.log.warn({ err }, 'cannot verify tokens: the identity provider\'s keys are unavailable');
        throw new HttpProblem(503, 'IDENTITY_PROVIDER_UNAVAILABLE', 'tokens cannot be checked right now; retry shortly', { headers: { 'retry-after': '5' } });
      }
      throw err;
    }
  });
}

/**
 * Who is calling: the identity of the verified bearer token (see docs/security.md). Throws 401
 * problem+json when the request has none. This is the one place a route reads identity.
 *
 * @example
 * const { customerId, role } = requestContext(request);
 */
export function requestContext(request: FastifyRequest): RequestContext {
  const identity = identities.get(request);
  if (!identity) throw unauthorized('sign in first: this needs a bearer token (POST /auth/token)');
  return identity;
}

/**
 * Refuses the request unless the caller has the role: 401 when anonymous, 403 otherwise. A route
 * `onRequest` hook, so it answers before the body is read or validated.
 *
 * @example
 * app.post('/books', { onRequest: requireRole('staff') }, handler);
 */
export function requireRole(role: Role) {
  const guard = async (request: FastifyRequest): Promise<void> => {
    if (requestContext(request).role !== role) {
      throw new HttpProblem(403, 'FORBIDDEN', `only ${role} may do this`);
    }
  };
  return Object.assign(guard, { [GUARD]: role });
}

/**
 * Refuses an anonymous request (401) before its body or query is read: for routes that are the
 * caller's own (their reservations, their pages).
 *
 * @example
 * app.get('/reservations', { onRequest: requireIdentity }, handler);
 */
export const requireIdentity = Object.assign(
  async (request: FastifyRequest): Promise<void> => {
    requestContext(request);
  },
  { [GUARD]: 'any' as const },
);

/**
 * Who a route's `onRequest` hooks let in: a role, `any` signed-in caller, or undefined when the
 * route has no guard (public). The API documents read it to mark operations that need a token.
 */
export function guardOf(onRequest: unknown): Role | 'any' | undefined {
  const hooks = Array.isArray(onRequest) ? onRequest : [onRequest];
  for (const hook of hooks) {
    const marked = (hook as { [GUARD]?: Role | 'any' } | undefined)?.[GUARD];
    if (marked) return marked;
  }
  return undefined;
}
