/** `@bstore/platform/sql-service`: the standard wiring of a service that keeps its data in SQL and uses the bus. */
export * from './service-kit.ts';
