import { useCallback, useRef } from 'react';
import { ApiError, newIdempotencyKey } from '../api.ts';

/**
 * One Idempotency-Key per user intent. `keyFor(intent)` gives the key of an intent (a string that
 * names the action and its body, e.g. `reserve:7:2`): the same key while that intent has no final
 * answer, so a retry after a network error, a 5xx or a 429 can never act twice; a new one once it
 * succeeded or was refused for good (`settle`).
 */
export function useIntentKeys() {
  const keys = useRef(new Map<string, string>());

  const keyFor = useCallback((intent: string): string => {
    let key = keys.current.get(intent);
    if (!key) {
      key = newIdempotencyKey();
      keys.current.set(intent, key);
    }
    return key;
  }, []);

  const settle = useCallback((intent: string, error?: unknown) => {
    if (error instanceof ApiError && error.retryable) return;
    if (error !== undefined && !(error instanceof ApiError)) return; // aborted or unknown: keep the key for a retry
    keys.current.delete(intent);
  }, []);

  return { keyFor, settle };
}
