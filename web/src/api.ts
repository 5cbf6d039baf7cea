/**
 * The typed client of bstore's API (through the gateway, same origin). Every error answer is
 * problem+json (RFC 9457) and becomes an `ApiError` with its status, code, detail and Retry-After.
 */

// The status vocabulary (the statuses, their rank, the terminal ones) has one source, the event
// contracts; the narrow subpath keeps the event schemas out of the bundle.
import type { ReservationStatus } from '@bstore/contracts/statuses';

/** Statuses a patron may cancel: a copy is held for them, or they wait in the book's line. */
export const CANCELLABLE_STATUSES: readonly ReservationStatus[] = ['bookWaiting', 'bookReserveReq', 'bookReserved'];

/**
 * Statuses in which the web app treats a reservation as the patron's current one for its book (at
 * most one per book): the reservation service's own list plus `bookCancel`, a cancellation still
 * under way. Not the contracts' ACTIVE_STATUSES, which are the statuses that hold a copy.
 */
export const ACTIVE_STATUSES: readonly ReservationStatus[] = ['pending', 'bookWaiting', 'bookReserveReq', 'bookReserved', 'bookCancel'];

/**
 * What a reservation's life adds to it: until when a held copy waits at the library (bookReserved),
 * when a loan is due (bookLoaned), the place in the book's waiting line (bookWaiting; 1 = next).
 * Optional: an answer of a service older than these fields has none.
 */
export interface ReservationDeadlines {
  pickupBy?: string | null;
  dueAt?: string | null;
  queuePosition?: number | null;
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface Book {
  bookId: number;
  bookName: string;
  author: string | null;
  isbn: string | null;
  /** Copies available to reserve now. */
  quantity: number;
  /** Copies owned: available plus held. */
  copies: number;
}

export interface Library {
  libraryId: number;
  name: string;
  address: string | null;
}

/** A branch as the list shows it: with the reservations it serves now. */
export interface LibraryWithLoad extends Library {
  activeAssignments: number;
}

export interface Assignment {
  assignmentId: number;
  reservationId: number;
  bookId: number;
  customerId: string;
  libraryId: number | null;
  libraryName: string | null;
  status: 'assigned' | 'released' | 'voided' | 'failed' | 'closed';
  createdAt: string;
}

export interface Reservation extends ReservationDeadlines {
  reservationId: number;
  bookId: number;
  bookName: string | null;
  customerId: string;
  status: ReservationStatus;
  preferredLibraryId: number | null;
  libraryId: number | null;
  libraryName: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface TimelineEntry {
  eventId: string;
  eventType: string;
  status: ReservationStatus;
  /** The service that emitted the event. */
  service: string;
  occurredAt: string;
  /** The event's W3C trace id (its trace in the tracing backend), null when it carried none. */
  traceId: string | null;
}

export interface ReservationPage extends ReservationDeadlines {
  reservationId: number;
  bookId: number;
  bookName: string | null;
  customerId: string;
  status: ReservationStatus;
  libraryId: number | null;
  libraryName: string | null;
  createdAt: string;
  updatedAt: string;
  timeline: TimelineEntry[];
}

export interface DeadLetter {
  id: string;
  service: string;
  consumer: string;
  eventId: string;
  eventType: string;
  subject: string;
  error: string;
  deliveries: number;
  createdAt: string;
  replayedAt: string | null;
  envelope: unknown;
}

export interface DeadLetterPage extends Page<DeadLetter> {
  partial: boolean;
  failures: Array<{ service: string; status: number; code: string; detail: string }>;
}

export interface ReplayOutcome {
  outcome: 'handled' | 'duplicate' | 'ignored';
  deadLetter: DeadLetter;
}

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
}

/** A problem+json body: the standard members and the extensions bstore adds. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  instance?: string;
  [extension: string]: unknown;
}

/** An API call that failed: an error answer (status > 0) or no answer at all (status 0, code NETWORK_ERROR). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly title: string;
  /** Seconds from Retry-After, when the answer had one. */
  readonly retryAfter: number | undefined;
  /** When the answer arrived: Retry-After counts from here. */
  readonly receivedAt: number;
  readonly problem: Problem;

  constructor(status: number, problem: Problem, retryAfter?: number) {
    const detail = problem.detail ?? problem.title ?? `HTTP ${status}`;
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.code = problem.code ?? (status === 0 ? 'NETWORK_ERROR' : `HTTP_${status}`);
    this.detail = detail;
    this.title = problem.title ?? '';
    this.retryAfter = retryAfter;
    this.receivedAt = Date.now();
    this.problem = problem;
  }

  /** A number extension of the problem (`limit`, `reservationId`…), if present. */
  numberOf(name: string): number | undefined {
    const value = this.problem[name];
    return typeof value === 'number' ? value : undefined;
  }

  /** A string extension of the problem (`service`…), if present. */
  stringOf(name: string): string | undefined {
    const value = this.problem[name];
    return typeof value === 'string' ? value : undefined;
  }

  /** A failure worth retrying with the same Idempotency-Key: no final answer was given. */
  get retryable(): boolean {
    return this.status === 0 || this.status >= 500 || this.status === 429 || this.code === 'IDEMPOTENCY_KEY_IN_USE';
  }
}

/** Retry-After: delay-seconds or an HTTP date; seconds from now, or undefined. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

async function problemOf(res: Response): Promise<Problem> {
  const text = await res.text().catch(() => '');
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === 'object' && body !== null && !Array.isArray(body)) return body as Problem;
  } catch {
    // Not JSON: a proxy's page, say.
  }
  return { status: res.status, title: res.statusText, detail: text.slice(0, 200) || `HTTP ${res.status}` };
}

type Query = Record<string, string | number | boolean | undefined | null>;

function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue;
    params.set(name, String(value));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PATCH';
  query?: Query;
  body?: unknown;
  /** For POST: one key per user intent, reused when the same intent is retried. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface ApiClientOptions {
  /** The current bearer token, if signed in. */
  token: () => string | undefined;
  /** Called on any 401 from a call made with a token: the session is over. */
  onUnauthorized: (error: ApiError) => void;
}

