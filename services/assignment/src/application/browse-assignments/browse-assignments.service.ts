import type { AssignmentQuery, AssignmentRecord, AssignmentRepository } from '../ports.ts';

/** Read side of the assignments, for staff: a page, or the one of a reservation. */
export class BrowseAssignments {
  readonly #assignments: AssignmentRepository;

  constructor(assignments: AssignmentRepository) {
    this.#assignments = assignments;
  }

  list(query: AssignmentQuery): Promise<{ items: AssignmentRecord[]; total: number }> {
    return this.#assignments.list(query);
  }
}
