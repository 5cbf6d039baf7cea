import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { CUSTOMER_ID, type Identity, type Role } from './identity.ts';

/** scrypt's cost: about 50 ms of one core per check, which makes guessing slow and login cheap enough. */
const COST = { N: 16_384, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;

function scrypt(password: string, salt: Buffer, length: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCallback(password.normalize('NFC'), salt, length, { ...options, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/**
 * A password hash as stored in a users file: `scrypt$N$r$p$salt$hash` (salt and hash base64url).
 *
 * @example
 * const passwordHash = await hashPassword('correct horse battery staple');
 */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_LENGTH, COST);
  return ['scrypt', COST.N, COST.r, COST.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

const HASH = /^scrypt\$(\d{1,7})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9_-]{16,128})\$([A-Za-z0-9_-]{16,256})$/;

/** Whether a string is a hash `hashPassword` could have made (checked when a users file is read). */
export function isPasswordHash(value: string): boolean {
  const m = HASH.exec(value);
  return m !== null && Number(m[1]) >= 1024 && (Number(m[1]) & (Number(m[1]) - 1)) === 0;
}

/** Compares in constant time; a malformed hash never matches. */
export async function verifyPassword(password: string, passwordHash: string): Promise<boolean> {
  const m = HASH.exec(passwordHash);
  if (!m || !isPasswordHash(passwordHash)) return false;
  const expected = Buffer.from(m[5] as string, 'base64url');
  const key = await scrypt(password, Buffer.from(m[4] as string, 'base64url'), expected.length, { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) });
  return timingSafeEqual(key, expected);
}

/** One user of a users file (`BSTORE_AUTH_USERS_FILE`). */
export interface UserRecord {
  username: string;
  role: Role;
  passwordHash: string;
}

/**
 * Reads a users file's JSON: `[{ "username", "role": "customer" | "staff", "passwordHash" }]`.
 * Throws an Error naming the first bad entry (never echoing a hash).
 */
export function parseUsers(json: string): UserRecord[] {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new Error('the users file is not valid JSON');
  }
  if (!Array.isArray(value) || value.length === 0) throw new Error('the users file must be a non-empty JSON array of {username, role, passwordHash}');
  const seen = new Set<string>();
  return value.map((entry: unknown, index) => {
    const { username, role, passwordHash } = (entry ?? {}) as Record<string, unknown>;
    if (typeof username !== 'string' || !CUSTOMER_ID.test(username)) throw new Error(`users[${index}].username must be 1 to 64 letters, digits or . _ @ -`);
    if (seen.has(username)) throw new Error(`users[${index}].username ${JSON.stringify(username)} appears twice`);
    seen.add(username);
    if (role !== 'customer' && role !== 'staff') throw new Error(`users[${index}].role must be "customer" or "staff"`);
    if (typeof passwordHash !== 'string' || !isPasswordHash(passwordHash)) {
      throw new Error(`users[${index}].passwordHash is not a hash from \`npm run auth -- hash-password\``);
    }
    return { username, role, passwordHash };
  });
}

/**
 * The users `POST /auth/token` knows. Checking an unknown name costs as much as a known one, so
 * timing does not tell which names exist.
 */
export class UserDirectory {
  readonly #users: Map<string, UserRecord>;
  readonly #decoy: Promise<string>;

  constructor(users: readonly UserRecord[]) {
    this.#users = new Map(users.map((user) => [user.username, user]));
    this.#decoy = hashPassword(randomBytes(16).toString('hex'));
  }

  get size(): number {
    return this.#users.size;
  }

  /** The identity of a user whose password matches; undefined otherwise. */
  async authenticate(username: string, password: string): Promise<Identity | undefined> {
    const user = this.#users.get(username);
    const matches = await verifyPassword(password, user?.passwordHash ?? (await this.#decoy));
    return user && matches ? { customerId: user.username, role: user.role } : undefined;
  }
}
