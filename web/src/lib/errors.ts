import type { TFunction } from 'i18next';
import { ApiError } from '../api.ts';

export interface ErrorContext {
  /** The book a reservation was for, to name it in the message. */
  bookName?: string;
}

function formatTime(ms: number, language: string): string {
  return new Date(ms).toLocaleTimeString(language, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** When to retry, from Retry-After. */
export function retryHint(t: TFunction, error: ApiError, language: string): string {
  if (error.retryAfter === undefined) return t('errors.retryLater');
  return t('errors.retryAt', { seconds: error.retryAfter, time: formatTime(error.receivedAt + error.retryAfter * 1000, language) });
}

/**
 * The message a person reads for a failed call: the well-known codes in their own words, any
 * other problem with its `detail` (the API's English text) and code.
 */
export function describeError(t: TFunction, error: unknown, language: string, context: ErrorContext = {}): string {
  if (!(error instanceof ApiError)) return t('errors.network');
  if (error.status === 0) return t('errors.network');
  const service = error.stringOf('service');
  switch (error.code) {
    case 'BOOK_OUT_OF_STOCK': {
      const id = error.numberOf('reservationId');
      return context.bookName && id !== undefined ? t('errors.outOfStock', { book: context.bookName, id }) : t('errors.outOfStockShort');
    }
    case 'TOO_MANY_ACTIVE_RESERVATIONS':
      return t('errors.tooMany', { limit: error.numberOf('limit') ?? '?', active: error.numberOf('active') ?? error.numberOf('limit') ?? '?' });
    case 'RATE_LIMITED':
      return t('errors.rateLimited', { seconds: error.retryAfter ?? 60 });
    case 'BOOK_NOT_FOUND':
      return t('errors.bookNotFound');
    case 'NOT_ENOUGH_AVAILABLE_COPIES':
      return `${t('errors.notEnoughCopies')} ${t('errors.withDetail', { detail: error.detail, code: error.code })}`;
    case 'RESERVATION_NOT_CANCELLABLE':
      return t('errors.notCancellable');
    case 'ACTIVE_RESERVATION_EXISTS': {
      const id = error.numberOf('reservationId');
      return id !== undefined ? t('errors.activeExists', { id }) : t('errors.activeExistsShort');
    }
    case 'RESERVATION_NOT_AWAITING_PICKUP':
      return t('errors.notAwaitingPickup');
    case 'RESERVATION_NOT_ON_LOAN':
      return t('errors.notOnLoan');
    case 'FORBIDDEN':
    case 'STAFF_ONLY':
      return t('errors.forbidden');
    case 'IDEMPOTENCY_KEY_IN_USE':
      return t('errors.idempotencyInUse');
    case 'INVALID_CREDENTIALS':
      return t('signIn.invalidCredentials');
    case 'UPSTREAM_TIMEOUT':
      return t('errors.timeout', { service: service ?? '?' });
    default:
      break;
  }
  if (error.status === 503) {
    const what = service ? t('errors.serviceUnavailable', { service }) : t('errors.serviceUnavailableGeneric');
    return `${what} ${retryHint(t, error, language)} (${error.code})`;
  }
  if (error.status === 429) return t('errors.rateLimited', { seconds: error.retryAfter ?? 60 });
  return t('errors.withDetail', { detail: error.detail, code: error.code });
}
