import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect } from 'kysely';

/**
 * Where a service keeps its data. Embedded mode: PGlite (PostgreSQL compiled to WASM) in a folder,
 * or in memory when `dataDir` is omitted (tests). Cluster mode adds PostgreSQL.
 */
export type DatabaseConfig = { kind: 'pglite'; dataDir?: string };

export interface Database<DB> {
  readonly db: Kysely<DB>;
  readonly kind: DatabaseConfig['kind'];
  close(): Promise<void>;
}

/**
 * Opens a database and returns a Kysely instance on it.
 *
 * @example
 * const { db, close } = await openDatabase<BookTables>({ kind: 'pglite', dataDir: './data/book' });
 */
export async function openDatabase<DB>(config: DatabaseConfig): Promise<Database<DB>> {
  if (config.dataDir) await mkdir(config.dataDir, { recursive: true });
  const pglite = await PGlite.create(config.dataDir);
  const db = new Kysely<DB>({ dialect: new PGliteDialect({ pglite }) });
  return {
    db,
    kind: 'pglite',
    async close() {
      await db.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
}