/** A new Idempotency-Key. */
export function newIdempotencyKey(): string {
  return crypto.randomUUID();
}

export class ApiClient {
  readonly #options: ApiClientOptions;

  constructor(options: ApiClientOptions) {
    this.#options = options;
  }

  get token(): string | undefined {
    return this.#options.token();
  }

  /** Reports a 401 seen outside `request` (the event stream). */
  unauthorized(error: ApiError): void {
    this.#options.onUnauthorized(error);
  }

  async request<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const method = options.method ?? 'GET';
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
    const token = this.token;
    if (token) headers.authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (method === 'POST') headers['idempotency-key'] = options.idempotencyKey ?? newIdempotencyKey();
    let res: Response;
    try {
      res = await fetch(withQuery(path, options.query), {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err;
      throw new ApiError(0, { code: 'NETWORK_ERROR', detail: err instanceof Error ? err.message : String(err) });
    }
    if (!res.ok) {
      const error = new ApiError(res.status, await problemOf(res), parseRetryAfter(res.headers.get('retry-after')));
      if (res.status === 401 && token) this.#options.onUnauthorized(error);
      throw error;
    }
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  // --- sign-in
  signIn(username: string, password: string, idempotencyKey?: string): Promise<TokenResponse> {
    return this.request('/auth/token', { method: 'POST', body: { username, password }, ...(idempotencyKey ? { idempotencyKey } : {}) });
  }

  // --- book
  books(query: { q?: string; limit?: number; offset?: number }, signal?: AbortSignal): Promise<Page<Book>> {
    return this.request('/books', { query, ...(signal ? { signal } : {}) });
  }

  createBook(body: { bookName: string; author?: string; isbn?: string; quantity: number }, idempotencyKey: string): Promise<Book> {
    return this.request('/books', { method: 'POST', body, idempotencyKey });
  }

  adjustCopies(bookId: number, delta: number, idempotencyKey: string): Promise<Book> {
    return this.request(`/books/${bookId}/copies`, { method: 'POST', body: { delta }, idempotencyKey });
  }

  // --- assignment
  async libraries(signal?: AbortSignal): Promise<LibraryWithLoad[]> {
    const page = await this.request<{ items: LibraryWithLoad[] }>('/libraries', signal ? { signal } : {});
    return page.items;
  }

  createLibrary(body: { name: string; address?: string }, idempotencyKey: string): Promise<Library> {
    return this.request('/libraries', { method: 'POST', body, idempotencyKey });
  }

  assignments(query: { reservationId?: number; limit?: number; offset?: number }, signal?: AbortSignal): Promise<Page<Assignment>> {
    return this.request('/assignments', { query, ...(signal ? { signal } : {}) });
  }

  // --- reservation
  /** With `waitlist: true`, a book with no copy answers 201 bookWaiting (a place in its line) instead of 409 BOOK_OUT_OF_STOCK. */
  reserve(body: { bookId: number; preferredLibraryId?: number; waitlist?: true }, idempotencyKey: string): Promise<Reservation> {
    return this.request('/reservations', { method: 'POST', body, idempotencyKey });
  }

  cancel(reservationId: number): Promise<{ reservationId: number; status: 'bookCancel' }> {
    return this.request(`/reservations/${reservationId}`, { method: 'PATCH', body: { status: 'bookCancel' } });
  }

  /** Staff: the patron picks the held copy up at the desk (bookReserved → bookLoaned, due at dueAt). */
  checkOut(reservationId: number): Promise<Reservation> {
    return this.request(`/reservations/${reservationId}`, { method: 'PATCH', body: { status: 'bookLoaned' } });
  }

  /** Staff: the copy comes back to the desk (bookLoaned → bookReturned). */
  checkIn(reservationId: number): Promise<Reservation> {
    return this.request(`/reservations/${reservationId}`, { method: 'PATCH', body: { status: 'bookReturned' } });
  }

  /** The reservations themselves (the reservation service, newest first); staff see everyone's. */
  reservations(
    query: { status?: ReservationStatus; customerId?: string; libraryId?: number; limit?: number; offset?: number },
    signal?: AbortSignal,
  ): Promise<Page<Reservation>> {
    return this.request('/reservations', { query, ...(signal ? { signal } : {}) });
  }

  // --- customercenter (the read model)
  reservationPages(
    query: { status?: ReservationStatus; customerId?: string; limit?: number; offset?: number },
    signal?: AbortSignal,
  ): Promise<Page<ReservationPage>> {
    return this.request('/reservationPages', { query, ...(signal ? { signal } : {}) });
  }

  reservationPage(reservationId: number, signal?: AbortSignal): Promise<ReservationPage> {
    return this.request(`/reservationPages/${reservationId}`, signal ? { signal } : {});
  }

  // --- dead letters (gateway)
  deadLetters(query: { pending?: boolean; limit?: number; offset?: number }, signal?: AbortSignal): Promise<DeadLetterPage> {
    return this.request('/admin/dead-letters', { query: { ...query, pending: query.pending ? true : undefined }, ...(signal ? { signal } : {}) });
  }

  replayDeadLetter(id: string, idempotencyKey: string): Promise<ReplayOutcome> {
    return this.request(`/admin/dead-letters/${encodeURIComponent(id)}/replay`, { method: 'POST', idempotencyKey });
  }
}
