import type { Generated } from 'kysely';
import type { MessagingTables } from '@bstore/platform';
import type { AssignmentStatus } from '../../domain/assignment.ts';

export interface AssignmentTables extends MessagingTables {
  libraries: {
    library_id: Generated<number>;
    name: string;
    address: string | null;
    created_at: Generated<Date>;
  };
  assignments: {
    assignment_id: Generated<number>;
    reservation_id: number;
    book_id: number;
    customer_id: string;
    library_id: number | null;
    library_name: string | null;
    status: AssignmentStatus;
    created_at: Generated<Date>;
    updated_at: Generated<Date>;
  };
}
