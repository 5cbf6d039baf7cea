/**
 * Where a service keeps its data. Embedded mode: PGlite (PostgreSQL compiled to WASM) in a folder,
 * or in memory when `dataDir` is omitted, or an `instance` its owner opened (a test that reads the
 * service's data as an operator would; the service then leaves it open when it stops).
 * PostgreSQL: a server, through a pool; the same SQL and migrations run on both.
 */
export type DatabaseConfig =
  | { kind: 'pglite'; dataDir?: string; instance?: PGliteInstance }
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

/**
 * An open PGlite database (`@electric-sql/pglite`'s `PGlite`), named here by what configuration
 * needs of it, so that reading a configuration loads no database (the gateway reads this module).
 */
export interface PGliteInstance {
  readonly closed: boolean;
  close(): Promise<void>;
}
