import { randomUUID } from 'node:crypto';
import { SignJWT, createLocalJWKSet, createRemoteJWKSet, errors, importJWK, jwtVerify, type CryptoKey, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose';
import { CUSTOMER_ID, type Identity } from './identity.ts';

/** Signature algorithms accepted on user tokens: public-key ones only, so no service can mint one. */
export const USER_TOKEN_ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'RS256', 'PS256'] as const;

/** Why a token was refused; the HTTP layer turns it into 401 problem+json. */
export class InvalidTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidTokenError';
  }
}

/**
 * The identity provider's keys could not be fetched (timeout, refused, not 200, not a JWKS): no
 * token can be judged now. The HTTP layer answers 503 with Retry-After, not 401, so a client
 * retries instead of signing in again.
 */
export class TokenKeysUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenKeysUnavailableError';
  }
}

/** The JWS algorithm of a private or public key (Ed25519, P-256, P-384 or RSA). */
export function algorithmOf(jwk: JWK): string {
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'EC' && jwk.crv === 'P-384') return 'ES384';
  if (jwk.kty === 'RSA') return jwk.alg === 'PS256' ? 'PS256' : 'RS256';
  throw new Error(`unsupported key (kty ${JSON.stringify(jwk.kty)}, crv ${JSON.stringify(jwk.crv)}): use Ed25519, P-256, P-384 or RSA`);
}

/** The public half of a key pair's JWK: what verifiers are given and `/.well-known/jwks.json` shows. */
export function publicJwk(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, k: _k, ...pub } = jwk;
  if (jwk.kty === 'oct') throw new Error('a symmetric key has no public half');
  return { ...pub, alg: algorithmOf(jwk), use: 'sig' };
}

/**
 * A verified token is remembered (by its exact text) for at most this long, and never past its
 * `exp` plus the clock tolerance: a patron's token is verified once a minute per process, not on
 * every request (an Ed25519 or ECDSA signature check costs far more than the rest of the hook).
 * A key withdrawn from a remote JWKS already stays trusted until jose's key cache refreshes (up to
 * 10 minutes): this adds no staleness beyond that.
 */
export const VERIFIED_TOKEN_CACHE_MS = 60_000;
/** At most this many verified tokens are remembered per verifier; the oldest go first. */
export const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

/**
 * Remembers what a check concluded about a token text until `until` (ms), in at most
 * VERIFIED_TOKEN_CACHE_SIZE entries (the oldest evicted first). Only successes are stored.
 */
export class VerifiedTokens<T> {
  readonly #entries = new Map<string, { value: T; until: number }>();

  get(token: string, now = Date.now()): T | undefined {
    const hit = this.#entries.get(token);
    if (hit === undefined) return undefined;
    if (now < hit.until) return hit.value;
    this.#entries.delete(token);
    return undefined;
  }

  /** `expSeconds`: the token's `exp`; `toleranceSeconds`: how long past it the check accepts it. */
  set(token: string, value: T, expSeconds: number, toleranceSeconds: number, now = Date.now()): void {
    const until = Math.min(now + VERIFIED_TOKEN_CACHE_MS, (expSeconds + toleranceSeconds) * 1000);
    if (!(until > now)) return;
    if (this.#entries.size >= VERIFIED_TOKEN_CACHE_SIZE) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(token, { value, until });
  }

  get size(): number {
    return this.#entries.size;
  }
}

export interface TokenVerifierOptions {
  /** Expected `iss`. */
  issuer: string;
  /** Expected `aud` (one of the token's). */
  audience: string;
  /** The verification keys: a JWKS in configuration, or an identity provider's JWKS URL. */
  keys: { jwks: JSONWebKeySet } | { jwksUrl: string };
  /** Claim holding the role: a string or an array of strings (default `role`). */
  roleClaim?: string;
  /** The claim value that makes a caller staff (default `staff`); anything else is a customer. */
  staffRole?: string;
  /** Allowed clock difference with the issuer (default 30 s). */
  clockToleranceSeconds?: number;
}

/**
 * Checks a bearer token: signature by a trusted key (public-key algorithms only: `alg:none` and
 * HMAC tokens are refused), issuer, audience, expiry; then reads the identity (`sub` is the
 * customer id, the role claim decides staff).
 *
 * @example
 * const verifier = new TokenVerifier({ issuer: 'bstore', audience: 'bstore-api', keys: { jwks } });
 * const { customerId, role } = await verifier.verify(token);
 */
export class TokenVerifier {
  readonly #keys: JWTVerifyGetKey;
  readonly #options: Required<Omit<TokenVerifierOptions, 'keys'>>;
  readonly #verified = new VerifiedTokens<Identity>();

