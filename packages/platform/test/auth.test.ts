import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, type JSONWebKeySet, type JWK } from 'jose';
import {
  DEFAULT_AUDIENCE,
  DEMO_ISSUER,
  DEMO_SIGNING_KEY,
  InternalCallAuth,
  InvalidTokenError,
  TokenIssuer,
  TokenKeysUnavailableError,
  TokenVerifier,
  UserDirectory,
  VERIFIED_TOKEN_CACHE_MS,
  VERIFIED_TOKEN_CACHE_SIZE,
  VerifiedTokens,
  createHttpApp,
  createServiceAuth,
  demoServiceAuth,
  demoToken,
  hashPassword,
  isPasswordHash,
  parseUsers,
  publicJwk,
  requireIdentity,
  verifyPassword,
  type UserRecord,
} from '@bstore/platform';
import { testLogger } from '../../../test/support/harness.ts';

const INTERNAL_KEY = 'a-test-internal-key-of-at-least-32-bytes!';

/** A fresh private JWK with a kid, as `npm run auth -- generate-key` makes. */
async function privateKey(kid: string, alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<JWK> {
  const { privateKey: key } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(key)), kid };
}

async function issuerWith(signingKey: JWK, issuer = 'https://bstore.test', audience = 'bstore-api'): Promise<TokenIssuer> {
  return TokenIssuer.create({ issuer, audience, signingKey, ttlSeconds: 120 });
}

function verifierOf(keys: JWK[], extra: Partial<ConstructorParameters<typeof TokenVerifier>[0]> = {}): TokenVerifier {
  return new TokenVerifier({ issuer: 'https://bstore.test', audience: 'bstore-api', keys: { jwks: { keys: keys.map(publicJwk) } }, ...extra });
}

describe('passwords', () => {
  let hash: string;
  beforeAll(async () => {
    hash = await hashPassword('correct horse battery staple');
  });

  it('a hash is scrypt$N$r$p$salt$key and verifies its own password only', async () => {
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    expect(isPasswordHash(hash)).toBe(true);
    expect(await verifyPassword('correct horse battery staple', hash)).toBe(true);
    expect(await verifyPassword('correct horse battery stapl', hash)).toBe(false);
    expect(await verifyPassword('', hash)).toBe(false);
  });

  it('the same password hashes differently each time (a random salt), both verify', async () => {
    const again = await hashPassword('correct horse battery staple');
    expect(again).not.toBe(hash);
    expect(await verifyPassword('correct horse battery staple', again)).toBe(true);
  });

  it('a password is compared in Unicode normal form (NFC)', async () => {
    const composed = await hashPassword('caf\u00e9');
    expect(await verifyPassword('cafe\u0301', composed)).toBe(true);
  });

  it.each([
    ['plain text', 'correct horse battery staple'],
    ['empty', ''],
    ['another algorithm', hash => hash.replace(/^scrypt/, 'bcrypt')],
    ['N not a power of two', hash => hash.replace('$16384$', '$16383$')],
    ['N too small', hash => hash.replace('$16384$', '$512$')],
    ['salt too short', () => 'scrypt$16384$8$1$abc$AAAAAAAAAAAAAAAAAAAAAAAA'],
    ['missing the key', hash => hash.split('$').slice(0, 5).join('$')],
    ['a character outside base64url', hash => `${hash}!`],
  ] as [string, string | ((hash: string) => string)][])('a malformed hash (%s) never matches', async (_name, make) => {
    const malformed = typeof make === 'string' ? make : make(hash);
    expect(isPasswordHash(malformed)).toBe(false);
    expect(await verifyPassword('correct horse battery staple', malformed)).toBe(false);
  });
});

