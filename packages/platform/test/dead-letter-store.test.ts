import { describe } from 'vitest';
import { KyselyDeadLetterStore, KyselyInbox, openServiceDatabase, type DatabaseConfig } from '@bstore/platform';
import { testLogger } from '../../../test/support/harness.ts';
import { freshDatabase } from '../../../test/support/postgres.ts';
import { describeDeadLetterStoreContract } from '../../../test/support/dead-letter-store.contract.ts';

/** A service database with only the platform's messaging tables (outbox, inbox, dead_letters). */
async function sqlStore(config: DatabaseConfig, cleanup: () => Promise<void> = async () => {}) {
  const database = await openServiceDatabase(config, {}, testLogger());
  const inbox = new KyselyInbox(database.db);
  return {
    store: new KyselyDeadLetterStore(database.db),
    park: (letter: Parameters<KyselyInbox<unknown>['park']>[0]) => inbox.park(letter),
    close: async () => {
      await database.close();
      await cleanup();
    },
  };
}

describe('KyselyDeadLetterStore', () => {
  describeDeadLetterStoreContract('SQL on PGlite', () => sqlStore({ kind: 'pglite' }));

  describeDeadLetterStoreContract('SQL on PostgreSQL', async () => {
    const fresh = await freshDatabase('dead_letters');
    return sqlStore({ kind: 'postgres', url: fresh.url, poolSize: 4 }, fresh.drop);
  });

  describeDeadLetterStoreContract('SQL on PostgreSQL, in a schema of its own', async () => {
    const fresh = await freshDatabase('dead_letters_schema');
    return sqlStore({ kind: 'postgres', url: fresh.url, poolSize: 4, schema: 'book' }, fresh.drop);
  });
});
