import { setting } from '@bstore/platform';

/** Assignment's own settings (README: "Environment of a service process"). */
export const assignmentSettings = {
  /** How long an assigned copy waits for pickup: stamped on ReservationAccepted as `pickupBy` (ADR 0022). */
  pickupPeriodMs: setting.duration('BSTORE_PICKUP_PERIOD', 'P7D', { minMs: 1000, maxMs: 366 * 86_400_000 }),
};