  constructor(options: TokenVerifierOptions) {
    this.#keys =
      'jwks' in options.keys
        ? createLocalJWKSet(options.keys.jwks)
        : createRemoteJWKSet(new URL(options.keys.jwksUrl), { timeoutDuration: 2000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    this.#options = {
      issuer: options.issuer,
      audience: options.audience,
      roleClaim: options.roleClaim ?? 'role',
      staffRole: options.staffRole ?? 'staff',
      clockToleranceSeconds: options.clockToleranceSeconds ?? 30,
    };
  }

  /** The identity a token proves; a token verified in the last minute (and not expired since) is not checked again. */
  async verify(token: string): Promise<Identity> {
    const known = this.#verified.get(token);
    if (known) return { ...known };
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, {
        issuer: this.#options.issuer,
        audience: this.#options.audience,
        algorithms: [...USER_TOKEN_ALGORITHMS],
        clockTolerance: this.#options.clockToleranceSeconds,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (err) {
      if (keysUnavailable(err)) throw new TokenKeysUnavailableError('the identity provider\'s keys are unavailable');
      throw new InvalidTokenError(reason(err));
    }
    const sub = payload.sub;
    if (typeof sub !== 'string' || !CUSTOMER_ID.test(sub)) throw new InvalidTokenError('the token subject is not a usable customer id');
    const claim = payload[this.#options.roleClaim];
    const roles = Array.isArray(claim) ? claim : [claim];
    const identity: Identity = { customerId: sub, role: roles.includes(this.#options.staffRole) ? 'staff' : 'customer' };
    this.#verified.set(token, identity, payload.exp as number, this.#options.clockToleranceSeconds);
    return { ...identity };
  }
}

/** A remote JWKS that could not be read (network, timeout, an answer that is not a JWKS). */
function keysUnavailable(err: unknown): boolean {
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return true;
  if (!(err instanceof errors.JOSEError)) return true; // fetch itself failed (refused, reset, DNS)
  return err.code === 'ERR_JOSE_GENERIC' && /JSON Web Key Set/i.test(err.message);
}

function reason(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `the token's ${err.claim} claim is not accepted`;
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWSSignatureVerificationFailed) return 'the token is not signed by a trusted key';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'the token is signed with an algorithm that is not accepted';
  return 'the token is malformed';
}

export interface TokenIssuerOptions {
  issuer: string;
  audience: string;
  /** A private JWK (Ed25519, P-256, P-384 or RSA) with a `kid`. */
  signingKey: JWK;
  /** Lifetime of a token (design: short-lived; default 15 minutes). */
  ttlSeconds?: number;
}

export interface IssuedToken {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
}

/**
 * Signs short-lived access tokens for verified users (`POST /auth/token`).
 *
 * @example
 * const issuer = await TokenIssuer.create({ issuer: 'bstore', audience: 'bstore-api', signingKey });
 * const { access_token } = await issuer.issue({ customerId: 'alice', role: 'customer' });
 */
export class TokenIssuer {
  readonly #key: CryptoKey | Uint8Array;
  readonly #alg: string;
  readonly #kid: string;
  readonly #options: Required<Omit<TokenIssuerOptions, 'signingKey'>>;
  readonly publicKey: JWK;

  private constructor(key: CryptoKey | Uint8Array, jwk: JWK, options: TokenIssuerOptions) {
    this.#key = key;
    this.#alg = algorithmOf(jwk);
    this.#kid = jwk.kid as string;
    this.#options = { issuer: options.issuer, audience: options.audience, ttlSeconds: options.ttlSeconds ?? 900 };
    this.publicKey = publicJwk(jwk);
  }

  static async create(options: TokenIssuerOptions): Promise<TokenIssuer> {
    const jwk = options.signingKey;
    if (typeof jwk.kid !== 'string' || jwk.kid === '') throw new Error('the signing key needs a "kid", so verifiers can tell keys apart during a rotation');
    if (typeof jwk.d !== 'string') throw new Error('the signing key is a public key: the issuer needs the private key');
    const key = await importJWK(jwk, algorithmOf(jwk));
    return new TokenIssuer(key, jwk, options);
  }

  get ttlSeconds(): number {
    return this.#options.ttlSeconds;
  }

  async issue(identity: Identity, ttlSeconds = this.#options.ttlSeconds): Promise<IssuedToken> {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ role: identity.role })
      .setProtectedHeader({ alg: this.#alg, kid: this.#kid, typ: 'JWT' })
      .setIssuer(this.#options.issuer)
      .setAudience(this.#options.audience)
      .setSubject(identity.customerId)
      .setIssuedAt(now)
      .setExpirationTime(now + ttlSeconds)
      .setJti(randomUUID())
      .sign(this.#key);
    return { access_token: token, token_type: 'Bearer', expires_in: ttlSeconds };
  }
}
