import { STATUS_RANK } from '@bstore/contracts/statuses';
import type { ReservationPage } from '../api.ts';

/** Progress order of the lifecycle (the contracts' rank): a status never moves back to a lower rank. */
export { STATUS_RANK } from '@bstore/contracts/statuses';

/** The fresher of two versions of a page (the stream and a reload can cross). */
export function fresher(current: ReservationPage, incoming: ReservationPage): ReservationPage {
  if (incoming.updatedAt > current.updatedAt) return incoming;
  if (incoming.updatedAt < current.updatedAt) return current;
  return STATUS_RANK[incoming.status] >= STATUS_RANK[current.status] ? incoming : current;
}

/** A loan past its due date (an unparsable or missing date is never overdue). */
export function isOverdue(dueAt: string | null | undefined, now: number): boolean {
  if (!dueAt) return false;
  const due = Date.parse(dueAt);
  return !Number.isNaN(due) && due < now;
}

/** Whether an instant falls on the reader's calendar day of `now` (in their time zone). */
export function isSameDay(iso: string, now: number): boolean {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return false;
  const today = new Date(now);
  return date.getFullYear() === today.getFullYear() && date.getMonth() === today.getMonth() && date.getDate() === today.getDate();
}
