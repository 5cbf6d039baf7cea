import { defineService, sqlServiceDeps } from '@bstore/platform';
import { reservationMigrations } from './adapters/db/migrations.ts';
import { reservationSettings } from './settings.ts';
import { createReservationService, type ReservationConfig } from './main.ts';

export { reservationSettings };

/** The reservation service as every host runs it: reservations and their sagas (the seed's port 8081). */
export const reservationService = defineService({
  name: 'reservation',
  defaultPort: 8081,
  settings: reservationSettings,
  migrations: reservationMigrations,
  usesBus: true,
  internalCalls: 'makes',
  build: (deps, config: ReservationConfig) => createReservationService(sqlServiceDeps('reservation', deps), config),
  // What a previous run left: pending reservations are driven on, and copies whose pickup deadline
  // passed while the service was down expire now, not an interval later.
  afterStart: async (reservation, logger) => {
    await reservation.operations.recoverPending.execute().catch((err: unknown) => logger.error({ err }, 'start-up recovery sweep failed'));
    await reservation.operations.expireUncollected.execute().catch((err: unknown) => logger.error({ err }, 'start-up deadline sweep failed'));
  },
});
