import type { BookClient, HoldOutcome } from '../../application/ports.ts';

export interface HttpBookClientOptions {
  /** Base URL of the book service, e.g. http://127.0.0.1:8083. */
  baseUrl: string;
  /** Give up waiting after this long; the answer is then unknown and treated as unavailable. */
  timeoutMs: number;
}

/**
 * BookClient over HTTP: PUT /books/{bookId}/holds/{reservationId}. Every failure to get a clear
 * answer (timeout, refused connection, 5xx, an unexpected body) is `unavailable`, which the saga
 * compensates with ReservationRejected in case the copy was taken after all.
 */
export class HttpBookClient implements BookClient {
  readonly #options: HttpBookClientOptions;

  constructor(options: HttpBookClientOptions) {
    this.#options = options;
  }

  async hold(request: { bookId: number; reservationId: number; customerId: string }): Promise<HoldOutcome> {
    const url = `${this.#options.baseUrl}/books/${request.bookId}/holds/${request.reservationId}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ customerId: request.customerId }),
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
    } catch (err) {
      const reason = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${this.#options.timeoutMs} ms` : 'not reachable';
      return { kind: 'unavailable', reason };
    }
    const body = (await response.json().catch(() => null)) as { bookName?: unknown; code?: unknown } | null;
    const bookName = typeof body?.bookName === 'string' ? body.bookName : null;
    if ((response.status === 200 || response.status === 201) && bookName !== null) return { kind: 'held', bookName };
    if (response.status === 409 && body?.code === 'BOOK_OUT_OF_STOCK') return { kind: 'outOfStock', bookName };
    if (response.status === 409 && body?.code === 'HOLD_RELEASED') return { kind: 'holdReleased' };
    if (response.status === 404 && body?.code === 'BOOK_NOT_FOUND') return { kind: 'bookNotFound' };
    return { kind: 'unavailable', reason: `unexpected answer ${response.status}` };
  }
}