describe('users file', () => {
  let hash: string;
  beforeAll(async () => {
    hash = await hashPassword('pw');
  });

  it('reads valid users', () => {
    const users = parseUsers(JSON.stringify([{ username: 'alice', role: 'customer', passwordHash: hash }, { username: 'lib.rarian@x', role: 'staff', passwordHash: hash }]));
    expect(users).toEqual([
      { username: 'alice', role: 'customer', passwordHash: hash },
      { username: 'lib.rarian@x', role: 'staff', passwordHash: hash },
    ]);
  });

  it.each([
    ['bad JSON', () => '[{"username": ', /not valid JSON/],
    ['not an array', () => '{}', /non-empty JSON array/],
    ['an empty array', () => '[]', /non-empty JSON array/],
    ['a null entry', () => '[null]', /users\[0\]\.username/],
    ['a bad user name', (h: string) => JSON.stringify([{ username: 'a b', role: 'customer', passwordHash: h }]), /users\[0\]\.username must be/],
    [
      'a duplicate name',
      (h: string) => JSON.stringify([{ username: 'alice', role: 'customer', passwordHash: h }, { username: 'alice', role: 'staff', passwordHash: h }]),
      /users\[1\]\.username "alice" appears twice/,
    ],
    ['a bad role', (h: string) => JSON.stringify([{ username: 'alice', role: 'admin', passwordHash: h }]), /users\[0\]\.role must be "customer" or "staff"/],
    ['a missing role', (h: string) => JSON.stringify([{ username: 'alice', passwordHash: h }]), /users\[0\]\.role/],
    ['a plain-text password', () => JSON.stringify([{ username: 'alice', role: 'customer', passwordHash: 'hunter2-plain' }]), /users\[0\]\.passwordHash is not a hash/],
    ['a broken hash', (h: string) => JSON.stringify([{ username: 'alice', role: 'customer', passwordHash: h.replace('$16384$', '$1000$') }]), /users\[0\]\.passwordHash/],
  ] as [string, (hash: string) => string, RegExp][])('refuses %s, naming the entry', (_name, json, message) => {
    expect(() => parseUsers(json(hash))).toThrow(message);
  });

  it('never echoes a hash in its error', () => {
    const secretish = 'hunter2-plain-text-password';
    let message = '';
    try {
      parseUsers(JSON.stringify([{ username: 'alice', role: 'customer', passwordHash: secretish }]));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/passwordHash/);
    expect(message).not.toContain(secretish);
  });
});

describe('UserDirectory', () => {
  let directory: UserDirectory;
  beforeAll(async () => {
    const users: UserRecord[] = [
      { username: 'alice', role: 'customer', passwordHash: await hashPassword('alice-pw') },
      { username: 'librarian', role: 'staff', passwordHash: await hashPassword('lib-pw') },
    ];
    directory = new UserDirectory(users);
  });

  it('authenticates each user with their own password, to their role', async () => {
    expect(directory.size).toBe(2);
    expect(await directory.authenticate('alice', 'alice-pw')).toEqual({ customerId: 'alice', role: 'customer' });
    expect(await directory.authenticate('librarian', 'lib-pw')).toEqual({ customerId: 'librarian', role: 'staff' });
  });

  it('refuses a wrong password, another user\'s password and an unknown user alike', async () => {
    expect(await directory.authenticate('alice', 'wrong')).toBeUndefined();
    expect(await directory.authenticate('alice', 'lib-pw')).toBeUndefined();
    expect(await directory.authenticate('mallory', 'alice-pw')).toBeUndefined();
    expect(await directory.authenticate('ALICE', 'alice-pw')).toBeUndefined();
  });
});

