import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DEFAULT_AUDIENCE, parseUsers, type AuthSettings, type UserRecord } from '@bstore/platform';
import { ConfigError, boolSetting, intSetting, nameSetting, urlSetting } from './env.ts';
import { MODULES, moduleNamed } from './registry.ts';

/** Any of these is a real identity configuration, which turns the demo users and key off. */
export const IDENTITY_VARIABLES = [
  'BSTORE_AUTH_PUBLIC_KEYS',
  'BSTORE_AUTH_PUBLIC_KEYS_FILE',
  'BSTORE_AUTH_JWKS_URL',
  'BSTORE_AUTH_SIGNING_KEY',
  'BSTORE_AUTH_SIGNING_KEY_FILE',
  'BSTORE_AUTH_USERS_FILE',
] as const;

export function hasIdentityConfiguration(env: NodeJS.ProcessEnv): boolean {
  return IDENTITY_VARIABLES.some((name) => (env[name] ?? '') !== '');
}

/** Services that make or take internal calls (their modules say so), and so need the shared BSTORE_INTERNAL_KEY. */
const INTERNAL_CALLERS = new Set(MODULES.filter((m) => m.internalCalls !== undefined).map((m) => m.name));

export interface AuthConfig {
  settings: AuthSettings;
  /** BSTORE_DEMO_AUTH was on, but real identity configuration was given, which wins. */
  demoOverridden: boolean;
}

/** A JSON value given inline (`NAME`) or in a file (`NAME_FILE`, e.g. a mounted Kubernetes Secret). */
function jsonSetting(env: NodeJS.ProcessEnv, name: string): unknown {
  const inline = env[name];
  const file = env[`${name}_FILE`];
  if (inline && file) throw new ConfigError(`set ${name} or ${name}_FILE, not both`);
  let text: string;
  if (file) {
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new ConfigError(`${name}_FILE: cannot read ${JSON.stringify(file)}`);
    }
  } else if (inline) {
    text = inline;
  } else {
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // The value may be a key: it is never echoed.
    throw new ConfigError(`${file ? `${name}_FILE` : name} is not valid JSON`);
  }
}

/**
 * How a service process authenticates (docs/security.md). Demo identity (the published key and
 * the users alice, bob and librarian) only when `demoByDefault` or BSTORE_DEMO_AUTH=true asks for
 * it and no real identity variable is set; otherwise keys from BSTORE_AUTH_* and, for book and
 * reservation, the shared BSTORE_INTERNAL_KEY. Nothing configured at all is a ConfigError: a
 * service never runs without a way to check tokens.
 */
