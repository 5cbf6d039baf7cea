import type { Generated } from 'kysely';
import type { ReservationStatus } from '@bstore/contracts';
import type { MessagingTables } from '@bstore/platform';
import type { PageEventType } from '../../domain/reservation-page.ts';

export interface CustomerCenterTables extends MessagingTables {
  reservation_pages: {
    reservation_id: number;
    book_id: number;
    book_name: string | null;
    customer_id: string;
    status: ReservationStatus;
    library_id: number | null;
    library_name: string | null;
    /** Migration 0003, as are due_at and queue_ticket; null until an event carries it. */
    pickup_by: Date | null;
    due_at: Date | null;
    /** bigint: read as a number (pg's int8 parser; PGlite's for safe integers), see the store. */
    queue_ticket: number | null;
    // Event times, not row times: the page must not depend on when events arrived.
    created_at: Date;
    updated_at: Date;
  };
  reservation_timeline: {
    id: Generated<number>;
    reservation_id: number;
    event_id: string;
    event_type: PageEventType;
    status: ReservationStatus;
    /** The envelope's CloudEvents source, as received. */
    source: string;
    occurred_at: Date;
    /** The W3C trace id of the event (migration 0002); null for older rows and events without one. */
    trace_id: string | null;
  };
}
