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
    created_at: Generated<Date>;
    updated_at: Generated<Date>;
  };
  /** Copies held for each patron now: the count of their `held` holds, kept with every hold and release. */
  customer_copies: {
    customer_id: string;
    held: number;
  };
}
