import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_BOOKS } from '@bstore/book';
import { DEMO_LIBRARIES } from '@bstore/assignment';
import { eventually } from './support/harness.ts';
import { checkInvariants } from './support/invariants.ts';
import { freshDatabase } from './support/postgres.ts';
import { client, databasesOf, startTestSystem, type TestSystem } from './support/system.ts';

let system: TestSystem;
let alice: ReturnType<typeof client>;
let librarian: ReturnType<typeof client>;
let acknowledged: number[] = [];
let canceled: number[] = [];

type Databases = NonNullable<Parameters<typeof startTestSystem>[0]>['databases'];

/** The whole suite on PGlite, then with every service on its own PostgreSQL database. */
const BACKENDS: [string, () => Promise<{ databases: Databases; cleanup: () => Promise<void> }>][] = [
  ['PGlite', async () => ({ databases: undefined, cleanup: async () => undefined })],
  [
    'PostgreSQL',
    async () => {
      const names = ['book', 'reservation', 'assignment', 'customercenter'] as const;
      const fresh = await Promise.all(names.map((n) => freshDatabase(n)));
      const databases = Object.fromEntries(names.map((n, i) => [n, { kind: 'postgres' as const, url: fresh[i]?.url ?? '', poolSize: 10 }]));
      return { databases, cleanup: async () => void (await Promise.all(fresh.map((f) => f.drop()))) };
    },
  ],
];

function rawRequest(base: string, method: string, path: string, body: string): Promise<{ status: number; contentType: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? '') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function statusBecomes(id: number, status: string) {
  return eventually(`reservation ${id} to become ${status}`, async () => {
    const r = await librarian.reservation(id);
    return r.body.status === status ? r.body : undefined;
  });
}

async function pageBecomes(id: number, status: string) {
  return eventually(`page ${id} to become ${status}`, async () => {
    const p = await librarian.page(id);
    return p.status === 200 && p.body.status === status ? p.body : undefined;
  });
}

