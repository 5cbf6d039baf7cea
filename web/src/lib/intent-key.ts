import { useCallback, useRef, useState } from 'react';
import { ApiError, newIdempotencyKey } from '../api.ts';
import { useApp } from '../context.ts';
import { describeError } from './errors.ts';

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

/**
 * A staff action with its Idempotency-Key: `run(intent, call, onDone)` sends `call` with the
 * intent's key unless one is already running, settles the key by the answer, and on a refusal
 * keeps the error (for the form) and says it in a message. `busy` and `error` drive the form.
 */
export function useIntentAction() {
  const { notify } = useApp();
  const { keyFor, settle } = useIntentKeys();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const run = async <T>(intent: string, call: (idempotencyKey: string) => Promise<T>, onDone: (result: T) => void): Promise<void> => {
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      const result = await call(keyFor(intent));
      settle(intent);
      onDone(result);
    } catch (err) {
      settle(intent, err);
      setError(err);
      notify('error', (tt, lng) => describeError(tt, err, lng));
    } finally {
      setBusy(false);
    }
  };

  return { busy, error, run };
}
