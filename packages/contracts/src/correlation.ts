/**
 * What ties together the requests, events, spans and log lines of one saga: the reservation it is
 * about. Every event of the saga carries it in its data as `field`, and every route about one
 * reservation has it as the `field` path parameter. The platform tags spans (`spanAttribute`) and
 * log lines (`field`) with it from these names, without knowing what they name.
 */
export const SAGA_CORRELATION = {
  field: 'reservationId',
  spanAttribute: 'bstore.reservation.id',
} as const;