describe.each(BACKENDS)('on %s', (_name, backend) => {
  let cleanup: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const chosen = await backend();
    cleanup = chosen.cleanup;
    acknowledged = [];
    canceled = [];
    system = await startTestSystem(chosen.databases ? { databases: chosen.databases } : {});
    alice = client(system.urls.gateway, 'alice');
    librarian = client(system.urls.gateway, 'librarian', 'staff');
  });

  afterAll(async () => {
    await system?.stop();
    await cleanup();
  });

  describe('the reservation saga through the gateway (embedded mode)', () => {
    it('reserve -> bookReserved with a library -> cancel -> bookCanceled, the copy restored exactly once', async () => {
      const { body: created } = await alice.createBook('Saga Test Book', 3);
      const reserved = await alice.reserve(created.bookId);
      expect(reserved.status).toBe(201);
      expect(reserved.body.status).toBe('bookReserveReq');
      const id = reserved.body.reservationId;
      acknowledged.push(id);
      expect((await alice.book(created.bookId)).body.quantity).toBe(2);

      const done = await statusBecomes(id, 'bookReserved');
      expect(done.libraryName).toMatch(/Library/);
      const page = await pageBecomes(id, 'bookReserved');
      expect(page.libraryName).toBe(done.libraryName);

      const cancel = await alice.cancel(id);
      expect(cancel.status).toBe(202);
      expect(cancel.body.status).toBe('bookCancel');
      canceled.push(id);
      await statusBecomes(id, 'bookCanceled');
      const finalPage = await pageBecomes(id, 'bookCanceled');
      expect(finalPage.timeline.map((t) => t.eventType)).toEqual([
        'ReservationRequested',
        'ReservationAccepted',
        'ReservationCancelRequested',
        'ReservationCanceled',
      ]);
      expect(finalPage.timeline.map((t) => t.service)).toEqual(['reservation', 'assignment', 'reservation', 'assignment']);
      await eventually('the copy to come back', async () => ((await alice.book(created.bookId)).body.quantity === 3 ? true : undefined));
      // And only once: nothing more arrives later.
      await new Promise((r) => setTimeout(r, 500));
      expect((await alice.book(created.bookId)).body).toMatchObject({ quantity: 3, copies: 3 });
    });

    it('out of stock: 409 and the reservation stored as bookOutOfStock, visible in the read model', async () => {
      const { body: created } = await alice.createBook('Out of Stock Book', 0);
      const res = await alice.reserve(created.bookId);
      expect(res.status).toBe(409);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.body).toMatchObject({ code: 'BOOK_OUT_OF_STOCK', reservationStatus: 'bookOutOfStock' });
      expect((await alice.reservation(res.body.reservationId)).body.status).toBe('bookOutOfStock');
      const page = await pageBecomes(res.body.reservationId, 'bookOutOfStock');
      // The patron's page names the book that was out of stock.
      expect(page.bookName).toBe('Out of Stock Book');
    });

    it('the last copy is reserved, the next patron is refused', async () => {
      const { body: created } = await alice.createBook('Single Copy', 1);
      const first = await alice.reserve(created.bookId);
      const second = await client(system.urls.gateway, 'bob').reserve(created.bookId);
      expect(first.status).toBe(201);
      expect(second.status).toBe(409);
      acknowledged.push(first.body.reservationId);
      await statusBecomes(first.body.reservationId, 'bookReserved');
    });

    it('a preferred library is honoured', async () => {
      const { body: libraries } = await alice.call<{ items: { libraryId: number; name: string }[] }>('GET', '/libraries');
      const preferred = libraries.items[2];
      expect(preferred).toBeDefined();
      const { body: created } = await alice.createBook('Preferred Library Book', 2);
      const res = await alice.reserve(created.bookId, { preferredLibraryId: preferred?.libraryId });
      acknowledged.push(res.body.reservationId);
      const done = await statusBecomes(res.body.reservationId, 'bookReserved');
      expect(done.libraryId).toBe(preferred?.libraryId);
    });

    it('fault isolation: with the assignment consumer stopped, reservations still answer 201; all complete once it runs again', async () => {
      const { body: created } = await alice.createBook('Fault Isolation Book', 10);
      await system.assignment.stopConsumers();
      const ids: number[] = [];
      try {
        for (let i = 0; i < 5; i++) {
          // A patron each: one patron has one active reservation per book.
          const res = await client(system.urls.gateway, `isolated-${i}`).reserve(created.bookId);
          expect(res.status).toBe(201);
          expect(res.body.status).toBe('bookReserveReq');
          ids.push(res.body.reservationId);
        }
        await new Promise((r) => setTimeout(r, 700));
        for (const id of ids) expect((await librarian.reservation(id)).body.status).toBe('bookReserveReq');
        // The read model shows them already, as requested.
        await pageBecomes(ids[0] as number, 'bookReserveReq');
      } finally {
        await system.assignment.startConsumers();
      }
      acknowledged.push(...ids);
      for (const id of ids) await statusBecomes(id, 'bookReserved');
    });

    it('a cancel made while assignment is stopped gives the copy back at once, and completes when assignment returns', async () => {
      const { body: created } = await alice.createBook('Cancel While Down', 2);
      await system.assignment.stopConsumers();
      let id: number;
      try {
        const res = await alice.reserve(created.bookId);
        id = res.body.reservationId;
        expect((await alice.cancel(id)).status).toBe(202);
        // Book releases on ReservationCancelRequested: the copy does not wait for assignment (ADR 0021).
        await eventually('the copy to come back while assignment is down', async () => ((await alice.book(created.bookId)).body.quantity === 2 ? true : undefined));
        expect((await alice.reservation(id)).body.status).toBe('bookCancel');
      } finally {
        await system.assignment.startConsumers();
      }
      acknowledged.push(id);
      canceled.push(id);
      await statusBecomes(id, 'bookCanceled');
      await eventually('the copy to come back', async () => ((await alice.book(created.bookId)).body.quantity === 2 ? true : undefined));
    });

    it('concurrent patrons on one book never oversell', async () => {
      const { body: created } = await alice.createBook('Hot Book', 4);
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => client(system.urls.gateway, `patron${i}`).reserve(created.bookId)));
      const ok = answers.filter((a) => a.status === 201);
      expect(ok).toHaveLength(4);
      expect(answers.filter((a) => a.status === 409)).toHaveLength(8);
      acknowledged.push(...ok.map((a) => a.body.reservationId));
      for (const a of ok) await statusBecomes(a.body.reservationId, 'bookReserved');
      expect((await alice.book(created.bookId)).body.quantity).toBe(0);
    });

    it('a retry with the same Idempotency-Key through the gateway gets the first answer, not a second reservation', async () => {
      const { body: created } = await librarian.createBook('Idempotent Retry Book', 3);
      const patron = client(system.urls.gateway, 'retrying-patron');
      // Another patron's copy first (one patron has one active reservation per book).
      const first = await client(system.urls.gateway, 'first-patron').reserve(created.bookId);
      expect(first.status).toBe(201);
      const keyed = await patron.call<{ reservationId: number }>('POST', '/reservations', { bookId: created.bookId }, { 'idempotency-key': 'retry-1' });
      const retried = await patron.call<{ reservationId: number }>('POST', '/reservations', { bookId: created.bookId }, { 'idempotency-key': 'retry-1' });
      expect(keyed.status).toBe(201);
      expect(retried.status).toBe(201);
      expect(retried.headers.get('idempotent-replayed')).toBe('true');
      expect(retried.body.reservationId).toBe(keyed.body.reservationId);
      expect((await patron.book(created.bookId)).body.quantity).toBe(1);
      acknowledged.push(first.body.reservationId, keyed.body.reservationId);
    });

    it('at the end, the read model agrees with the reservation service and invariants I1–I5 hold', async () => {
      const violations = await eventually('the system to settle', async () => {
        const found = await checkInvariants(databasesOf(system), { acknowledged, canceled });
        return found.length === 0 ? found : undefined;
      }).catch(async () => checkInvariants(databasesOf(system), { acknowledged, canceled }));
      expect(violations).toEqual([]);
    });
  });

  describe('with no library branch at all', () => {
    let bare: TestSystem;
    let bareCleanup: () => Promise<void> = async () => undefined;
    beforeAll(async () => {
      const chosen = await backend();
      bareCleanup = chosen.cleanup;
      bare = await startTestSystem({ seedDemoData: false, ...(chosen.databases ? { databases: chosen.databases } : {}) });
    });
    afterAll(async () => {
      await bare?.stop();
      await bareCleanup();
    });

    it('a reservation no library can serve is rejected and its copy comes back, instead of being held until the patron cancels', async () => {
      const patron = client(bare.urls.gateway, 'no-branch-patron');
      const staff = client(bare.urls.gateway, 'librarian', 'staff');
      const { body: created } = await patron.createBook('Nowhere To Pick Up', 1);
      const res = await patron.reserve(created.bookId);
      expect(res.status).toBe(201);
      const id = res.body.reservationId;
      const rejected = await eventually(`reservation ${id} to be rejected`, async () => {
        const r = await staff.reservation(id);
        return r.body.status === 'rejected' ? r.body : undefined;
      });
      expect(rejected.libraryName).toBeNull();
      await eventually('the copy to come back', async () => ((await patron.book(created.bookId)).body.quantity === 1 ? true : undefined));
      const page = await eventually(`page ${id} to be rejected`, async () => {
        const p = await staff.page(id);
        return p.status === 200 && p.body.status === 'rejected' ? p.body : undefined;
      });
      expect(page.timeline.map((t) => t.eventType)).toEqual(['ReservationRequested', 'ReservationRejected']);
      const assignments = await staff.call<{ items: { reservationId: number; status: string }[] }>('GET', `/assignments?reservationId=${id}`);
      expect(assignments.body.items).toMatchObject([{ reservationId: id, status: 'failed' }]);
      expect(await checkInvariants(databasesOf(bare), { acknowledged: [] })).toEqual([]);
    });
  });

  describe('the gateway', () => {
    it('an unknown route is a 404 problem', async () => {
      const res = await alice.call('GET', '/nowhere');
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ code: 'ROUTE_NOT_FOUND', status: 404 });
    });

    it('does not publish the internal hold route, however the path is written', async () => {
      const before = (await alice.book(1)).body.quantity;
      const attempts = ['/books/1/holds/99', '/books/1/./holds/98', '/books/1/x/../holds/97', '/books/1/hold%73/96', '/books/1//holds/95', '/books/1/%2e/holds/94'];
      for (const path of attempts) {
        // node:http sends the path as written (fetch would normalise the dot segments away).
        const res = await rawRequest(system.urls.gateway, 'PUT', path, JSON.stringify({ customerId: 'alice' }));
        expect([400, 404], path).toContain(res.status);
        expect(res.contentType, path).toContain('application/problem+json');
      }
      expect((await alice.book(1)).body.quantity).toBe(before);
    });

    it('a malformed URL or query string is a 400 problem, not a 500', async () => {
      for (const path of ['/books?q=%', '/books/%', '/reservations/%zz']) {
        const res = await rawRequest(system.urls.gateway, 'GET', path, '');
        expect(res.status, path).toBe(400);
        expect(res.contentType, path).toContain('application/problem+json');
      }
      const direct = await rawRequest(system.urls.book, 'GET', '/books/%', '');
      expect(direct.status).toBe(400);
      expect(direct.contentType).toContain('application/problem+json');
    });

    it('reports every upstream up', async () => {
      const res = await alice.call<{ services: Record<string, string> }>('GET', '/health/upstreams');
      expect(res.status).toBe(200);
      expect(res.body.services).toEqual({ reservation: 'up', assignment: 'up', book: 'up', customercenter: 'up', notification: 'up' });
    });

    it('the demo data is there once: a dozen books, including one with none and one with a single copy', async () => {
      const res = await alice.call<{ items: { bookName: string; quantity: number }[]; total: number }>('GET', '/books?limit=100');
      for (const demo of DEMO_BOOKS) {
        const found = res.body.items.filter((b) => b.bookName === demo.bookName);
        expect(found, demo.bookName).toHaveLength(1);
        expect(found[0]?.quantity, demo.bookName).toBe(demo.quantity);
      }
      expect(DEMO_BOOKS.filter((b) => b.quantity === 0)).toHaveLength(1);
      expect(DEMO_BOOKS.filter((b) => b.quantity === 1)).toHaveLength(1);
      const libraries = await alice.call<{ items: { name: string }[] }>('GET', '/libraries');
      expect(libraries.body.items.map((l) => l.name).sort()).toEqual(DEMO_LIBRARIES.map((l) => l.name).sort());
    });
  });
});
