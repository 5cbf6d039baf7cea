import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Fields every log line written while handling one request or one event carries, whichever
 * logger writes it: the reservation it is about, the event being handled. The root logger's
 * mixin (createLogger) adds them, with the active span's trace and span ids (tracing.ts).
 *
 * A request or a delivery runs inside `runWithLogFields`; code that learns more on the way (the
 * id of a reservation just created) adds it with `addLogFields`, and the lines after it carry it.
 *
 * @example
 * await runWithLogFields({ eventId: event.id }, () => handle(event));
 * addLogFields({ reservationId: 42 }); // inside: every later line of this event says so
 */
const store = new AsyncLocalStorage<Record<string, unknown>>();

export function runWithLogFields<T>(fields: Record<string, unknown>, fn: () => T): T {
  return store.run({ ...store.getStore(), ...fields }, fn);
}

/** Adds fields to the current request's or event's lines (nothing outside one). */
export function addLogFields(fields: Record<string, unknown>): void {
  const current = store.getStore();
  if (current) Object.assign(current, fields);
}

/** The fields of the current request or event (undefined outside one). */
export function currentLogFields(): Readonly<Record<string, unknown>> | undefined {
  return store.getStore();
}
