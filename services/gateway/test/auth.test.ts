import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, type JSONWebKeySet } from 'jose';
import { DEFAULT_AUDIENCE, DEMO_ISSUER, DEMO_SIGNING_KEY, DEMO_USERS, createServiceAuth, demoServiceAuth, publicJwk, type ServiceAuth } from '@bstore/platform';
import { createGatewayService, type GatewayConfig, type GatewayService } from '@bstore/gateway';
import { testLogger } from '../../../test/support/harness.ts';

/** Nothing listens there: these routes never proxy, and a proxied one would fail loudly. */
const NOWHERE = 'http://127.0.0.1:9';
const UPSTREAMS = { reservation: NOWHERE, book: NOWHERE, assignment: NOWHERE, customercenter: NOWHERE, notification: NOWHERE };
const gateways: GatewayService[] = [];

async function gateway(auth: ServiceAuth, config: Omit<GatewayConfig, 'upstreams'> = {}): Promise<string> {
  const service = await createGatewayService({ logger: testLogger(), auth }, { upstreams: UPSTREAMS, ...config });
  gateways.push(service);
  await service.start({ port: 0 });
  return service.url;
}

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown> & { keys?: unknown[] };
}

async function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

async function get(base: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${base}${path}`, { headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

const signIn = (base: string, username: string, password: string) => post(base, '/auth/token', { username, password });

let open: string; // the demo identity, no login limit
let limited: string; // 3 sign-in attempts a minute
let providerOnly: string; // verification keys only: tokens come from an identity provider

beforeAll(async () => {
  const demo = await demoServiceAuth();
  open = await gateway(demo, { loginAttemptsPerMinute: 0 });
  limited = await gateway(demo, { loginAttemptsPerMinute: 3 });
  const { privateKey } = await generateKeyPair('EdDSA', { extractable: true });
  const idpKey = { ...(await exportJWK(privateKey)), kid: 'idp-1' };
  const jwksOnly = await createServiceAuth({
    demo: false,
    issuer: 'https://idp.example',
    audience: DEFAULT_AUDIENCE,
    publicKeys: { keys: [publicJwk(idpKey)] },
    internalKey: 'a-test-internal-key-of-at-least-32-bytes!',
  });
  providerOnly = await gateway(jwksOnly);
});

afterAll(async () => {
  for (const g of gateways) await g.stop();
});

describe('POST /auth/token', () => {
  it.each(DEMO_USERS.map((u) => ({ ...u })))('$username signs in as a $role', async ({ username, password, role }) => {
    const res = await signIn(open, username, password);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('pragma')).toBe('no-cache');
    expect(Object.keys(res.body).sort()).toEqual(['access_token', 'expires_in', 'token_type']);
    expect(res.body.token_type).toBe('Bearer');
    expect(res.body.expires_in).toBe(900);

    const token = res.body.access_token as string;
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', kid: DEMO_SIGNING_KEY.kid });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ sub: username, role, iss: DEMO_ISSUER, aud: DEFAULT_AUDIENCE });
    expect((claims.exp as number) - (claims.iat as number)).toBe(900);

    // The gateway itself takes it: a customer is let past authentication and refused by role
    // (403, not 401); the librarian gets past the role check to the (unreachable) services.
    const deadLetters = await get(open, '/admin/dead-letters', { authorization: `Bearer ${token}` });
    if (role === 'customer') {
      expect(deadLetters.status).toBe(403);
      expect(deadLetters.body.code).toBe('FORBIDDEN');
    } else {
      expect(deadLetters.status, JSON.stringify(deadLetters.body)).toBe(503);
      expect(deadLetters.body.code).toBe('UPSTREAM_UNAVAILABLE');
    }
    // ...and the keys it publishes verify it.
    const jwks = (await get(open, '/.well-known/jwks.json')).body as unknown as JSONWebKeySet;
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: DEMO_ISSUER, audience: DEFAULT_AUDIENCE });
    expect(payload.sub).toBe(username);
  });

  it('a wrong password and an unknown user get the same 401 INVALID_CREDENTIALS', async () => {
    const wrong = await signIn(open, 'alice', 'not-alice');
    const unknown = await signIn(open, 'mallory', 'alice');
    const otherUsersPassword = await signIn(open, 'alice', 'bob');
    for (const res of [wrong, unknown, otherUsersPassword]) {
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('INVALID_CREDENTIALS');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(res.body).not.toHaveProperty('access_token');
    }
    const comparable = (res: Answer) => ({ status: res.status, body: { ...res.body, instance: undefined }, challenge: res.headers.get('www-authenticate') });
    expect(comparable(unknown)).toEqual(comparable(wrong));
    expect(comparable(otherUsersPassword)).toEqual(comparable(wrong));
  });

  it('a user name is case-sensitive', async () => {
    expect((await signIn(open, 'Alice', 'alice')).status).toBe(401);
  });

  it.each([
    ['no password', { username: 'alice' }],
    ['no user name', { password: 'alice' }],
    ['an empty body object', {}],
    ['an extra field', { username: 'alice', password: 'alice', role: 'staff' }],
    ['an extra scope field', { username: 'librarian', password: 'librarian', grant_type: 'password' }],
    ['an empty password', { username: 'alice', password: '' }],
    ['a number for a password', { username: 'alice', password: 12345 }],
    ['an array', [{ username: 'alice', password: 'alice' }]],
    ['malformed JSON', '{"username": "alice", '],
  ])('%s -> 400 problem+json, no token', async (_name, body) => {
    const res = await post(open, '/auth/token', body);
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body).not.toHaveProperty('access_token');
  });

  it('a bearer token sent to sign in is checked too: a bad one is 401 INVALID_TOKEN', async () => {
    const res = await post(open, '/auth/token', { username: 'alice', password: 'alice' }, { authorization: 'Bearer not.a.token' });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('INVALID_TOKEN');
  });

  it('after the limit of attempts for a user from one address: 429 with Retry-After, even with the right password', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await signIn(limited, 'bob', 'guess')).status);
    expect(statuses).toEqual([401, 401, 401]);
    for (const password of ['guess', 'bob']) {
      const res = await signIn(limited, 'bob', password);
      expect(res.status).toBe(429);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ code: 'RATE_LIMITED', limit: 3, scope: 'login' });
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(res.body).not.toHaveProperty('access_token');
    }
    // The limit is per user name: another user from the same address still signs in.
    expect((await signIn(limited, 'alice', 'alice')).status).toBe(200);
  });

  it('the user name of the limit is case-insensitive: changing case does not buy more guesses', async () => {
    for (let i = 0; i < 3; i++) await signIn(limited, 'librarian', 'guess');
    expect((await signIn(limited, 'LIBRARIAN', 'guess')).status).toBe(429);
    expect((await signIn(limited, 'Librarian', 'librarian')).status).toBe(429);
  });
});

describe('GET /.well-known/jwks.json', () => {
  it('publishes the public key only', async () => {
    const res = await get(open, '/.well-known/jwks.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toMatch(/public/);
    expect(res.body.keys).toHaveLength(1);
    const [key] = res.body.keys ?? [];
    expect(key).toEqual({ kty: 'OKP', crv: 'Ed25519', x: DEMO_SIGNING_KEY.x, kid: DEMO_SIGNING_KEY.kid, alg: 'EdDSA', use: 'sig' });
    for (const privatePart of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(key).not.toHaveProperty(privatePart);
    expect(JSON.stringify(res.body)).not.toContain(DEMO_SIGNING_KEY.d as string);
  });
});

describe('a gateway whose tokens come from an identity provider (JWKS only)', () => {
  it('POST /auth/token -> 404 TOKENS_FROM_IDENTITY_PROVIDER, for any user', async () => {
    for (const [username, password] of [
      ['alice', 'alice'],
      ['librarian', 'librarian'],
      ['nobody', 'x'],
    ]) {
      const res = await signIn(providerOnly, username as string, password as string);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('TOKENS_FROM_IDENTITY_PROVIDER');
    }
  });

  it('GET /.well-known/jwks.json -> 404 TOKENS_FROM_IDENTITY_PROVIDER', async () => {
    const res = await get(providerOnly, '/.well-known/jwks.json');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('TOKENS_FROM_IDENTITY_PROVIDER');
  });

  it('a demo token is refused there', async () => {
    const demoTokenRes = await signIn(open, 'librarian', 'librarian');
    const res = await get(providerOnly, '/admin/dead-letters', { authorization: `Bearer ${demoTokenRes.body.access_token as string}` });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('INVALID_TOKEN');
  });
});
