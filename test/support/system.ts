import { startEmbedded, type EmbeddedSystem } from '@bstore/launcher';
import type { DatabaseConfig, Role } from '@bstore/platform';
import type { AssignmentTables } from '@bstore/assignment';
import type { BookTables } from '@bstore/book';
import type { CustomerCenterTables } from '@bstore/customercenter';
import type { ReservationTables } from '@bstore/reservation';
import { as, asStaff } from './auth.ts';
import { testLogger } from './harness.ts';
import type { SystemDatabases } from './invariants.ts';
import { memoryDatabase, testDatabase, type TestDatabase } from './postgres.ts';

/** The services that keep their data in SQL in the embedded system. */
const SQL_SERVICES = ['book', 'reservation', 'assignment', 'customercenter'] as const;

/**
 * The embedded system of a test, with the test's own connection to each service's database
 * (`databases`: an operator's view of the data, for invariants and checks). `stop` stops it and
 * closes those databases.
 */
export type TestSystem = EmbeddedSystem & { readonly databases: SystemDatabases };

/**
 * The whole embedded system in this process, on free ports: each service's database in memory
 * (a PGlite instance the test owns), or the one `databases` gives (PostgreSQL).
 */
export async function startTestSystem(
  options: { seedDemoData?: boolean; sweepIntervalMs?: number; databases?: Partial<Record<(typeof SQL_SERVICES)[number], DatabaseConfig>> } = {},
): Promise<TestSystem> {
  const own: Partial<Record<(typeof SQL_SERVICES)[number], TestDatabase>> = {};
  const cleanup = async () => {
    for (const made of Object.values(own)) await made.cleanup();
  };
  try {
    for (const name of SQL_SERVICES) {
      const given = options.databases?.[name];
      own[name] = given ? testDatabase(given, async () => undefined) : await memoryDatabase();
    }
    const system = await startEmbedded({
      databases: Object.fromEntries(SQL_SERVICES.map((name) => [name, own[name]!.config])),
      logger: testLogger(),
      ports: { gateway: 0, reservation: 0, assignment: 0, book: 0, customercenter: 0, notification: 0 },
      seedDemoData: options.seedDemoData ?? true,
      // The saga tests reserve many books as one patron; the limit on active reservations (reservation's
      // and book's, one variable) has tests of its own.
      env: { BSTORE_MAX_ACTIVE_RESERVATIONS: '1000' },
      reservation: { sweepIntervalMs: options.sweepIntervalMs ?? 1000, staleAfterMs: 2000 },
      // The limits have tests of their own (services/gateway/test); here they would only make load tests flaky.
      gateway: { rateLimitPerToken: 0, rateLimitPerIp: 0, loginAttemptsPerMinute: 0 },
    });
    const databases: SystemDatabases = {
      book: await own.book!.connect<BookTables>(),
      reservation: await own.reservation!.connect<ReservationTables>(),
      assignment: await own.assignment!.connect<AssignmentTables>(),
      customercenter: await own.customercenter!.connect<CustomerCenterTables>(),
    };
    return {
      ...system,
      databases,
      stop: async () => {
        try {
          await system.stop();
        } finally {
          await cleanup();
        }
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The test's connections to the system's databases. */
export function databasesOf(system: TestSystem): SystemDatabases {
  return system.databases;
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
