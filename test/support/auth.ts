import { demoServiceAuth, demoToken, type Role, type ServiceAuth } from '@bstore/platform';

const cache = new Map<string, Promise<string>>();

/**
 * A bearer token of the demo identity for a test caller, signed once per caller and role and
 * valid for two hours (a whole test run). The services under test verify it as they would a
 * token from `POST /auth/token`.
 *
 * @example
 * await app.inject({ method: 'GET', url: '/reservations', headers: await as('alice') });
 */
export function tokenFor(customerId: string, role: Role = 'customer'): Promise<string> {
  const key = `${role}:${customerId}`;
  let token = cache.get(key);
  if (!token) cache.set(key, (token = demoToken({ customerId, role }, 7200).then((t) => t.access_token)));
  return token;
}

/** `{ authorization: 'Bearer …' }` for a customer (or staff). */
export async function as(customerId: string, role: Role = 'customer'): Promise<{ authorization: string }> {
  return { authorization: `Bearer ${await tokenFor(customerId, role)}` };
}

/** `{ authorization: 'Bearer …' }` for the demo librarian (staff). */
export function asStaff(name = 'librarian'): Promise<{ authorization: string }> {
  return as(name, 'staff');
}

/** The demo identity every service in a test is built with. */
export function testAuth(): Promise<ServiceAuth> {
  return demoServiceAuth();
}
