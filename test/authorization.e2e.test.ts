import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, generateKeyPair, importJWK, type JWTPayload } from 'jose';
import type { EmbeddedSystem } from '@bstore/launcher';
import { DEFAULT_AUDIENCE, DEMO_ISSUER, DEMO_SIGNING_KEY, demoServiceAuth } from '@bstore/platform';
import { as, asStaff, tokenFor } from './support/auth.ts';
import { eventually } from './support/harness.ts';
import { startTestSystem } from './support/system.ts';

/*
 * Design §10's authorization, proved against the whole embedded system: who may call what through
 * the gateway, that each service checks again on its own, and that no forged token gets in.
 */

type Caller = 'anonymous' | 'alice' | 'bob' | 'staff';
const CALLERS: readonly Caller[] = ['anonymous', 'alice', 'bob', 'staff'];

let system: EmbeddedSystem;

/** What the tests share, made in beforeAll: alice owns `aliceReservation`, bob `bobReservation`. */
const fx = {
  book: 0,
  aliceReservation: 0,
  bobReservation: 0,
  /** One fresh reservation of alice per caller, for that caller's cancel attempt in the matrix. */
  cancelTarget: {} as Record<Caller, number>,
};

async function headersOf(caller: Caller): Promise<Record<string, string>> {
  switch (caller) {
    case 'anonymous':
      return {};
    case 'alice':
      return as('alice');
    case 'bob':
      return as('bob');
    case 'staff':
      return asStaff();
  }
}

type Json = Record<string, unknown>;

interface Answer<T = Json> {
  status: number;
  headers: Headers;
  body: T;
}

/** One request; a Server-Sent Events answer is cancelled once its status is known. */
async function call<T = Json>(base: string, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Answer<T>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    await res.body?.cancel();
    return { status: res.status, headers: res.headers, body: null as T };
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // HTML (the docs page) stays text.
  }
  return { status: res.status, headers: res.headers, body: parsed as T };
}

const gw = async <T = Json>(caller: Caller, method: string, path: string, body?: unknown) => call<T>(system.urls.gateway, method, path, await headersOf(caller), body);

/** `{book}`, `{aliceReservation}`… in a path become the fixtures; `{cancelTarget}` is the caller's own target. */
function resolve(path: string, caller: Caller): string {
  return path
    .replace('{cancelTarget}', String(fx.cancelTarget[caller]))
    .replace(/\{(book|aliceReservation|bobReservation)\}/g, (_m, name: 'book' | 'aliceReservation' | 'bobReservation') => String(fx[name]));
}

interface Row {
  method: string;
  path: string;
  body?: (caller: Caller) => unknown;
  expect: Record<Caller, number>;
}

const row = (method: string, path: string, anonymous: number, alice: number, bob: number, staff: number, body?: (caller: Caller) => unknown): Row => ({
  method,
  path,
  ...(body ? { body } : {}),
  expect: { anonymous, alice, bob, staff },
});

let libraryCount = 0;

/**
 * Design §10 as a table: every public route × {anonymous, alice (the owner), bob (another
 * customer), the librarian (staff)} -> the status the gateway answers.
 */
