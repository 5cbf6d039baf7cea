/** The signed-in user: the bearer token, kept in sessionStorage (gone when the tab closes). */
export type Role = 'customer' | 'staff';

export interface Session {
  token: string;
  /** The user name: the token's `sub`, which is the patron's customerId. */
  user: string;
  role: Role;
  /** Expiry, in milliseconds since the epoch (the token's `exp`). */
  expiresAt: number;
}

const STORAGE_KEY = 'bstore.token';

function base64UrlDecode(part: string): string {
  const base64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads the token's payload, without checking the signature: the API checks it on every call; the
 * app only needs to know whom to greet and which views to show.
 */
export function sessionFromToken(token: string, now = Date.now()): Session | null {
  const payloadPart = token.split('.')[1];
  if (!payloadPart) return null;
  let payload: unknown;
  try {
    payload = JSON.parse(base64UrlDecode(payloadPart));
  } catch {
    return null;
  }
  if (!isRecord(payload) || typeof payload.sub !== 'string') return null;
  const roleClaim = payload.role;
  const roles = Array.isArray(roleClaim) ? roleClaim : [roleClaim];
  const role: Role = roles.includes('staff') ? 'staff' : 'customer';
  const expiresAt = typeof payload.exp === 'number' ? payload.exp * 1000 : now + 15 * 60_000;
  if (expiresAt <= now) return null;
  return { token, user: payload.sub, role, expiresAt };
}

export function loadSession(): Session | null {
  try {
    const token = sessionStorage.getItem(STORAGE_KEY);
    return token ? sessionFromToken(token) : null;
  } catch {
    return null;
  }
}

export function storeSession(session: Session): void {
  try {
    sessionStorage.setItem(STORAGE_KEY, session.token);
  } catch {
    // Without storage the session lasts until the page is reloaded.
  }
}

export function clearStoredSession(): void {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Nothing stored.
  }
}
