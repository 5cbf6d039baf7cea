import { setting } from '@bstore/platform';

/** Book's own settings (README: "Environment of a service process"). */
export const bookSettings = {
  /** Copies one patron may hold or wait for at once: the same variable as reservation's limit of active reservations (ADR 0021). */
  maxHeldCopiesPerCustomer: setting.int('BSTORE_MAX_ACTIVE_RESERVATIONS', 5, { min: 1, max: 10_000 }),
};
