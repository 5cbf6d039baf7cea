/** PostgreSQL's SQLSTATE for unique_violation, as reported by pg and PGlite alike. */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === '23505';
}
