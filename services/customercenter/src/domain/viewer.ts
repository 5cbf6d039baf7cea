import type { ReservationPage } from './reservation-page.ts';

/** Who is looking: a customer sees only their own pages, staff see all. */
export interface Viewer {
  readonly customerId: string;
  readonly role: 'customer' | 'staff';
}

export function canSee(viewer: Viewer, page: Pick<ReservationPage, 'customerId'>): boolean {
  return viewer.role === 'staff' || page.customerId === viewer.customerId;
}