const MATRIX: Row[] = [
  //   method   path                                          anon alice bob staff
  // public
  row('GET', '/books', 200, 200, 200, 200),
  row('GET', '/books/{book}', 200, 200, 200, 200),
  row('GET', '/libraries', 200, 200, 200, 200),
  row('GET', '/health/live', 200, 200, 200, 200),
  row('GET', '/health/ready', 200, 200, 200, 200),
  row('GET', '/openapi.json', 200, 200, 200, 200),
  row('GET', '/asyncapi.json', 200, 200, 200, 200),
  row('GET', '/docs', 200, 200, 200, 200),
  // reservations: customers reserve; the owner or staff read and cancel, another customer sees nothing
  row('POST', '/reservations', 401, 201, 201, 403, () => ({ bookId: fx.book })),
  row('GET', '/reservations', 401, 200, 200, 200),
  row('GET', '/reservations/{aliceReservation}', 401, 200, 404, 200),
  row('PATCH', '/reservations/{cancelTarget}', 401, 202, 404, 202, () => ({ status: 'bookCancel' })),
  // the read model: the same rule
  row('GET', '/reservationPages', 401, 200, 200, 200),
  row('GET', '/reservationPages/{aliceReservation}', 401, 200, 404, 200),
  row('GET', '/reservationPages/stream', 401, 200, 200, 200),
  // staff only
  row('POST', '/books', 401, 403, 403, 201, () => ({ bookName: 'Matrix Book', quantity: 1 })),
  row('POST', '/books/{book}/copies', 401, 403, 403, 200, () => ({ delta: 1 })),
  row('POST', '/libraries', 401, 403, 403, 201, (caller) => ({ name: `Matrix Branch ${caller} ${++libraryCount}` })),
  row('GET', '/assignments', 401, 403, 403, 200),
  row('GET', '/admin/dead-letters', 401, 403, 403, 200),
  row('GET', '/admin/dead-letters/book-999999', 401, 403, 403, 404),
  row('POST', '/admin/dead-letters/book-999999/replay', 401, 403, 403, 404),
];

const CASES = MATRIX.flatMap((r) => CALLERS.map((caller) => ({ ...r, caller, status: r.expect[caller] })));

async function reservationOf(id: number) {
  const r = await gw<{ status: string; customerId: string; bookId: number }>('staff', 'GET', `/reservations/${id}`);
  expect(r.status).toBe(200);
  return r.body;
}

async function bookOf(id: number) {
  const r = await gw<{ quantity: number; copies: number }>('anonymous', 'GET', `/books/${id}`);
  expect(r.status).toBe(200);
  return r.body;
}

async function reservationTotal(): Promise<number> {
  const r = await gw<{ total: number }>('staff', 'GET', '/reservations?limit=1');
  expect(r.status).toBe(200);
  return r.body.total;
}

/** A reservation of a title of its own (a patron has one active reservation per book). */
async function reserveAs(customer: 'alice' | 'bob'): Promise<number> {
  const title = await gw<{ bookId: number }>('staff', 'POST', '/books', { bookName: `Authorization Title ${Math.random()}`, quantity: 1 });
  expect(title.status).toBe(201);
  const r = await gw<{ reservationId: number }>(customer, 'POST', '/reservations', { bookId: title.body.bookId });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.reservationId;
}

function expectProblem(res: Answer, status: number, code: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body.code).toBe(code);
  expect(res.body.status).toBe(status);
}

/** 401 INVALID_TOKEN with an RFC 6750 challenge naming the error. */
function expectInvalidToken(res: Answer, error: 'invalid_token' | 'invalid_request' = 'invalid_token'): void {
  expectProblem(res, 401, 'INVALID_TOKEN');
  const challenge = res.headers.get('www-authenticate') ?? '';
  expect(challenge).toMatch(/^Bearer /);
  expect(challenge).toContain(`error="${error}"`);
}

beforeAll(async () => {
  system = await startTestSystem();
  const created = await gw<{ bookId: number }>('staff', 'POST', '/books', { bookName: 'Authorization Fixture', quantity: 50 });
  expect(created.status).toBe(201);
  fx.book = created.body.bookId;
  fx.aliceReservation = await reserveAs('alice');
  fx.bobReservation = await reserveAs('bob');
  for (const caller of CALLERS) fx.cancelTarget[caller] = await reserveAs('alice');
  // The read model catches up by events: wait until both pages exist.
  for (const id of [fx.aliceReservation, fx.bobReservation]) {
    await eventually(`page ${id}`, async () => ((await gw('staff', 'GET', `/reservationPages/${id}`)).status === 200 ? true : undefined));
  }
});

afterAll(async () => {
  await system?.stop();
});

