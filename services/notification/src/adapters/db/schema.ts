import type { Generated } from 'kysely';
import type { ReservationStatus } from '@bstore/contracts/statuses';
import type { MessagingTables } from '@bstore/platform';
import type { NoticeKind, ReminderKind } from '../../domain/notice.ts';

export interface NotificationTables extends MessagingTables {
  reservation_facts: {
    reservation_id: number;
    customer_id: string;
    book_id: number;
    status: ReservationStatus;
    book_name: string | null;
    library_name: string | null;
    pickup_by: Date | null;
    due_at: Date | null;
    updated_at: Generated<Date>;
  };
  notices: {
    /** bigint: pg returns it as a string, PGlite as a number. */
    notice_id: Generated<string | number>;
    customer_id: string;
    reservation_id: number;
    kind: NoticeKind;
    book_id: number;
    book_name: string | null;
    library_name: string | null;
    deadline: Date | null;
    created_at: Generated<Date>;
    read_at: Date | null;
  };
  reminders: {
    reservation_id: number;
    kind: ReminderKind;
    due_at: Date;
  };
}
