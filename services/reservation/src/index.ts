export { createReservationService, type ReservationService, type ReservationOperations, type ReservationConfig } from './main.ts';
export { reservationMigrations } from './adapters/db/migrations.ts';
export type { ReservationTables } from './adapters/db/schema.ts';
export type { BookAvailability, BookClient, HoldOutcome } from './application/ports.ts';
export { reservationService, reservationSettings } from './module.ts';