describe('TokenIssuer and TokenVerifier', () => {
  let edKey: JWK;
  let ecKey: JWK;
  beforeAll(async () => {
    edKey = await privateKey('ed-1');
    ecKey = await privateKey('ec-1', 'ES256');
  });

  it.each([
    ['Ed25519', 'EdDSA', () => edKey],
    ['P-256', 'ES256', () => ecKey],
  ] as const)('round trip with %s (%s): the claims say who and what, the verifier agrees', async (_name, alg, key) => {
    const issuer = await issuerWith(key());
    const verifier = verifierOf([key()]);
    for (const identity of [{ customerId: 'alice', role: 'customer' }, { customerId: 'librarian', role: 'staff' }] as const) {
      const issued = await issuer.issue(identity);
      expect(issued).toMatchObject({ token_type: 'Bearer', expires_in: 120 });
      const header = decodeProtectedHeader(issued.access_token);
      expect(header).toMatchObject({ alg, kid: key().kid, typ: 'JWT' });
      const claims = decodeJwt(issued.access_token);
      expect(claims).toMatchObject({ iss: 'https://bstore.test', aud: 'bstore-api', sub: identity.customerId, role: identity.role });
      expect((claims.exp as number) - (claims.iat as number)).toBe(120);
      expect(typeof claims.jti).toBe('string');
      expect(await verifier.verify(issued.access_token)).toEqual(identity);
    }
  });

  it('every token has its own jti', async () => {
    const issuer = await issuerWith(edKey);
    const a = decodeJwt((await issuer.issue({ customerId: 'alice', role: 'customer' })).access_token);
    const b = decodeJwt((await issuer.issue({ customerId: 'alice', role: 'customer' })).access_token);
    expect(a.jti).not.toBe(b.jti);
  });

  it('a custom role claim holding an array, with a custom staff role (an OIDC provider\'s tokens)', async () => {
    const { privateKey: key } = await generateKeyPair('EdDSA', { extractable: true });
    const jwk = { ...(await exportJWK(key)), kid: 'idp-1' };
    const idpToken = (roles: unknown) =>
      new SignJWT({ groups: roles })
        .setProtectedHeader({ alg: 'EdDSA', kid: 'idp-1' })
        .setIssuer('https://bstore.test')
        .setAudience(['other', 'bstore-api'])
        .setSubject('carol')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(key);
    const verifier = verifierOf([jwk], { roleClaim: 'groups', staffRole: 'librarians' });
    expect(await verifier.verify(await idpToken(['readers', 'librarians']))).toEqual({ customerId: 'carol', role: 'staff' });
    expect(await verifier.verify(await idpToken('librarians'))).toEqual({ customerId: 'carol', role: 'staff' });
    expect(await verifier.verify(await idpToken(['readers']))).toEqual({ customerId: 'carol', role: 'customer' });
    expect(await verifier.verify(await idpToken(['staff']))).toEqual({ customerId: 'carol', role: 'customer' });
    // The default verifier reads `role`, which these tokens lack: a customer.
    expect(await verifierOf([jwk]).verify(await idpToken(['librarians']))).toEqual({ customerId: 'carol', role: 'customer' });
  });

  it('refuses a subject that is no usable customer id', async () => {
    const { privateKey: key } = await generateKeyPair('EdDSA', { extractable: true });
    const jwk = { ...(await exportJWK(key)), kid: 'k' };
    const token = await new SignJWT({ role: 'staff' }).setProtectedHeader({ alg: 'EdDSA', kid: 'k' }).setIssuer('https://bstore.test').setAudience('bstore-api').setSubject('../../etc').setExpirationTime('5m').sign(key);
    await expect(verifierOf([jwk]).verify(token)).rejects.toThrow(/subject/);
  });

  it.each([
    ['another issuer', { issuer: 'https://other.test' }, /iss/],
    ['another audience', { audience: 'other-api' }, /aud/],
  ])('refuses a token of %s', async (_name, differs, message) => {
    const issued = await (await TokenIssuer.create({ issuer: 'https://bstore.test', audience: 'bstore-api', signingKey: edKey, ...differs })).issue({ customerId: 'alice', role: 'customer' });
    const err = await verifierOf([edKey]).verify(issued.access_token).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidTokenError);
    expect((err as Error).message).toMatch(message);
  });

  it('refuses an expired token, within tolerance accepts it', async () => {
    const issuer = await issuerWith(edKey);
    const expired = (await issuer.issue({ customerId: 'alice', role: 'customer' }, -60)).access_token;
    await expect(verifierOf([edKey]).verify(expired)).rejects.toThrow(/expired/);
    const justExpired = (await issuer.issue({ customerId: 'alice', role: 'customer' }, -5)).access_token;
    expect(await verifierOf([edKey]).verify(justExpired)).toEqual({ customerId: 'alice', role: 'customer' });
    await expect(verifierOf([edKey], { clockToleranceSeconds: 0 }).verify(justExpired)).rejects.toThrow(/expired/);
  });

  it('an issuer needs a private key with a kid', async () => {
    const { kid: _kid, ...noKid } = edKey;
    await expect(TokenIssuer.create({ issuer: 'i', audience: 'a', signingKey: noKid })).rejects.toThrow(/kid/);
    await expect(TokenIssuer.create({ issuer: 'i', audience: 'a', signingKey: publicJwk(edKey) })).rejects.toThrow(/public key/);
  });

  it('publicJwk keeps the public half only', async () => {
    const pub = publicJwk(edKey);
    expect(pub).toEqual({ kty: 'OKP', crv: 'Ed25519', x: edKey.x, kid: 'ed-1', alg: 'EdDSA', use: 'sig' });
    expect(publicJwk(ecKey)).not.toHaveProperty('d');
    expect(() => publicJwk({ kty: 'oct', k: 'c2VjcmV0' })).toThrow(/symmetric/);
  });

  describe('key rotation', () => {
    let oldKey: JWK;
    let newKey: JWK;
    beforeAll(async () => {
      oldKey = await privateKey('2024-old');
      newKey = await privateKey('2025-new');
    });

    it('a verifier with both keys in its JWKS accepts tokens of either kid; once the old key is removed, old tokens fail', async () => {
      const oldToken = (await (await issuerWith(oldKey)).issue({ customerId: 'alice', role: 'customer' })).access_token;
      const newToken = (await (await issuerWith(newKey)).issue({ customerId: 'bob', role: 'staff' })).access_token;
      const during = verifierOf([oldKey, newKey]);
      expect(await during.verify(oldToken)).toEqual({ customerId: 'alice', role: 'customer' });
      expect(await during.verify(newToken)).toEqual({ customerId: 'bob', role: 'staff' });

      const after = verifierOf([newKey]);
      expect(await after.verify(newToken)).toEqual({ customerId: 'bob', role: 'staff' });
      const err = await after.verify(oldToken).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidTokenError);
      expect((err as Error).message).toMatch(/not signed by a trusted key/);
    });

    it('a token claiming the new kid but signed by the old key is refused', async () => {
      const forged = (await (await issuerWith({ ...oldKey, kid: '2025-new' })).issue({ customerId: 'alice', role: 'staff' })).access_token;
      await expect(verifierOf([oldKey, newKey]).verify(forged)).rejects.toBeInstanceOf(InvalidTokenError);
    });
  });
});

