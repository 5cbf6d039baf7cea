/** The two roles of design §7: patrons reserve, librarians manage the catalogue and the saga. */
export type Role = 'customer' | 'staff';

/** A verified caller: whose reservations these are, and what they may do. */
export interface Identity {
  readonly customerId: string;
  readonly role: Role;
}

/** What a customer id may hold: it is stored, logged and used in URLs and keys. */
export const CUSTOMER_ID = /^[A-Za-z0-9._@-]{1,64}$/;