describe('the authorization matrix through the gateway (design §10)', () => {
  it.each(CASES)('$method $path as $caller -> $status', async ({ method, path, body, caller, status }) => {
    const res = await gw(caller, method, resolve(path, caller), body?.(caller));
    expect(res.status, `${method} ${path} as ${caller}: ${JSON.stringify(res.body)}`).toBe(status);
    if (status === 401) {
      expectProblem(res, 401, 'UNAUTHENTICATED');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    }
    if (status === 403) expectProblem(res, 403, 'FORBIDDEN');
  });

  it('cancelling in the matrix changed only the owner\'s and staff\'s targets', async () => {
    expect((await reservationOf(fx.cancelTarget.anonymous)).status).toBe('bookReserved');
    expect((await reservationOf(fx.cancelTarget.bob)).status).toBe('bookReserved');
    expect(['bookCancel', 'bookCanceled']).toContain((await reservationOf(fx.cancelTarget.alice)).status);
    expect(['bookCancel', 'bookCanceled']).toContain((await reservationOf(fx.cancelTarget.staff)).status);
  });
});

describe('ownership through the gateway', () => {
  it('a customer\'s reservation list holds only their own, even when asking for another customer', async () => {
    for (const query of ['?limit=100', '?customerId=bob&limit=100']) {
      const mine = await gw<{ items: { reservationId: number; customerId: string }[] }>('alice', 'GET', `/reservations${query}`);
      expect(mine.status).toBe(200);
      const ids = mine.body.items.map((r) => r.reservationId);
      expect(ids).toContain(fx.aliceReservation);
      expect(ids).not.toContain(fx.bobReservation);
      expect(new Set(mine.body.items.map((r) => r.customerId))).toEqual(new Set(['alice']));
    }
    const bobs = await gw<{ items: { reservationId: number; customerId: string }[] }>('bob', 'GET', '/reservations?limit=100');
    expect(bobs.body.items.map((r) => r.reservationId)).toContain(fx.bobReservation);
    expect(bobs.body.items.map((r) => r.reservationId)).not.toContain(fx.aliceReservation);
    expect(new Set(bobs.body.items.map((r) => r.customerId))).toEqual(new Set(['bob']));
  });

  it('staff sees every customer\'s reservations and can filter by customer', async () => {
    const all = await gw<{ items: { reservationId: number }[] }>('staff', 'GET', '/reservations?limit=100');
    const ids = all.body.items.map((r) => r.reservationId);
    expect(ids).toEqual(expect.arrayContaining([fx.aliceReservation, fx.bobReservation]));
    const bobs = await gw<{ items: { reservationId: number; customerId: string }[] }>('staff', 'GET', '/reservations?customerId=bob&limit=100');
    expect(bobs.body.items.map((r) => r.reservationId)).toContain(fx.bobReservation);
    expect(new Set(bobs.body.items.map((r) => r.customerId))).toEqual(new Set(['bob']));
  });

  it('a customer\'s page list holds only their own; asking for another customer\'s gives none', async () => {
    const mine = await gw<{ items: { reservationId: number; customerId: string }[]; total: number }>('alice', 'GET', '/reservationPages?limit=100');
    expect(mine.status).toBe(200);
    expect(mine.body.items.map((p) => p.reservationId)).toContain(fx.aliceReservation);
    expect(mine.body.items.map((p) => p.reservationId)).not.toContain(fx.bobReservation);
    expect(new Set(mine.body.items.map((p) => p.customerId))).toEqual(new Set(['alice']));

    const others = await gw<{ items: unknown[]; total: number }>('alice', 'GET', '/reservationPages?customerId=bob');
    expect(others.status).toBe(200);
    expect(others.body).toMatchObject({ items: [], total: 0 });

    const staff = await gw<{ items: { reservationId: number; customerId: string }[] }>('staff', 'GET', '/reservationPages?customerId=bob&limit=100');
    expect(staff.body.items.map((p) => p.reservationId)).toContain(fx.bobReservation);
    expect(new Set(staff.body.items.map((p) => p.customerId))).toEqual(new Set(['bob']));
  });

  it('another customer\'s reservation and page answer 404, exactly like ids that do not exist', async () => {
    const theirs = await gw('bob', 'GET', `/reservations/${fx.aliceReservation}`);
    const missing = await gw('bob', 'GET', '/reservations/2000000000');
    expectProblem(theirs, 404, 'RESERVATION_NOT_FOUND');
    expectProblem(missing, 404, 'RESERVATION_NOT_FOUND');
    expectProblem(await gw('bob', 'GET', `/reservationPages/${fx.aliceReservation}`), 404, 'RESERVATION_PAGE_NOT_FOUND');
    expectProblem(await gw('alice', 'GET', `/reservationPages/${fx.bobReservation}`), 404, 'RESERVATION_PAGE_NOT_FOUND');
  });

  it('another customer cannot cancel: 404, and the reservation is unchanged', async () => {
    const before = await reservationOf(fx.aliceReservation);
    expectProblem(await gw('bob', 'PATCH', `/reservations/${fx.aliceReservation}`, { status: 'bookCancel' }), 404, 'RESERVATION_NOT_FOUND');
    const after = await reservationOf(fx.aliceReservation);
    expect(after).toEqual(before);
    expect(after.status).toBe('bookReserved');
  });

  it('staff may cancel a customer\'s reservation, which then completes', async () => {
    const id = await reserveAs('bob');
    const res = await gw('staff', 'PATCH', `/reservations/${id}`, { status: 'bookCancel' });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ reservationId: id, status: 'bookCancel' });
    await eventually(`reservation ${id} canceled`, async () => ((await reservationOf(id)).status === 'bookCanceled' ? true : undefined));
  });

  it('only staff check a copy out or in (BFLA): the owner gets 403 STAFF_ONLY and nothing changes; another patron cannot even tell it exists', async () => {
    const id = fx.aliceReservation;
    const before = await reservationOf(id);
    for (const status of ['bookLoaned', 'bookReturned']) {
      expectProblem(await gw('alice', 'PATCH', `/reservations/${id}`, { status }), 403, 'STAFF_ONLY');
      expect([403, 404]).toContain((await gw('bob', 'PATCH', `/reservations/${id}`, { status })).status);
    }
    expect(await reservationOf(id)).toEqual(before);
  });

  it('staff cannot reserve: 403 and nothing is created', async () => {
    const total = await reservationTotal();
    const before = await bookOf(fx.book);
    expectProblem(await gw('staff', 'POST', '/reservations', { bookId: fx.book }), 403, 'FORBIDDEN');
    expect(await reservationTotal()).toBe(total);
    expect(await bookOf(fx.book)).toEqual(before);
  });
});

