import { startEmbedded, type EmbeddedOptions, type EmbeddedSystem } from '@bstore/launcher';
import type { Role } from '@bstore/platform';
import { as, asStaff } from './auth.ts';
import { testLogger } from './harness.ts';
import type { SystemDatabases } from './invariants.ts';

/** The whole embedded system in this process, in memory, on free ports. */
export function startTestSystem(
  options: { seedDemoData?: boolean; sweepIntervalMs?: number; databases?: EmbeddedOptions['databases'] } = {},
): Promise<EmbeddedSystem> {
  return startEmbedded({
    ...(options.databases ? { databases: options.databases } : {}),
    logger: testLogger(),
    ports: { gateway: 0, reservation: 0, assignment: 0, book: 0, customercenter: 0 },
    seedDemoData: options.seedDemoData ?? true,
    // The saga tests reserve many books as one patron; the limit on active reservations (reservation's
    // and book's, one variable) has tests of its own.
    env: { BSTORE_MAX_ACTIVE_RESERVATIONS: '1000' },
    reservation: { sweepIntervalMs: options.sweepIntervalMs ?? 1000, staleAfterMs: 2000 },
    // The limits have tests of their own (services/gateway/test); here they would only make load tests flaky.
    gateway: { rateLimitPerToken: 0, rateLimitPerIp: 0, loginAttemptsPerMinute: 0 },
  });
}

export function databasesOf(system: EmbeddedSystem): SystemDatabases {
  const customercenter = system.customercenter.internals.db;
  if (!customercenter) throw new Error('the embedded system keeps the read model in SQL, yet customercenter has no database');
  return {
    book: system.book.internals.db,
    reservation: system.reservation.internals.db,
    assignment: system.assignment.internals.db,
    customercenter,
  };
}

/**
 * A small client for the public API through the gateway, signed in as `customerId` with `role`
 * (a demo token). `createBook` always calls as the librarian.
 */
export function client(baseUrl: string, customerId = 'alice', role: Role = 'customer') {
  const call = async <T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { ...(await as(customerId, role)), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as T };
  };
  return {
    call,
    reserve: (bookId: number, extra: object = {}) => call<{ reservationId: number; status: string; code?: string }>('POST', '/reservations', { bookId, ...extra }),
    cancel: (reservationId: number) => call<{ status: string }>('PATCH', `/reservations/${reservationId}`, { status: 'bookCancel' }),
    reservation: (id: number) => call<{ status: string; libraryName: string | null; libraryId: number | null }>('GET', `/reservations/${id}`),
    page: (id: number) => call<{ status: string; bookName: string | null; libraryName: string | null; timeline: { eventType: string; service: string }[] }>('GET', `/reservationPages/${id}`),
    book: (id: number) => call<{ quantity: number; copies: number; bookName: string }>('GET', `/books/${id}`),
    createBook: async (bookName: string, quantity: number) => call<{ bookId: number }>('POST', '/books', { bookName, quantity }, await asStaff()),
  };
}