describe('remembering verified tokens', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a token verified once is still refused once it has expired (past the tolerance)', async () => {
    const key = await privateKey('cache-1');
    const token = (await (await issuerWith(key)).issue({ customerId: 'alice', role: 'customer' })).access_token;
    const verifier = verifierOf([key]);
    expect(await verifier.verify(token)).toEqual({ customerId: 'alice', role: 'customer' });
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 20_000);
    expect(await verifier.verify(token)).toEqual({ customerId: 'alice', role: 'customer' });
    // 120 s of lifetime and 30 s of tolerance: gone at 151 s, whatever was remembered.
    vi.setSystemTime(Date.now() + 131_000);
    await expect(verifier.verify(token)).rejects.toThrow(/expired/);
  });

  it('what the caller gets is its own copy', async () => {
    const key = await privateKey('cache-2');
    const token = (await (await issuerWith(key)).issue({ customerId: 'alice', role: 'customer' })).access_token;
    const verifier = verifierOf([key]);
    const first = await verifier.verify(token);
    (first as { role: string }).role = 'staff';
    expect(await verifier.verify(token)).toEqual({ customerId: 'alice', role: 'customer' });
  });

  it('a refused token is refused every time, and a token of another verifier\'s key is not taken from its cache', async () => {
    const key = await privateKey('cache-3');
    const other = await privateKey('cache-4');
    const token = (await (await issuerWith(key)).issue({ customerId: 'alice', role: 'staff' })).access_token;
    expect(await verifierOf([key]).verify(token)).toEqual({ customerId: 'alice', role: 'staff' });
    const stranger = verifierOf([other]);
    await expect(stranger.verify(token)).rejects.toBeInstanceOf(InvalidTokenError);
    await expect(stranger.verify(token)).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('an internal token verified once is refused once it has expired', async () => {
    const book = new InternalCallAuth(INTERNAL_KEY, 'book');
    const token = await new InternalCallAuth(INTERNAL_KEY, 'reservation').token();
    expect(await book.verify(token)).toBe('reservation');
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 331_000);
    await expect(book.verify(token)).rejects.toThrow(/exp/);
  });

  it('an entry lasts at most a minute and never past exp plus the tolerance; the oldest go first when full', () => {
    const cache = new VerifiedTokens<string>();
    const now = 1_000_000_000_000;
    cache.set('a', 'A', now / 1000 + 3600, 30, now);
    expect(cache.get('a', now + VERIFIED_TOKEN_CACHE_MS - 1)).toBe('A');
    expect(cache.get('a', now + VERIFIED_TOKEN_CACHE_MS)).toBeUndefined();
    cache.set('b', 'B', now / 1000 + 5, 30, now);
    expect(cache.get('b', now + 34_999)).toBe('B');
    expect(cache.get('b', now + 35_000)).toBeUndefined();
    cache.set('c', 'C', now / 1000 - 31, 30, now);
    expect(cache.get('c', now)).toBeUndefined();
    for (let i = 0; i < VERIFIED_TOKEN_CACHE_SIZE + 5; i++) cache.set(`t${i}`, 'T', now / 1000 + 3600, 30, now);
    expect(cache.size).toBe(VERIFIED_TOKEN_CACHE_SIZE);
    expect(cache.get('t0', now)).toBeUndefined();
    expect(cache.get(`t${VERIFIED_TOKEN_CACHE_SIZE + 4}`, now)).toBe('T');
  });
});