describe('nothing sets a status or a quantity directly', () => {
  it.each(['bookReserved', 'bookCanceled', 'rejected', 'pending', 'bookWaiting', 'bookExpired', 'bookReserveReq'])('PATCH {status: %s} -> 400 STATUS_CHANGE_NOT_ALLOWED and unchanged, for the owner and for staff', async (status) => {
    const id = fx.aliceReservation;
    const before = await reservationOf(id);
    for (const caller of ['alice', 'staff'] as const) {
      expectProblem(await gw(caller, 'PATCH', `/reservations/${id}`, { status }), 400, 'STATUS_CHANGE_NOT_ALLOWED');
    }
    expect(await reservationOf(id)).toEqual(before);
  });

  it('PATCH with other fields than status is refused and changes nothing', async () => {
    const before = await reservationOf(fx.aliceReservation);
    const res = await gw('staff', 'PATCH', `/reservations/${fx.aliceReservation}`, { status: 'bookCancel', customerId: 'bob' });
    expect(res.status).toBe(400);
    expect(await reservationOf(fx.aliceReservation)).toEqual(before);
  });

  it('POST /books/{id}/copies by a customer -> 403, the quantity unchanged', async () => {
    const before = await bookOf(fx.book);
    for (const caller of ['alice', 'bob'] as const) {
      expectProblem(await gw(caller, 'POST', `/books/${fx.book}/copies`, { delta: 100 }), 403, 'FORBIDDEN');
    }
    expect(await bookOf(fx.book)).toEqual(before);
  });

  it('no route sets a book\'s quantity, not even for staff', async () => {
    const before = await bookOf(fx.book);
    for (const method of ['PUT', 'PATCH']) {
      const res = await gw('staff', method, `/books/${fx.book}`, { quantity: 9999 });
      expect([404, 405], `${method} /books/{id}: ${JSON.stringify(res.body)}`).toContain(res.status);
    }
    // copies take a delta only
    expect((await gw('staff', 'POST', `/books/${fx.book}/copies`, { quantity: 9999 })).status).toBe(400);
    expect(await bookOf(fx.book)).toEqual(before);
  });

  it('the gateway does not publish the internal hold route, whatever the token', async () => {
    const auth = await demoServiceAuth();
    const internal = { authorization: `Bearer ${await auth.internalFor('reservation').token()}` };
    const { bookId } = await reservationOf(fx.aliceReservation);
    const path = `/books/${bookId}/holds/${fx.aliceReservation}`;
    const before = await bookOf(bookId);
    for (const headers of [{}, await as('alice'), await asStaff()]) {
      expectProblem(await call(system.urls.gateway, 'PUT', path, headers, { customerId: 'alice' }), 404, 'ROUTE_NOT_FOUND');
    }
    // A service token is no user token: the gateway refuses it before routing.
    expectInvalidToken(await call(system.urls.gateway, 'PUT', path, internal, { customerId: 'alice' }));
    expect(await bookOf(bookId)).toEqual(before);
  });
});

