import type { JSONWebKeySet, JWK } from 'jose';
import { DEFAULT_AUDIENCE, DEMO_INTERNAL_KEY, DEMO_ISSUER, DEMO_SIGNING_KEY, DEMO_USERS } from './demo.ts';
import type { Identity } from './identity.ts';
import { InternalCallAuth } from './internal.ts';
import { UserDirectory, hashPassword, type UserRecord } from './passwords.ts';
import { TokenIssuer, TokenVerifier, publicJwk, type IssuedToken } from './tokens.ts';

/**
 * How a service process authenticates, from configuration (the launcher reads it from the
 * environment). `demo` uses the published demo key and users; otherwise the keys are given.
 */
export type AuthSettings =
  | { demo: true; tokenTtlSeconds?: number }
  | {
      demo: false;
      issuer: string;
      audience: string;
      /** Verification keys given in configuration (a JWKS), or... */
      publicKeys?: JSONWebKeySet;
      /** ...an identity provider's JWKS URL (OIDC). */
      jwksUrl?: string;
      /** The gateway's private key for `POST /auth/token` (with `users`). */
      signingKey?: JWK;
      users?: UserRecord[];
      tokenTtlSeconds?: number;
      roleClaim?: string;
      staffRole?: string;
      /** Shared by the services for internal calls (reservation -> book). */
      internalKey: string;
    };

/** Issuing tokens: only the gateway, and only when it has users and a signing key. */
export interface TokenService {
  readonly users: UserDirectory;
  readonly issuer: TokenIssuer;
  /** The public keys of this issuer, served at `/.well-known/jwks.json`. */
  readonly jwks: JSONWebKeySet;
}

/** What a service is given to authenticate callers. */
export interface ServiceAuth {
  /** True when the published demo key and users are in use (never in production). */
  readonly demo: boolean;
  readonly verifier: TokenVerifier;
  /** Service-to-service calls; `internalFor(caller)` signs as that service. */
  internalFor(caller: string): InternalCallAuth;
  readonly internal: InternalCallAuth;
  readonly tokens?: TokenService;
}

/**
 * Builds a service's authentication from its settings. Throws when the settings cannot verify
 * anything (no keys and no JWKS URL). Tokens are issued only with both a signing key and users.
 *
 * @example
 * const auth = await createServiceAuth({ demo: true });
 */
export async function createServiceAuth(settings: AuthSettings): Promise<ServiceAuth> {
  if (settings.demo) {
    const issuer = await TokenIssuer.create({ issuer: DEMO_ISSUER, audience: DEFAULT_AUDIENCE, signingKey: DEMO_SIGNING_KEY, ttlSeconds: settings.tokenTtlSeconds ?? 900 });
    const users = new UserDirectory(await Promise.all(DEMO_USERS.map(async (u) => ({ username: u.username, role: u.role, passwordHash: await hashPassword(u.password) }))));
    const jwks = { keys: [issuer.publicKey] };
    return build(true, new TokenVerifier({ issuer: DEMO_ISSUER, audience: DEFAULT_AUDIENCE, keys: { jwks } }), DEMO_INTERNAL_KEY, { users, issuer, jwks });
  }
  const issuer = settings.signingKey
    ? await TokenIssuer.create({ issuer: settings.issuer, audience: settings.audience, signingKey: settings.signingKey, ...(settings.tokenTtlSeconds ? { ttlSeconds: settings.tokenTtlSeconds } : {}) })
    : undefined;
  const given = settings.publicKeys?.keys ?? [];
  const own = issuer && !given.some((key) => key.kid === issuer.publicKey.kid) ? [issuer.publicKey] : [];
  const keys: { jwks: JSONWebKeySet } | { jwksUrl: string } | undefined =
    settings.jwksUrl !== undefined ? { jwksUrl: settings.jwksUrl } : given.length + own.length > 0 ? { jwks: { keys: [...given.map(publicJwk), ...own] } } : undefined;
  if (!keys) throw new Error('no key to verify tokens with: set BSTORE_AUTH_PUBLIC_KEYS, BSTORE_AUTH_JWKS_URL or BSTORE_AUTH_SIGNING_KEY');
  const verifier = new TokenVerifier({
    issuer: settings.issuer,
    audience: settings.audience,
    keys,
    ...(settings.roleClaim ? { roleClaim: settings.roleClaim } : {}),
    ...(settings.staffRole ? { staffRole: settings.staffRole } : {}),
  });
  const tokens = issuer && settings.users ? { users: new UserDirectory(settings.users), issuer, jwks: { keys: [...own, ...given.map(publicJwk)] } } : undefined;
  return build(false, verifier, settings.internalKey, tokens);
}

function build(demo: boolean, verifier: TokenVerifier, internalKey: string, tokens: TokenService | undefined): ServiceAuth {
  const cache = new Map<string, InternalCallAuth>();
  const internalFor = (caller: string) => {
    let auth = cache.get(caller);
    if (!auth) cache.set(caller, (auth = new InternalCallAuth(internalKey, caller)));
    return auth;
  };
  return { demo, verifier, internalFor, internal: internalFor('service'), ...(tokens ? { tokens } : {}) };
}

let demoAuth: Promise<ServiceAuth> | undefined;

/** The demo authentication, built once per process (tests, `npm start`). */
export function demoServiceAuth(): Promise<ServiceAuth> {
  return (demoAuth ??= createServiceAuth({ demo: true }));
}

/** Signs a demo token for tests and scripts: `{ authorization: 'Bearer …' }`. */
export async function demoToken(identity: Identity, ttlSeconds?: number): Promise<IssuedToken> {
  const auth = await demoServiceAuth();
  return (auth.tokens as TokenService).issuer.issue(identity, ttlSeconds);
}
