/** `@bstore/platform/persistence`: a service's SQL database (Kysely on PGlite or PostgreSQL), migrations, transactions, a service's database opened and migrated (`openServiceDatabase`). */
export * from './db/database.ts';
export * from './db/migrations.ts';
export * from './db/transactions.ts';
export * from './db/errors.ts';
export * from './service-deps.ts';
