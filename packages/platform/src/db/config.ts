/**
 * Where a service keeps its data. Embedded mode: PGlite (PostgreSQL compiled to WASM) in a folder,
 * or in memory when `dataDir` is omitted (tests). PostgreSQL: a server, through a pool; the same
 * SQL and migrations run on both.
 */
export type DatabaseConfig =
  | { kind: 'pglite'; dataDir?: string }
  | {
      kind: 'postgres';
      /** postgres://user@host:port/database */
      url: string;
      poolSize?: number;
      /** Create the database (and the schema) when the server does not have it yet. */
      createIfMissing?: boolean;
      /**
       * Keep the service's tables in this schema of the database (one database shared by all
       * services, a schema each), through the connections' search_path.
       */
      schema?: string;
      /**
       * `apply` (default): the service migrates its schema when it starts. `verify`: it only checks
       * that every migration has run, and fails (its launcher retries) until a migration job ran them.
       */
      migrations?: 'apply' | 'verify';
    };