export function readAuthConfig(env: NodeJS.ProcessEnv, service: string, demoByDefault: boolean): AuthConfig {
  const demoAsked = boolSetting(env, 'BSTORE_DEMO_AUTH', demoByDefault);
  const tokenTtlSeconds = intSetting(env, 'BSTORE_AUTH_TOKEN_TTL_SECONDS', 900, { min: 60, max: 86_400 });
  if (!hasIdentityConfiguration(env)) {
    if (!demoAsked) {
      throw new ConfigError(
        `no identity configuration: set BSTORE_AUTH_PUBLIC_KEYS, BSTORE_AUTH_JWKS_URL or BSTORE_AUTH_SIGNING_KEY (docs/security.md), or BSTORE_DEMO_AUTH=true on a developer's machine`,
      );
    }
    return { settings: { demo: true, tokenTtlSeconds }, demoOverridden: false };
  }

  const jwksUrl = env.BSTORE_AUTH_JWKS_URL ? urlSetting(env, 'BSTORE_AUTH_JWKS_URL', ['https:', 'http:'], '') : undefined;
  const issuerRequired = jwksUrl !== undefined;
  const issuer = env.BSTORE_AUTH_ISSUER?.trim() || (issuerRequired ? undefined : 'bstore');
  if (!issuer) throw new ConfigError('BSTORE_AUTH_ISSUER is required with BSTORE_AUTH_JWKS_URL (the identity provider\'s issuer, e.g. https://id.example.org/realms/bstore)');
  const audience = env.BSTORE_AUTH_AUDIENCE?.trim() || (issuerRequired ? undefined : DEFAULT_AUDIENCE);
  if (!audience) throw new ConfigError('BSTORE_AUTH_AUDIENCE is required with BSTORE_AUTH_JWKS_URL (the audience the provider puts in bstore\'s tokens)');

  const publicKeys = jsonSetting(env, 'BSTORE_AUTH_PUBLIC_KEYS');
  if (publicKeys !== undefined && (typeof publicKeys !== 'object' || publicKeys === null || !Array.isArray((publicKeys as { keys?: unknown }).keys))) {
    throw new ConfigError('BSTORE_AUTH_PUBLIC_KEYS must be a JWKS: {"keys":[...]}');
  }
  const signingKey = jsonSetting(env, 'BSTORE_AUTH_SIGNING_KEY');
  if (signingKey !== undefined && (typeof signingKey !== 'object' || signingKey === null || typeof (signingKey as { d?: unknown }).d !== 'string')) {
    throw new ConfigError('BSTORE_AUTH_SIGNING_KEY must be a private JWK (from `npm run auth -- generate-key`)');
  }
  let users: UserRecord[] | undefined;
  if (env.BSTORE_AUTH_USERS_FILE) {
    let text: string;
    try {
      text = readFileSync(env.BSTORE_AUTH_USERS_FILE, 'utf8');
    } catch {
      throw new ConfigError(`BSTORE_AUTH_USERS_FILE: cannot read ${JSON.stringify(env.BSTORE_AUTH_USERS_FILE)}`);
    }
    try {
      users = parseUsers(text);
    } catch (err) {
      throw new ConfigError(`BSTORE_AUTH_USERS_FILE: ${(err as Error).message}`);
    }
  }
  // The public entry issues tokens (and so does embedded mode, the whole system in one process).
  const issues = service === 'embedded' || moduleNamed(service)?.issuesTokens === true;
  if ((signingKey === undefined) !== (users === undefined) && issues) {
    throw new ConfigError('issuing tokens needs both BSTORE_AUTH_SIGNING_KEY and BSTORE_AUTH_USERS_FILE (or neither, with an identity provider)');
  }

  const internalKey = env.BSTORE_INTERNAL_KEY ?? '';
  if (internalKey === '' && INTERNAL_CALLERS.has(service)) {
    throw new ConfigError(`BSTORE_INTERNAL_KEY is required by ${[...INTERNAL_CALLERS].join(' and ')} (the same value in each; \`npm run auth -- generate-internal-key\`)`);
  }
  if (internalKey !== '' && Buffer.byteLength(internalKey) < 32) throw new ConfigError('BSTORE_INTERNAL_KEY must be at least 32 bytes');

  const roleClaim = nameSetting(env, 'BSTORE_AUTH_ROLE_CLAIM', /^[A-Za-z0-9_:/.-]{1,128}$/, 'role');
  const staffRole = nameSetting(env, 'BSTORE_AUTH_STAFF_ROLE', /^[A-Za-z0-9_:/.-]{1,128}$/, 'staff');
  return {
    settings: {
      demo: false,
      issuer,
      audience,
      ...(publicKeys !== undefined ? { publicKeys: publicKeys as { keys: [] } } : {}),
      ...(jwksUrl !== undefined ? { jwksUrl } : {}),
      // Only the gateway signs; the services verify with the public half.
      ...(signingKey !== undefined && (issues || publicKeys === undefined) ? { signingKey } : {}),
      ...(users !== undefined && issues ? { users } : {}),
      tokenTtlSeconds,
      roleClaim,
      staffRole,
      // Services that make no internal call get a key of their own that nothing else knows.
      internalKey: internalKey || randomBytes(32).toString('base64url'),
    },
    // Said only when someone set BSTORE_DEMO_AUTH=true themselves, not for a launcher's default.
    demoOverridden: boolSetting(env, 'BSTORE_DEMO_AUTH', false),
  };
}