describe('createServiceAuth', () => {
  it('demo: the published key and users, and a verifier that accepts demo tokens', async () => {
    const auth = await createServiceAuth({ demo: true, tokenTtlSeconds: 60 });
    expect(auth.demo).toBe(true);
    expect(auth.tokens?.users.size).toBe(3);
    expect(await auth.tokens?.users.authenticate('librarian', 'librarian')).toEqual({ customerId: 'librarian', role: 'staff' });
    expect(auth.tokens?.jwks.keys).toEqual([publicJwk(DEMO_SIGNING_KEY)]);
    const issued = await auth.tokens!.issuer.issue({ customerId: 'bob', role: 'customer' });
    expect(issued.expires_in).toBe(60);
    expect(decodeJwt(issued.access_token)).toMatchObject({ iss: DEMO_ISSUER, aud: DEFAULT_AUDIENCE });
    expect(await auth.verifier.verify(issued.access_token)).toEqual({ customerId: 'bob', role: 'customer' });
    // demoToken and demoServiceAuth (built once per process) agree with it
    expect(await demoServiceAuth()).toBe(await demoServiceAuth());
    expect(await auth.verifier.verify((await demoToken({ customerId: 'alice', role: 'staff' })).access_token)).toEqual({ customerId: 'alice', role: 'staff' });
  });

  it('configured with a signing key and users: issues and verifies its own tokens, not the demo\'s', async () => {
    const signingKey = await privateKey('prod-1');
    const users = [{ username: 'dana', role: 'staff' as const, passwordHash: await hashPassword('dana-pw') }];
    const auth = await createServiceAuth({ demo: false, issuer: 'https://bstore.example', audience: 'bstore-api', signingKey, users, internalKey: INTERNAL_KEY });
    expect(auth.demo).toBe(false);
    expect(await auth.tokens?.users.authenticate('dana', 'dana-pw')).toEqual({ customerId: 'dana', role: 'staff' });
    expect(await auth.tokens?.users.authenticate('alice', 'alice')).toBeUndefined();
    expect(auth.tokens?.jwks.keys).toEqual([publicJwk(signingKey)]);
    expect(auth.tokens?.jwks.keys[0]).not.toHaveProperty('d');
    const own = (await auth.tokens!.issuer.issue({ customerId: 'dana', role: 'staff' })).access_token;
    expect(await auth.verifier.verify(own)).toEqual({ customerId: 'dana', role: 'staff' });
    await expect(auth.verifier.verify((await demoToken({ customerId: 'alice', role: 'staff' })).access_token)).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('configured without any key throws', async () => {
    await expect(createServiceAuth({ demo: false, issuer: 'https://bstore.example', audience: 'bstore-api', internalKey: INTERNAL_KEY })).rejects.toThrow(/no key to verify tokens/);
    await expect(createServiceAuth({ demo: false, issuer: 'https://bstore.example', audience: 'bstore-api', publicKeys: { keys: [] }, internalKey: INTERNAL_KEY })).rejects.toThrow(
      /no key to verify tokens/,
    );
  });

  it('configured with public keys only: verifies, issues nothing, and refuses a token signed with the demo key even with the right issuer', async () => {
    const idpKey = await privateKey('idp-1');
    const auth = await createServiceAuth({ demo: false, issuer: DEMO_ISSUER, audience: DEFAULT_AUDIENCE, publicKeys: { keys: [idpKey] }, internalKey: INTERNAL_KEY });
    expect(auth.tokens).toBeUndefined();
    const idpToken = (await (await TokenIssuer.create({ issuer: DEMO_ISSUER, audience: DEFAULT_AUDIENCE, signingKey: idpKey })).issue({ customerId: 'erin', role: 'customer' })).access_token;
    expect(await auth.verifier.verify(idpToken)).toEqual({ customerId: 'erin', role: 'customer' });
    const demoSigned = (await demoToken({ customerId: 'alice', role: 'staff' })).access_token;
    const err = await auth.verifier.verify(demoSigned).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidTokenError);
    expect((err as Error).message).toMatch(/trusted key/);
  });

  it('configured with a signing key but no users issues nothing, yet verifies its key\'s tokens', async () => {
    const signingKey = await privateKey('gw-1');
    const auth = await createServiceAuth({ demo: false, issuer: 'https://bstore.example', audience: 'bstore-api', signingKey, internalKey: INTERNAL_KEY });
    expect(auth.tokens).toBeUndefined();
    const token = (await (await TokenIssuer.create({ issuer: 'https://bstore.example', audience: 'bstore-api', signingKey })).issue({ customerId: 'x', role: 'customer' })).access_token;
    expect(await auth.verifier.verify(token)).toEqual({ customerId: 'x', role: 'customer' });
  });

  it('custom roleClaim and staffRole reach the verifier', async () => {
    const idpKey = await privateKey('idp-2');
    const auth = await createServiceAuth({ demo: false, issuer: 'https://idp', audience: 'bstore-api', publicKeys: { keys: [publicJwk(idpKey)] }, roleClaim: 'roles', staffRole: 'admin', internalKey: INTERNAL_KEY });
    const key = await importJWK(idpKey, 'EdDSA');
    const token = await new SignJWT({ roles: ['admin'] }).setProtectedHeader({ alg: 'EdDSA', kid: 'idp-2' }).setIssuer('https://idp').setAudience('bstore-api').setSubject('root').setExpirationTime('5m').sign(key);
    expect(await auth.verifier.verify(token)).toEqual({ customerId: 'root', role: 'staff' });
  });

  it('a configured internal key is the one services share; another key\'s tokens are refused', async () => {
    const a = await createServiceAuth({ demo: false, issuer: 'i', audience: 'a', publicKeys: { keys: [await privateKey('k')] }, internalKey: INTERNAL_KEY });
    const b = await createServiceAuth({ demo: false, issuer: 'i', audience: 'a', publicKeys: { keys: [await privateKey('k')] }, internalKey: `${INTERNAL_KEY}-other` });
    const token = await a.internalFor('reservation').token();
    expect(await a.internal.verify(token)).toBe('reservation');
    await expect(b.internal.verify(token)).rejects.toThrow();
    await expect((await demoServiceAuth()).internal.verify(token)).rejects.toThrow();
  });
});

describe('InternalCallAuth', () => {
  it('round trip: the token names the calling service, and is reused until renewal', async () => {
    const reservation = new InternalCallAuth(INTERNAL_KEY, 'reservation');
    const book = new InternalCallAuth(INTERNAL_KEY, 'book');
    const token = await reservation.token();
    expect(await reservation.token()).toBe(token);
    expect(await book.verify(token)).toBe('reservation');
    expect(decodeProtectedHeader(token).alg).toBe('HS256');
    expect(decodeJwt(token)).toMatchObject({ iss: 'bstore-internal', aud: 'bstore-internal', sub: 'reservation' });
  });

  it('a user token is refused by the internal check, and an internal token by the user check', async () => {
    const internal = new InternalCallAuth(INTERNAL_KEY, 'reservation');
    const userToken = (await demoToken({ customerId: 'librarian', role: 'staff' })).access_token;
    await expect(internal.verify(userToken)).rejects.toThrow();
    const demo = await demoServiceAuth();
    await expect(demo.internal.verify(userToken)).rejects.toThrow();
    await expect(demo.verifier.verify(await demo.internalFor('reservation').token())).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('refuses an HS256 token with the right key but the user issuer and audience', async () => {
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(DEMO_ISSUER)
      .setAudience(DEFAULT_AUDIENCE)
      .setSubject('reservation')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(INTERNAL_KEY));
    await expect(new InternalCallAuth(INTERNAL_KEY, 'book').verify(forged)).rejects.toThrow();
  });

  it('a key shorter than 32 bytes throws', () => {
    expect(() => new InternalCallAuth('too-short', 'reservation')).toThrow(/at least 32 bytes/);
    expect(() => new InternalCallAuth('x'.repeat(31), 'reservation')).toThrow(/32 bytes/);
    expect(() => new InternalCallAuth('x'.repeat(32), 'reservation')).not.toThrow();
  });
});

describe('a verifier with a JWKS URL (an OIDC provider)', () => {
  let server: Server;
  let base: string;
  let jwks: JSONWebKeySet;
  let requests = 0;
  let signingKey: JWK;

  beforeAll(async () => {
    signingKey = await privateKey('remote-1');
    jwks = { keys: [publicJwk(signingKey)] };
    server = createServer((req, res) => {
      requests++;
      if (req.url === '/jwks.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
        return;
      }
      res.writeHead(500).end('down');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('fetches the keys, verifies tokens signed by them (once fetched, the keys are cached)', async () => {
    const verifier = new TokenVerifier({ issuer: 'https://idp.test', audience: 'bstore-api', keys: { jwksUrl: `${base}/jwks.json` } });
    const issuer = await TokenIssuer.create({ issuer: 'https://idp.test', audience: 'bstore-api', signingKey });
    const before = requests;
    expect(await verifier.verify((await issuer.issue({ customerId: 'alice', role: 'staff' })).access_token)).toEqual({ customerId: 'alice', role: 'staff' });
    expect(await verifier.verify((await issuer.issue({ customerId: 'bob', role: 'customer' })).access_token)).toEqual({ customerId: 'bob', role: 'customer' });
    expect(requests - before).toBe(1);
  });

  it('refuses a token of a key the provider does not publish', async () => {
    const verifier = new TokenVerifier({ issuer: 'https://idp.test', audience: 'bstore-api', keys: { jwksUrl: `${base}/jwks.json` } });
    const stranger = await TokenIssuer.create({ issuer: 'https://idp.test', audience: 'bstore-api', signingKey: await privateKey('stranger') });
    await expect(verifier.verify((await stranger.issue({ customerId: 'alice', role: 'staff' })).access_token)).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('createServiceAuth with a jwksUrl verifies through it', async () => {
    const auth = await createServiceAuth({ demo: false, issuer: 'https://idp.test', audience: 'bstore-api', jwksUrl: `${base}/jwks.json`, internalKey: INTERNAL_KEY });
    expect(auth.tokens).toBeUndefined();
    const issuer = await TokenIssuer.create({ issuer: 'https://idp.test', audience: 'bstore-api', signingKey });
    expect(await auth.verifier.verify((await issuer.issue({ customerId: 'carol', role: 'customer' })).access_token)).toEqual({ customerId: 'carol', role: 'customer' });
  });

  it('a provider whose keys cannot be fetched lets no token in, and says the keys are unavailable (503), not that the token is bad', async () => {
    const broken = new TokenVerifier({ issuer: 'https://idp.test', audience: 'bstore-api', keys: { jwksUrl: `${base}/missing.json` } });
    const issuer = await TokenIssuer.create({ issuer: 'https://idp.test', audience: 'bstore-api', signingKey });
    const token = (await issuer.issue({ customerId: 'alice', role: 'customer' })).access_token;
    await expect(broken.verify(token)).rejects.toBeInstanceOf(TokenKeysUnavailableError);
    const refused = new TokenVerifier({ issuer: 'https://idp.test', audience: 'bstore-api', keys: { jwksUrl: 'http://127.0.0.1:9/jwks.json' } });
    await expect(refused.verify(token)).rejects.toBeInstanceOf(TokenKeysUnavailableError);
    // A garbage token is still a bad token, whatever the provider's state.
    await expect(refused.verify('not-a-jwt')).rejects.toBeInstanceOf(InvalidTokenError);

    const app = createHttpApp({ service: 'probe', logger: testLogger(), auth: { ...(await demoServiceAuth()), verifier: refused } });
    app.get('/mine', { onRequest: requireIdentity }, async () => ({ ok: true }));
    const res = await app.inject({ method: 'GET', url: '/mine', headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json()).toMatchObject({ code: 'IDENTITY_PROVIDER_UNAVAILABLE', status: 503 });
    await app.close();
  });
});
