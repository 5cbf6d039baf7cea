import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createServiceAuth, hashPassword, publicJwk, TokenIssuer } from '@bstore/platform';
import { generateKeyPairSync } from 'node:crypto';
import { readAuthConfig } from '../src/auth-config.ts';
import { readClusterConfig } from '../src/cluster-config.ts';
import { ConfigError } from '../src/env.ts';

const INTERNAL = 'x'.repeat(32);

function newKey(kid: string) {
  return { ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), kid };
}

describe('identity configuration from the environment', () => {
  it('a service started on its own refuses to run without identity configuration, naming what to set', () => {
    expect(() => readAuthConfig({}, 'book', false)).toThrow(ConfigError);
    expect(() => readAuthConfig({}, 'book', false)).toThrow(/BSTORE_AUTH_PUBLIC_KEYS.*BSTORE_DEMO_AUTH=true/);
  });

  it('demo identity when asked for, or by default in the developer launchers', () => {
    expect(readAuthConfig({ BSTORE_DEMO_AUTH: 'true' }, 'book', false).settings.demo).toBe(true);
    expect(readAuthConfig({}, 'embedded', true).settings.demo).toBe(true);
    expect(() => readAuthConfig({ BSTORE_DEMO_AUTH: 'false' }, 'embedded', true)).toThrow(ConfigError);
  });

  it('any real identity variable turns the demo identity off, and says it did', () => {
    const { jwks } = { jwks: { keys: [publicJwk(newKey('k1'))] } };
    const config = readAuthConfig({ BSTORE_DEMO_AUTH: 'true', BSTORE_AUTH_PUBLIC_KEYS: JSON.stringify(jwks), BSTORE_INTERNAL_KEY: INTERNAL }, 'book', true);
    expect(config.settings.demo).toBe(false);
    expect(config.demoOverridden).toBe(true);
  });

  it('the cluster supervisor passes the demo identity to its children only without real configuration', () => {
    expect(readClusterConfig({}, false).envOf.book.BSTORE_DEMO_AUTH).toBe('true');
    const oidc = { BSTORE_AUTH_JWKS_URL: 'https://id.example.org/jwks', BSTORE_AUTH_ISSUER: 'https://id.example.org', BSTORE_AUTH_AUDIENCE: 'bstore', BSTORE_INTERNAL_KEY: INTERNAL };
    expect(readClusterConfig(oidc, false).envOf.book.BSTORE_DEMO_AUTH).toBe('false');

  });

  it('book and reservation need the shared internal key; the others do not', () => {
    const env = { BSTORE_AUTH_PUBLIC_KEYS: JSON.stringify({ keys: [publicJwk(newKey('k1'))] }) };
    expect(() => readAuthConfig(env, 'reservation', false)).toThrow(/BSTORE_INTERNAL_KEY is required/);
    expect(() => readAuthConfig(env, 'book', false)).toThrow(/BSTORE_INTERNAL_KEY is required/);
    expect(() => readAuthConfig({ ...env, BSTORE_INTERNAL_KEY: 'short' }, 'book', false)).toThrow(/at least 32 bytes/);
    expect(readAuthConfig(env, 'customercenter', false).settings.demo).toBe(false);
  });

  it('an OIDC provider needs its issuer and audience', () => {
    const env = { BSTORE_AUTH_JWKS_URL: 'https://id.example.org/realms/bstore/protocol/openid-connect/certs' };
    expect(() => readAuthConfig(env, 'customercenter', false)).toThrow(/BSTORE_AUTH_ISSUER is required/);
    expect(() => readAuthConfig({ ...env, BSTORE_AUTH_ISSUER: 'https://id.example.org/realms/bstore' }, 'customercenter', false)).toThrow(/BSTORE_AUTH_AUDIENCE is required/);
    const config = readAuthConfig({ ...env, BSTORE_AUTH_ISSUER: 'https://id.example.org/realms/bstore', BSTORE_AUTH_AUDIENCE: 'bstore', BSTORE_AUTH_ROLE_CLAIM: 'roles' }, 'customercenter', false);
    expect(config.settings).toMatchObject({ demo: false, jwksUrl: env.BSTORE_AUTH_JWKS_URL, issuer: 'https://id.example.org/realms/bstore', audience: 'bstore', roleClaim: 'roles' });
  });

  it('bad key material fails at start without echoing it', () => {
    const secretLooking = '{"d":"TOP-SECRET-VALUE",';
    let message = '';
    try {
      readAuthConfig({ BSTORE_AUTH_SIGNING_KEY: secretLooking }, 'gateway', false);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/BSTORE_AUTH_SIGNING_KEY is not valid JSON/);
    expect(message).not.toContain('TOP-SECRET');
    expect(() => readAuthConfig({ BSTORE_AUTH_PUBLIC_KEYS: '{"kty":"OKP"}', BSTORE_INTERNAL_KEY: INTERNAL }, 'book', false)).toThrow(/must be a JWKS/);
    expect(() => readAuthConfig({ BSTORE_AUTH_PUBLIC_KEYS: '{}', BSTORE_AUTH_PUBLIC_KEYS_FILE: '/x' }, 'book', false)).toThrow(/not both/);
  });

  it('the gateway issues tokens from a users file and a signing key given as files; the services verify them with the public keys', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bstore-auth-'));
    const key = newKey('2026-11-a');
    writeFileSync(join(dir, 'signing.json'), JSON.stringify(key));
    writeFileSync(join(dir, 'users.json'), JSON.stringify([{ username: 'mina', role: 'staff', passwordHash: await hashPassword('s3cret-pass') }]));
    const gatewayEnv = { BSTORE_AUTH_SIGNING_KEY_FILE: join(dir, 'signing.json'), BSTORE_AUTH_USERS_FILE: join(dir, 'users.json') };
    const gateway = await createServiceAuth(readAuthConfig(gatewayEnv, 'gateway', false).settings);
    const identity = await gateway.tokens?.users.authenticate('mina', 's3cret-pass');
    expect(identity).toEqual({ customerId: 'mina', role: 'staff' });
    const issued = await gateway.tokens?.issuer.issue(identity as NonNullable<typeof identity>);

    const serviceEnv = { BSTORE_AUTH_PUBLIC_KEYS: JSON.stringify(gateway.tokens?.jwks), BSTORE_INTERNAL_KEY: INTERNAL };
    const service = await createServiceAuth(readAuthConfig(serviceEnv, 'book', false).settings);
    await expect(service.verifier.verify(issued?.access_token as string)).resolves.toEqual({ customerId: 'mina', role: 'staff' });
    expect(service.tokens).toBeUndefined();
    // A token of another key (say, the demo key) is not trusted.
    const other = await TokenIssuer.create({ issuer: 'bstore', audience: 'bstore-api', signingKey: newKey('2026-11-a') });
    await expect(service.verifier.verify((await other.issue({ customerId: 'mina', role: 'staff' })).access_token)).rejects.toThrow(/not signed by a trusted key/);
  });

  it('a users file with a bad entry, or half of the issuing side, is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bstore-auth-'));
    writeFileSync(join(dir, 'users.json'), JSON.stringify([{ username: 'mina', role: 'admin', passwordHash: 'x' }]));
    expect(() => readAuthConfig({ BSTORE_AUTH_USERS_FILE: join(dir, 'users.json'), BSTORE_AUTH_JWKS_URL: 'https://id.example.org/k', BSTORE_AUTH_ISSUER: 'i', BSTORE_AUTH_AUDIENCE: 'a' }, 'gateway', false)).toThrow(
      /BSTORE_AUTH_USERS_FILE: users\[0\]\.role/,
    );
    expect(() => readAuthConfig({ BSTORE_AUTH_SIGNING_KEY: JSON.stringify(newKey('k')) }, 'gateway', false)).toThrow(/needs both BSTORE_AUTH_SIGNING_KEY and BSTORE_AUTH_USERS_FILE/);
  });
});

describe('the cluster supervisor checks every child configuration before starting any', () => {
  it('real identity without the internal key stops the supervisor, naming the service and the variable', () => {
    const env = { BSTORE_AUTH_PUBLIC_KEYS: JSON.stringify({ keys: [publicJwk(newKey('k1'))] }) };
    expect(() => readClusterConfig(env, false)).toThrow(/^(book|reservation): BSTORE_INTERNAL_KEY is required/);
    expect(readClusterConfig({ ...env, BSTORE_INTERNAL_KEY: INTERNAL, BSTORE_SERVICES: 'book,reservation,assignment,customercenter' }, false).demoAuth).toBe(false);
  });

  it('demo identity turned off with nothing in its place is refused at once', () => {
    expect(() => readClusterConfig({ BSTORE_DEMO_AUTH: 'false' }, false)).toThrow(/no identity configuration/);
  });
});
