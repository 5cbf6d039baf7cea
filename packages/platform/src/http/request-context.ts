import type { FastifyRequest } from 'fastify';
import { HttpProblem } from './problem.ts';

export type Role = 'customer' | 'staff';

export interface RequestContext {
  readonly customerId: string;
  readonly role: Role;
}

/** The demo customer used when a request names none (embedded mode, until authentication). */
export const DEMO_CUSTOMER_ID = 'alice';

const CUSTOMER_ID = /^[A-Za-z0-9._@-]{1,64}$/;

/**
 * Who is calling. This is the one place identity is read: today from the `X-Customer-Id` and
 * `X-Role` headers (an identity placeholder, see docs/adr/0006-identity-placeholder.md); the
 * authentication issue makes it read a verified token instead, and no caller changes.
 *
 * @example
 * const { customerId, role } = requestContext(request);
 */
export function requestContext(request: FastifyRequest): RequestContext {
  const rawId = request.headers['x-customer-id'];
  const customerId = typeof rawId === 'string' && rawId.length > 0 ? rawId : DEMO_CUSTOMER_ID;
  if (!CUSTOMER_ID.test(customerId)) {
    throw new HttpProblem(400, 'INVALID_CUSTOMER_ID', 'X-Customer-Id must be 1 to 64 letters, digits or . _ @ -');
  }
  const rawRole = request.headers['x-role'];
  const role = rawRole === undefined || rawRole === '' ? 'customer' : rawRole;
  if (role !== 'customer' && role !== 'staff') {
    throw new HttpProblem(400, 'INVALID_ROLE', 'X-Role must be customer or staff');
  }
  return { customerId, role };
}

/**
 * Refuses the request unless the caller has the role: 403 problem+json.
 *
 * @example
 * app.post('/books', { preHandler: requireRole('staff') }, handler);
 */
export function requireRole(role: Role) {
  return async (request: FastifyRequest): Promise<void> => {
    if (requestContext(request).role !== role) {
      throw new HttpProblem(403, 'FORBIDDEN', `only ${role} may do this`);
    }
  };
}
