import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedBus } from '@bstore/platform';
import type { Kysely } from 'kysely';
import { createBookService, type BookService } from '@bstore/book';
import { createReservationService, type ReservationService, type ReservationTables } from '@bstore/reservation';
import { memoryBus, testLogger } from '../../../test/support/harness.ts';
import { databaseKinds } from '../../../test/support/postgres.ts';
import { as, asStaff, testAuth } from '../../../test/support/auth.ts';

/**
 * How POST /reservations treats repeated and excessive requests: the Idempotency-Key (IETF
 * httpapi draft semantics) and the limit of active reservations per customer (OWASP API6). On
 * PGlite, and on PostgreSQL where concurrent requests really overlap.
 */
const DATABASES = databaseKinds();

const logger = testLogger();
const staff = await asStaff();
const auth = await testAuth();

describe.each(DATABASES)('POST /reservations on %s', (_name, makeDatabase) => {
  let bus: EmbeddedBus;
  let book: BookService;
  let reservation: ReservationService;
  /** The test's own connection to reservation's database (an operator's view of it). */
  let db: Kysely<ReservationTables>;
  const cleanups: (() => Promise<void>)[] = [];
  let bookId: number;
  /** More titles, for tests in which one patron holds several reservations (one active reservation per book). */
  const shelf: number[] = [];

  beforeAll(async () => {
    const database = async (prefix: string) => {
      const made = await makeDatabase(prefix);
      cleanups.push(made.cleanup);
      return made;
    };
    bus = await memoryBus(logger);
    book = await createBookService({ database: (await database('requests_book')).config, bus, logger, auth }, { maxHeldCopiesPerCustomer: 1000 });
    await book.start({ port: 0 });
    const reservationDatabase = await database('requests');
    reservation = await createReservationService({ database: reservationDatabase.config, bus, logger, auth }, { bookUrl: book.url, maxActiveReservationsPerCustomer: 3 });
    db = await reservationDatabase.connect<ReservationTables>();
    const created = await book.app.inject({ method: 'POST', url: '/books', payload: { bookName: 'Plenty', quantity: 500 }, headers: staff });
    bookId = created.json<{ bookId: number }>().bookId;
    for (let i = 0; i < 10; i++) {
      const more = await book.app.inject({ method: 'POST', url: '/books', payload: { bookName: `Shelf ${i}`, quantity: 50 }, headers: staff });
      shelf.push(more.json<{ bookId: number }>().bookId);
    }
  });

  afterAll(async () => {
    await reservation.stop();
    await book.stop();
    await bus.close();
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  const post = async (customerId: string, payload: object, headers: Record<string, string> = {}) =>
    reservation.app.inject({ method: 'POST', url: '/reservations', payload, headers: { ...(await as(customerId)), ...headers } });
  const countOf = async (customerId: string) =>
    Number(
      (await db.selectFrom('reservations').select((eb) => eb.fn.countAll<number>().as('n')).where('customer_id', '=', customerId).executeTakeFirstOrThrow()).n,
    );
  const quantity = async () => (await book.app.inject({ method: 'GET', url: `/books/${bookId}` })).json<{ quantity: number }>().quantity;

  describe('Idempotency-Key', () => {
    it('replays the first answer, status and body, for a retry with the same key: one reservation, one copy', async () => {
      const before = await quantity();
      const first = await post('idem-1', { bookId }, { 'idempotency-key': 'k-1' });
      expect(first.statusCode).toBe(201);
      const again = await post('idem-1', { bookId }, { 'idempotency-key': 'k-1' });
      expect(again.statusCode).toBe(201);
      expect(again.json()).toEqual(first.json());
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.headers['content-type']).toMatch(/application\/json/);
      expect(await countOf('idem-1')).toBe(1);
      expect(await quantity()).toBe(before - 1);
    });

    it('accepts the key as a structured-field string ("...") and equal bodies in any key order', async () => {
      const first = await post('idem-2', { bookId, preferredLibraryId: null }, { 'idempotency-key': '"k-2"' });
      expect(first.statusCode).toBe(201);
      const again = await reservation.app.inject({
        method: 'POST',
        url: '/reservations',
        headers: { ...(await as('idem-2')), 'idempotency-key': 'k-2', 'content-type': 'application/json' },
        payload: `{"preferredLibraryId":null,"bookId":${bookId}}`,
      });
      expect(again.statusCode).toBe(201);
      expect(again.json()).toEqual(first.json());
      expect(await countOf('idem-2')).toBe(1);
    });

    it('answers 422 for the same key with a different body, and changes nothing', async () => {
      expect((await post('idem-3', { bookId }, { 'idempotency-key': 'k-3' })).statusCode).toBe(201);
      const other = await post('idem-3', { bookId, preferredLibraryId: 2 }, { 'idempotency-key': 'k-3' });
      expect(other.statusCode).toBe(422);
      expect(other.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(other.json()).toMatchObject({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
      expect(await countOf('idem-3')).toBe(1);
    });

    it('keys are per customer: the same key from another patron is a new request', async () => {
      expect((await post('idem-4a', { bookId }, { 'idempotency-key': 'shared' })).statusCode).toBe(201);
      const other = await post('idem-4b', { bookId }, { 'idempotency-key': 'shared' });
      expect(other.statusCode).toBe(201);
      expect(other.headers['idempotent-replayed']).toBeUndefined();
      expect(await countOf('idem-4b')).toBe(1);
    });

    it('replays a refusal too (409 out of stock), as problem+json', async () => {
      const created = await book.app.inject({ method: 'POST', url: '/books', payload: { bookName: 'None left', quantity: 0 }, headers: staff });
      const empty = created.json<{ bookId: number }>().bookId;
      const first = await post('idem-5', { bookId: empty }, { 'idempotency-key': 'k-5' });
      expect(first.statusCode).toBe(409);
      const again = await post('idem-5', { bookId: empty }, { 'idempotency-key': 'k-5' });
      expect(again.statusCode).toBe(409);
      expect(again.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(again.json()).toEqual(first.json());
      expect(await countOf('idem-5')).toBe(1);
    });

    it('the same key sent many times at once creates one reservation; the others replay it or are told it is in progress (409)', async () => {
      const before = await quantity();
      const answers = await Promise.all(Array.from({ length: 8 }, () => post('idem-6', { bookId }, { 'idempotency-key': 'burst' })));
      const statuses = answers.map((a) => a.statusCode);
      expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
      expect(statuses.filter((s) => s === 201).length).toBeGreaterThanOrEqual(1);
      for (const a of answers.filter((x) => x.statusCode === 409)) {
        expect(a.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE' });
        expect(a.headers['retry-after']).toBe('1');
      }
      const ids = new Set(answers.filter((a) => a.statusCode === 201).map((a) => a.json<{ reservationId: number }>().reservationId));
      expect(ids.size).toBe(1);
      expect(await countOf('idem-6')).toBe(1);
      expect(await quantity()).toBe(before - 1);
      // Once done, the key replays.
      expect((await post('idem-6', { bookId }, { 'idempotency-key': 'burst' })).statusCode).toBe(201);
    });

    it('a request still running blocks its key with 409; a key whose process died is taken over once its lock expires', async () => {
      // What a crash between claiming the key and answering leaves: a running claim for this body.
      const { fingerprintOf } = await import('../src/adapters/http/idempotency.ts');
      const now = Date.now();
      await db
        .insertInto('idempotency_keys')
        .values({
          customer_id: 'idem-7',
          idempotency_key: 'k-7',
          fingerprint: fingerprintOf('POST', '/reservations', { bookId }),
          state: 'running',
          response_status: null,
          response_type: null,
          response_body: null,
          locked_until: new Date(now + 60_000),
          expires_at: new Date(now + 86_400_000),
        })
        .execute();
      const blocked = await post('idem-7', { bookId }, { 'idempotency-key': 'k-7' });
      expect(blocked.statusCode).toBe(409);
      expect(blocked.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE' });
      expect(await countOf('idem-7')).toBe(0);

      await db.updateTable('idempotency_keys').set({ locked_until: new Date(now - 1000) }).where('customer_id', '=', 'idem-7').execute();
      const taken = await post('idem-7', { bookId }, { 'idempotency-key': 'k-7' });
      expect(taken.statusCode).toBe(201);
      expect(await countOf('idem-7')).toBe(1);
      const replay = await post('idem-7', { bookId }, { 'idempotency-key': 'k-7' });
      expect(replay.json()).toEqual(taken.json());
    });

    it('expired keys are forgotten: the same key later makes a new reservation, and pruning deletes them', async () => {
      expect((await post('idem-8', { bookId }, { 'idempotency-key': 'k-8' })).statusCode).toBe(201);
      await db.updateTable('idempotency_keys').set({ expires_at: new Date(Date.now() - 1) }).where('customer_id', '=', 'idem-8').execute();
      // Another book: the first reservation is still active, and a patron has one active reservation per book.
      const later = await post('idem-8', { bookId: shelf[0] }, { 'idempotency-key': 'k-8' });
      expect(later.statusCode).toBe(201);
      expect(later.headers['idempotent-replayed']).toBeUndefined();
      expect(await countOf('idem-8')).toBe(2);
      await db.updateTable('idempotency_keys').set({ expires_at: new Date(Date.now() - 1) }).where('customer_id', '=', 'idem-8').execute();
      const rows = () => db.selectFrom('idempotency_keys').select('idempotency_key').where('customer_id', '=', 'idem-8').execute();
      expect(await rows()).toHaveLength(1);
      const { KyselyIdempotencyStore } = await import('../src/adapters/db/idempotency.store.ts');
      const store = new KyselyIdempotencyStore(db, { ttlMs: 86_400_000, lockMs: 60_000 });
      expect(await store.prune(new Date(), 1000)).toBeGreaterThanOrEqual(1);
      expect(await rows()).toHaveLength(0);
    });

    it.each([
      ['empty', ''],
      ['longer than 255 characters', 'k'.repeat(256)],
      ['not printable ASCII', 'clé'],
    ])('an Idempotency-Key that is %s is a 400 problem and stores nothing', async (_what, key) => {
      const res = await post('idem-bad', { bookId }, { 'idempotency-key': key });
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(res.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_INVALID' });
      expect(await countOf('idem-bad')).toBe(0);
    });

    it('a key of exactly 255 characters is accepted', async () => {
      expect((await post('idem-9', { bookId }, { 'idempotency-key': 'k'.repeat(255) })).statusCode).toBe(201);
    });
  });

  describe('active reservations per customer (anti-hoarding)', () => {
    it('refuses the next reservation past the limit with 409 and a clear reason, storing nothing; a cancel frees a place', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await post('hoarder', { bookId: shelf[i] });
        expect(res.statusCode).toBe(201);
        ids.push(res.json<{ reservationId: number }>().reservationId);
      }
      const before = await quantity();
      const refused = await post('hoarder', { bookId: shelf[3] });
      expect(refused.statusCode).toBe(409);
      expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(refused.json()).toMatchObject({ code: 'TOO_MANY_ACTIVE_RESERVATIONS', limit: 3, active: 3 });
      expect(refused.json<{ detail: string }>().detail).toMatch(/3 active reservations/);
      expect(await countOf('hoarder')).toBe(3);
      expect(await quantity()).toBe(before);

      const cancel = await reservation.app.inject({ method: 'PATCH', url: `/reservations/${ids[0]}`, payload: { status: 'bookCancel' }, headers: await as('hoarder') });
      expect(cancel.statusCode).toBe(202);
      expect((await post('hoarder', { bookId: shelf[3] })).statusCode).toBe(201);
    });

    it('holds under concurrent requests by one patron: never more than the limit', async () => {
      const answers = await Promise.all(shelf.map((b) => post('racer', { bookId: b })));
      const statuses = answers.map((a) => a.statusCode).sort();
      expect(statuses.filter((s) => s === 201)).toHaveLength(3);
      expect(statuses.filter((s) => s === 409)).toHaveLength(7);
      expect(await countOf('racer')).toBe(3);
    });

    it('one active reservation per patron per book: a second is 409 ACTIVE_RESERVATION_EXISTS naming the first, also when both arrive at once', async () => {
      const first = await post('twice', { bookId: shelf[5] });
      expect(first.statusCode).toBe(201);
      const second = await post('twice', { bookId: shelf[5] });
      expect(second.statusCode).toBe(409);
      expect(second.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(second.json()).toMatchObject({ code: 'ACTIVE_RESERVATION_EXISTS', reservationId: first.json<{ reservationId: number }>().reservationId });
      expect(await countOf('twice')).toBe(1);
      const racing = await Promise.all(Array.from({ length: 5 }, () => post('twins', { bookId: shelf[6] })));
      expect(racing.map((r) => r.statusCode).sort()).toEqual([201, 409, 409, 409, 409]);
      expect(await countOf('twins')).toBe(1);
      // Another patron, or another book, is not concerned.
      expect((await post('twice', { bookId: shelf[6] })).statusCode).toBe(201);
    });

    it('out-of-stock and rejected reservations do not count', async () => {
      const created = await book.app.inject({ method: 'POST', url: '/books', payload: { bookName: 'Gone', quantity: 0 }, headers: staff });
      const gone = created.json<{ bookId: number }>().bookId;
      for (let i = 0; i < 4; i++) expect((await post('unlucky', { bookId: gone })).statusCode).toBe(409);
      expect((await post('unlucky', { bookId })).statusCode).toBe(201);
    });
  });

  describe('who may reserve', () => {
    it('only a signed-in customer: anonymous and a bad token are 401, staff 403, and nothing is stored or held', async () => {
      const before = await quantity();
      const count = async () => Number((await db.selectFrom('reservations').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
      const stored = await count();
      for (const [headers, status, code] of [
        [{}, 401, 'UNAUTHENTICATED'],
        [{ authorization: 'Bearer not.a.token' }, 401, 'INVALID_TOKEN'],
        [{ authorization: 'Basic YWxpY2U6YWxpY2U=' }, 401, 'INVALID_TOKEN'],
        [staff, 403, 'FORBIDDEN'],
      ] as [Record<string, string>, number, string][]) {
        const res = await reservation.app.inject({ method: 'POST', url: '/reservations', payload: { bookId }, headers });
        expect(res.statusCode, JSON.stringify(headers)).toBe(status);
        expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
        expect(res.json()).toMatchObject({ status, code });
        if (status === 401) expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="bstore"/);
      }
      expect(await count()).toBe(stored);
      expect(await quantity()).toBe(before);
    });

    it('the customer is the one the token names: an X-Customer-Id header changes nothing', async () => {
      const res = await post('token-holder', { bookId }, { 'x-customer-id': 'someone-else' });
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({ customerId: 'token-holder' });
      expect(await countOf('token-holder')).toBe(1);
      expect(await countOf('someone-else')).toBe(0);
    });
  });

  it('a second cancel of a reservation in bookCancel is a 409, not a second cancellation', async () => {
    const res = await post('canceller', { bookId });
    const id = res.json<{ reservationId: number }>().reservationId;
    const cancel = async () => reservation.app.inject({ method: 'PATCH', url: `/reservations/${id}`, payload: { status: 'bookCancel' }, headers: await as('canceller') });
    expect((await cancel()).statusCode).toBe(202);
    const second = await cancel();
    expect(second.statusCode).toBe(409);
    expect(second.json()).toMatchObject({ code: 'RESERVATION_NOT_CANCELLABLE' });
    const events = await db.selectFrom('outbox').select('type').where('type', '=', 'ReservationCancelRequested').where('envelope', '@>', JSON.stringify({ subject: String(id) }) as never).execute();
    expect(events).toHaveLength(1);
  });
});
