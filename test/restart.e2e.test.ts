import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '@bstore/platform';
import type { AssignmentTables } from '@bstore/assignment';
import type { BookTables } from '@bstore/book';
import type { CustomerCenterTables } from '@bstore/customercenter';
import type { ReservationTables } from '@bstore/reservation';
import { eventually } from './support/harness.ts';
import { checkInvariants } from './support/invariants.ts';
import { freePort, startLauncher, type LauncherProcess } from './support/process.ts';
import { client } from './support/system.ts';

let dataDir = '';
const running: LauncherProcess[] = [];

afterAll(async () => {
  for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function ports(): Promise<Record<string, number>> {
  const names = ['gateway', 'reservation', 'assignment', 'book', 'customercenter'];
  const result: Record<string, number> = {};
  for (const name of names) result[name] = await freePort();
  return result;
}

describe('restart in the middle of sagas (real processes, embedded mode)', () => {
  it('a killed system, started again, completes every saga and the invariants hold', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'bstore-restart-'));
    const env = { BSTORE_DATA_DIR: dataDir, BSTORE_SWEEP_INTERVAL_MS: '500', BSTORE_PENDING_STALE_AFTER_MS: '1500', BSTORE_MAX_ACTIVE_RESERVATIONS: '1000' };

    // Run 1: assignment consumes nothing, so sagas stop half-way: requested, and cancelling.
    const first = await startLauncher({ ...env, BSTORE_PAUSED_CONSUMERS: 'assignment' }, await ports());
    running.push(first);
    const staff = client(first.gateway, 'librarian', 'staff');
    // A patron per reservation: one patron has one active reservation per book.
    const patron = (i: number) => client(first.gateway, `restart-${i}`);
    const { body: created } = await staff.createBook('Restart Book', 30);
    const acknowledged: number[] = [];
    const canceled: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await patron(i).reserve(created.bookId);
      expect(res.status).toBe(201);
      acknowledged.push(res.body.reservationId);
    }
    for (const [i, id] of acknowledged.slice(0, 3).entries()) {
      expect((await patron(i).cancel(id)).status).toBe(202);
      canceled.push(id);
    }
    // More requests in flight when the process is killed: whatever they were told, nothing may leak.
    const inFlight = Array.from({ length: 6 }, (_, i) => patron(100 + i).reserve(created.bookId).catch(() => null));
    await new Promise((r) => setTimeout(r, 40));
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    for (const res of await Promise.all(inFlight)) if (res?.status === 201) acknowledged.push(res.body.reservationId);

    // The state a crash between "store pending" and "ask book" leaves: a pending reservation.
    const reservationDb = await openDatabase<ReservationTables>({ kind: 'pglite', dataDir: join(dataDir, 'reservation') });
    const orphan = await reservationDb.db
      .insertInto('reservations')
      .values({ book_id: created.bookId, customer_id: 'bob', preferred_library_id: null, status: 'pending', book_name: null, library_id: null, library_name: null, reject_reason: null, attempts: 1, created_at: new Date(0), updated_at: new Date(0) })
      .returning('reservation_id')
      .executeTakeFirstOrThrow();
    const before = await reservationDb.db.selectFrom('reservations').select(['status']).execute();
    await reservationDb.close();
    expect(before.map((r) => r.status)).toEqual(expect.arrayContaining(['bookReserveReq', 'bookCancel', 'pending']));

    // Run 2: everything runs; the sweep and the durable bus finish what was interrupted.
    const second = await startLauncher(env, await ports());
    running.push(second);
    const staff2 = client(second.gateway, 'librarian', 'staff');
    await eventually(
      'every saga to finish',
      async () => {
        for (const status of ['pending', 'bookReserveReq', 'bookCancel']) {
          const res = await staff2.call<{ total: number }>('GET', `/reservations?status=${status}&limit=1`);
          if (res.body.total !== 0) return undefined;
        }
        return true;
      },
      60_000,
    );
    expect((await staff2.reservation(orphan.reservation_id)).body.status).toBe('bookReserved');
    // Let the read model and the stock catch up (seen from outside), then stop cleanly and look inside.
    await eventually(
      'the read model and the stock to agree with the reservations',
      async () => {
        const reservations = await staff2.call<{ items: { reservationId: number; status: string; bookId: number }[] }>('GET', '/reservations?limit=100');
        const pages = await staff2.call<{ items: { reservationId: number; status: string }[] }>('GET', '/reservationPages?limit=100');
        const pageStatus = new Map(pages.body.items.map((p) => [p.reservationId, p.status]));
        if (!reservations.body.items.every((r) => pageStatus.get(r.reservationId) === r.status)) return undefined;
        const active = reservations.body.items.filter((r) => r.bookId === created.bookId && (r.status === 'bookReserved' || r.status === 'bookReserveReq')).length;
        const stock = await staff2.book(created.bookId);
        return stock.body.quantity + active === stock.body.copies ? true : undefined;
      },
      30_000,
    );
    // The demo data was added once, not again at the restart.
    const books = await staff2.call<{ total: number }>('GET', '/books?limit=1');
    expect(books.body.total).toBe(13);
    const libraries = await staff2.call<{ items: unknown[] }>('GET', '/libraries');
    expect(libraries.body.items).toHaveLength(4);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    const open = <T>(name: string) => openDatabase<T>({ kind: 'pglite', dataDir: join(dataDir, name) });
    const dbs: Database<unknown>[] = [];
    try {
      const book = await open<BookTables>('book');
      const reservation = await open<ReservationTables>('reservation');
      const assignment = await open<AssignmentTables>('assignment');
      const customercenter = await open<CustomerCenterTables>('customercenter');
      dbs.push(book as Database<unknown>, reservation as Database<unknown>, assignment as Database<unknown>, customercenter as Database<unknown>);
      const violations = await checkInvariants(
        { book: book.db, reservation: reservation.db, assignment: assignment.db, customercenter: customercenter.db },
        { acknowledged, canceled },
      );
      expect(violations).toEqual([]);
      const stock = await book.db.selectFrom('books').select(['quantity', 'copies']).where('book_id', '=', created.bookId).executeTakeFirstOrThrow();
      expect(stock.copies).toBe(30);
    } finally {
      for (const d of dbs) await d.close();
    }
  }, 240_000);
});