describe('each service verifies on its own (called directly, bypassing the gateway)', () => {
  const direct = async <T = Json>(service: keyof EmbeddedSystem['urls'], caller: Caller | { authorization: string }, method: string, path: string, body?: unknown) =>
    call<T>(system.urls[service], method, path, typeof caller === 'string' ? await headersOf(caller) : caller, body);
  const BAD = { authorization: 'Bearer not.a.token' };

  const DIRECT: { service: keyof EmbeddedSystem['urls']; method: string; path: string; body?: () => unknown; caller: Caller | 'bad token'; status: number; code: string }[] = [
    { service: 'reservation', method: 'GET', path: '/reservations', caller: 'anonymous', status: 401, code: 'UNAUTHENTICATED' },
    { service: 'reservation', method: 'POST', path: '/reservations', body: () => ({ bookId: fx.book }), caller: 'anonymous', status: 401, code: 'UNAUTHENTICATED' },
    { service: 'reservation', method: 'POST', path: '/reservations', body: () => ({ bookId: fx.book }), caller: 'staff', status: 403, code: 'FORBIDDEN' },
    { service: 'reservation', method: 'GET', path: '/reservations/{aliceReservation}', caller: 'bob', status: 404, code: 'RESERVATION_NOT_FOUND' },
    { service: 'reservation', method: 'GET', path: '/reservations', caller: 'bad token', status: 401, code: 'INVALID_TOKEN' },
    { service: 'reservation', method: 'GET', path: '/admin/dead-letters', caller: 'alice', status: 403, code: 'FORBIDDEN' },
    { service: 'book', method: 'POST', path: '/books', body: () => ({ bookName: 'Direct', quantity: 1 }), caller: 'anonymous', status: 401, code: 'UNAUTHENTICATED' },
    { service: 'book', method: 'POST', path: '/books', body: () => ({ bookName: 'Direct', quantity: 1 }), caller: 'alice', status: 403, code: 'FORBIDDEN' },
    { service: 'book', method: 'POST', path: '/books/{book}/copies', body: () => ({ delta: 5 }), caller: 'bob', status: 403, code: 'FORBIDDEN' },
    { service: 'book', method: 'GET', path: '/books', caller: 'bad token', status: 401, code: 'INVALID_TOKEN' },
    { service: 'assignment', method: 'GET', path: '/assignments', caller: 'anonymous', status: 401, code: 'UNAUTHENTICATED' },
    { service: 'assignment', method: 'GET', path: '/assignments', caller: 'alice', status: 403, code: 'FORBIDDEN' },
    { service: 'assignment', method: 'POST', path: '/libraries', body: () => ({ name: 'Direct Branch' }), caller: 'bob', status: 403, code: 'FORBIDDEN' },
    { service: 'assignment', method: 'GET', path: '/libraries', caller: 'bad token', status: 401, code: 'INVALID_TOKEN' },
    { service: 'customercenter', method: 'GET', path: '/reservationPages', caller: 'anonymous', status: 401, code: 'UNAUTHENTICATED' },
    { service: 'customercenter', method: 'GET', path: '/reservationPages/{aliceReservation}', caller: 'bob', status: 404, code: 'RESERVATION_PAGE_NOT_FOUND' },
    { service: 'customercenter', method: 'GET', path: '/reservationPages', caller: 'bad token', status: 401, code: 'INVALID_TOKEN' },
    { service: 'customercenter', method: 'GET', path: '/admin/dead-letters', caller: 'bob', status: 403, code: 'FORBIDDEN' },
  ];

  it.each(DIRECT)('$service: $method $path as $caller -> $status $code', async ({ service, method, path, body, caller, status, code }) => {
    const totalBefore = await reservationTotal();
    const bookBefore = await bookOf(fx.book);
    const res = await direct(service, caller === 'bad token' ? BAD : caller, method, resolve(path, 'alice'), body?.());
    expectProblem(res, status, code);
    if (status === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(await reservationTotal()).toBe(totalBefore);
    expect(await bookOf(fx.book)).toEqual(bookBefore);
  });

  it('book\'s hold route takes a service token only: a user token (even staff\'s) is 401', async () => {
    const { bookId } = await reservationOf(fx.aliceReservation);
    const path = `/books/${bookId}/holds/${fx.aliceReservation}`;
    const before = await bookOf(bookId);
    for (const caller of ['anonymous', 'alice', 'staff'] as const) {
      const res = await direct('book', caller, 'PUT', path, { customerId: 'alice' });
      expect(res.status, `as ${caller}`).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    }
    // The control: reservation's own service token is let in (the hold exists already: idempotent 200).
    const auth = await demoServiceAuth();
    const ok = await direct('book', { authorization: `Bearer ${await auth.internalFor('reservation').token()}` }, 'PUT', path, { customerId: 'alice' });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(await bookOf(bookId)).toEqual(before);
  });

  it('a service token is no user token: refused on a public route', async () => {
    const auth = await demoServiceAuth();
    const internal = { authorization: `Bearer ${await auth.internalFor('reservation').token()}` };
    expectInvalidToken(await direct('reservation', internal, 'GET', '/reservations'));
    expectInvalidToken(await call(system.urls.gateway, 'GET', '/reservations', internal));
  });
});

// ---------------------------------------------------------------------------------------------
// Token attacks
// ---------------------------------------------------------------------------------------------

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const validClaims = (): JWTPayload => ({ iss: DEMO_ISSUER, aud: DEFAULT_AUDIENCE, sub: 'alice', role: 'customer', iat: now(), exp: now() + 600 });
const DEMO_HEADER = { alg: 'EdDSA', kid: DEMO_SIGNING_KEY.kid as string, typ: 'JWT' };

async function signDemo(claims: JWTPayload, header: Record<string, unknown> = DEMO_HEADER): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(await importJWK(DEMO_SIGNING_KEY, 'EdDSA'));
}

