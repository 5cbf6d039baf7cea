import { SignJWT, jwtVerify } from 'jose';
import { VerifiedTokens } from './tokens.ts';

const ISSUER = 'bstore-internal';
const LIFETIME_S = 300;
const CLOCK_TOLERANCE_S = 30;

/**
 * Service-to-service calls (reservation's hold on book): a short-lived HS256 token from a secret
 * only the services share (`BSTORE_INTERNAL_KEY`), never a user's token. A user token is refused
 * on an internal route and an internal token on a public one: they differ in issuer and audience.
 *
 * @example
 * const internal = new InternalCallAuth(secret, 'reservation');
 * await fetch(url, { headers: { authorization: `Bearer ${await internal.token()}` } });
 */
export class InternalCallAuth {
  readonly #key: Uint8Array;
  readonly #caller: string;
  #cached: { token: string; renewAt: number } | undefined;
  readonly #verified = new VerifiedTokens<string>();

  constructor(secret: string, caller: string) {
    if (Buffer.byteLength(secret) < 32) throw new Error('the internal key must be at least 32 bytes (`npm run auth -- generate-internal-key`)');
    this.#key = new TextEncoder().encode(secret);
    this.#caller = caller;
  }

  /** A token for this service's calls, renewed at half its lifetime. */
  async token(): Promise<string> {
    const now = Date.now();
    if (this.#cached && now < this.#cached.renewAt) return this.#cached.token;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(ISSUER)
      .setSubject(this.#caller)
      .setIssuedAt()
      .setExpirationTime(`${LIFETIME_S}s`)
      .sign(this.#key);
    this.#cached = { token, renewAt: now + (LIFETIME_S * 1000) / 2 };
    return token;
  }

  /** The calling service's name; throws when the token is not an internal one signed with the key. */
  async verify(token: string): Promise<string> {
    // A caller's token is the same for half its lifetime: checked once a minute, not on every call.
    const known = this.#verified.get(token);
    if (known !== undefined) return known;
    const { payload } = await jwtVerify(token, this.#key, { issuer: ISSUER, audience: ISSUER, algorithms: ['HS256'], clockTolerance: CLOCK_TOLERANCE_S, requiredClaims: ['sub', 'exp'] });
    this.#verified.set(token, payload.sub as string, payload.exp as number, CLOCK_TOLERANCE_S);
    return payload.sub as string;
  }
}
