import type { Generated } from 'kysely';
import type { MessagingTables } from '@bstore/platform';
import type { ReservationStatus } from '../../domain/reservation.ts';

export interface ReservationTables extends MessagingTables {
  reservations: {
    reservation_id: Generated<number>;
    book_id: number;
    customer_id: string;
    preferred_library_id: number | null;
    status: ReservationStatus;
    book_name: string | null;
    library_id: number | null;
    library_name: string | null;
    reject_reason: string | null;
    attempts: number;
    idempotency_key: string | null;
    waitlist: Generated<boolean>;
    /** bigint: book's ticket in the book's waiting line. */
    queue_ticket: string | number | null;
    pickup_by: Date | null;
    due_at: Date | null;
    created_at: Date;
    updated_at: Date;
  };
  idempotency_keys: {
    customer_id: string;
    idempotency_key: string;
    fingerprint: string;
    state: 'running' | 'done';
    /** Who holds the key now: only this claim may name its reservation, complete or release it. */
    claim_id: string | null;
    /** The reservation this key created, named in the transaction that stored it as `pending`. */
    reservation_id: number | null;
    response_status: number | null;
    response_type: string | null;
    response_body: string | null;
    locked_until: Date;
    expires_at: Date;
  };
}