/** A valid token with its payload replaced, keeping the original signature. */
async function tampered(change: (claims: Record<string, unknown>) => void): Promise<string> {
  const [header, payload, signature] = (await tokenFor('alice')).split('.');
  const claims = JSON.parse(Buffer.from(payload as string, 'base64url').toString()) as Record<string, unknown>;
  change(claims);
  return `${header}.${b64(claims)}.${signature}`;
}

const without = (name: keyof JWTPayload): JWTPayload => {
  const claims = validClaims();
  delete claims[name];
  return claims;
};

/** Each forged or broken credential, as the Authorization header it is sent in. */
const ATTACKS: { name: string; header: () => Promise<string>; error?: 'invalid_request' }[] = [
  { name: 'expired (beyond the 30 s tolerance)', header: async () => `Bearer ${await signDemo({ ...validClaims(), iat: now() - 3600, exp: now() - 120 })}` },
  { name: 'tampered payload: sub changed to bob', header: async () => `Bearer ${await tampered((c) => (c.sub = 'bob'))}` },
  { name: 'tampered payload: role raised to staff', header: async () => `Bearer ${await tampered((c) => (c.role = 'staff'))}` },
  { name: 'wrong audience', header: async () => `Bearer ${await signDemo({ ...validClaims(), aud: 'another-api' })}` },
  { name: 'wrong issuer', header: async () => `Bearer ${await signDemo({ ...validClaims(), iss: 'https://evil.example' })}` },
  { name: 'alg none (unsigned)', header: async () => `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64(validClaims())}.` },
  {
    name: 'HS256 signed with the demo public key bytes (key confusion)',
    header: async () => `Bearer ${await new SignJWT(validClaims()).setProtectedHeader({ alg: 'HS256', kid: DEMO_HEADER.kid, typ: 'JWT' }).sign(Buffer.from(DEMO_SIGNING_KEY.x as string, 'base64url'))}`,
  },
  {
    name: 'HS256 signed with the demo public key PEM (key confusion)',
    header: async () => {
      const { d: _d, ...pub } = DEMO_SIGNING_KEY;
      const pem = createPublicKey({ key: pub as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      return `Bearer ${await new SignJWT(validClaims()).setProtectedHeader({ alg: 'HS256', kid: DEMO_HEADER.kid, typ: 'JWT' }).sign(Buffer.from(pem))}`;
    },
  },
  {
    name: 'signed by another Ed25519 key with the demo kid',
    header: async () => {
      const { privateKey } = await generateKeyPair('EdDSA');
      return `Bearer ${await new SignJWT(validClaims()).setProtectedHeader(DEMO_HEADER).sign(privateKey)}`;
    },
  },
  { name: 'no sub', header: async () => `Bearer ${await signDemo(without('sub'))}` },
  { name: 'no exp', header: async () => `Bearer ${await signDemo(without('exp'))}` },
  { name: 'not a JWT at all', header: async () => 'Bearer garbage' },
  { name: '"Bearer" without a token', header: async () => 'Bearer', error: 'invalid_request' },
  { name: 'Basic credentials', header: async () => 'Basic eHl6', error: 'invalid_request' },
  { name: 'two tokens in one header', header: async () => `Bearer ${await tokenFor('alice')} Bearer ${await tokenFor('bob')}`, error: 'invalid_request' },
  { name: 'two Authorization values', header: async () => `Bearer ${await tokenFor('alice')}, Bearer ${await tokenFor('bob')}`, error: 'invalid_request' },
];

describe('token attacks', () => {
  let totalBefore: number;
  let bookBefore: { quantity: number; copies: number };

  beforeAll(async () => {
    totalBefore = await reservationTotal();
    bookBefore = await bookOf(fx.book);
  });

  it('the control: a token built the same way but honest is accepted', async () => {
    const res = await call(system.urls.gateway, 'GET', '/reservations', { authorization: `Bearer ${await signDemo(validClaims())}` });
    expect(res.status).toBe(200);
    const direct = await call(system.urls.reservation, 'GET', '/reservations', { authorization: `Bearer ${await signDemo(validClaims())}` });
    expect(direct.status).toBe(200);
  });

  describe.each([
    ['through the gateway', () => system.urls.gateway],
    ['directly at reservation', () => system.urls.reservation],
  ])('%s', (_where, base) => {
    it.each(ATTACKS)('$name -> 401 INVALID_TOKEN, nothing reserved', async ({ header, error }) => {
      const authorization = await header();
      const reserve = await call(base(), 'POST', '/reservations', { authorization }, { bookId: fx.book });
      expectInvalidToken(reserve, error ?? 'invalid_token');
      // Not even a public route is answered with a bad token.
      expectInvalidToken(await call(base(), 'GET', '/reservations', { authorization }), error ?? 'invalid_token');
    });
  });

  it('a role raised by tampering opens no staff route (gateway and assignment directly)', async () => {
    const authorization = `Bearer ${await tampered((c) => (c.role = 'staff'))}`;
    expectInvalidToken(await call(system.urls.gateway, 'GET', '/assignments', { authorization }));
    expectInvalidToken(await call(system.urls.assignment, 'GET', '/assignments', { authorization }));
    expectInvalidToken(await call(system.urls.book, 'POST', `/books/${fx.book}/copies`, { authorization }, { delta: 100 }));
  });

  it('nothing changed: no reservation created, the book\'s copies untouched', async () => {
    expect(await reservationTotal()).toBe(totalBefore);
    expect(await bookOf(fx.book)).toEqual(bookBefore);
  });
});
