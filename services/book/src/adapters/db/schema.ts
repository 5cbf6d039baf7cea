import type { Generated } from 'kysely';
import type { MessagingTables } from '@bstore/platform';
import type { HoldStatus } from '../../domain/hold.ts';

export interface BookTables extends MessagingTables {
  books: {
    book_id: Generated<number>;
    book_name: string;
    author: string | null;
    isbn: string | null;
    quantity: number;
    copies: number;
    created_at: Generated<Date>;
    updated_at: Generated<Date>;
  };
  holds: {
    reservation_id: number;
    book_id: number;
    customer_id: string;
    status: HoldStatus;
    /** The place in the book's line (bigint from the sequence hold_queue_tickets); null if it never waited. */
    queue_ticket: string | number | null;
    created_at: Generated<Date>;
    updated_at: Generated<Date>;
  };
  /** Copies held or waited for by each patron now: the count of their `held` and `waiting` holds, kept with every hold, release and check-out. */
  customer_copies: {
    customer_id: string;
    held: number;
  };
}
