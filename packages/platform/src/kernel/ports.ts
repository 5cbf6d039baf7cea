import type { EventEnvelope } from '@bstore/contracts';

/**
 * Where a use case records the integration events of a change. The adapter writes them to the
 * service's `outbox` table inside the same transaction as the change itself.
 *
 * @example
 * await uow.outbox.add(createEnvelope({ type: 'ReservationRequested', ... }));
 */
export interface Outbox {
  add(event: EventEnvelope): Promise<void>;
}

/**
 * Runs work in one database transaction. `TUnitOfWork` is the service's own bundle of
 * repositories (and its outbox) bound to that transaction; the work commits if it resolves and
 * rolls back if it throws.
 *
 * @example
 * const id = await transactions.run(async (uow) => { const r = Reservation.create(...); return uow.reservations.insert(r); });
 */
export interface TransactionRunner<TUnitOfWork> {
  run<T>(work: (uow: TUnitOfWork) => Promise<T>): Promise<T>;
}

/** Time, injectable so that tests and sweeps are deterministic. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** The logging that use cases need; pino's Logger satisfies it. */
export interface AppLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
