/**
 * The base of every domain and application error. `code` is stable (SCREAMING_SNAKE_CASE): the
 * HTTP adapter maps codes to statuses in one place and clients may rely on them.
 *
 * @example
 * throw new DomainError('RESERVATION_NOT_CANCELLABLE', `reservation 7 is bookCanceled`, { status: 'bookCanceled' });
 */
export class DomainError extends Error {
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'DomainError';
    this.code = code;
    this.details = details;
  }
}
