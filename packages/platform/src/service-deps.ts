import type { Logger } from 'pino';
import { openDatabase, type Database } from './db/database.ts';
import type { DatabaseConfig } from './db/config.ts';
import { migrateToLatest, verifyMigrated, type Migrations } from './db/migrations.ts';
import type { MessageBus } from './messaging/bus.ts';
import type { EventConsumerOptions } from './messaging/consumer.ts';
import type { ServiceAuth } from './auth/service-auth.ts';
import type { ServiceTracing } from './tracing.ts';

/** What every service's composition root is given by a launcher (embedded now, cluster next). */
export interface ServiceDeps {
  database: DatabaseConfig;
  bus: MessageBus;
  logger: Logger;
  /** Verifies callers' tokens (and signs this service's internal calls). */
  auth: ServiceAuth;
  /**
   * The service's tracing (its own tracer provider); absent: trace ids only, nothing exported
   * (`tracingOf`). The launchers build it from the OTEL_* settings.
   */
  tracing?: ServiceTracing;
  /**
   * How its event consumer retries a failing delivery before parking it as a dead letter; absent:
   * the consumer's defaults (20 deliveries over about eight minutes). The hosts keep the defaults;
   * a test that watches an event reach the dead letters through the bus shortens them.
   */
  delivery?: DeliveryPolicy;
}

/** Deliveries before an event is parked, and the delay before each redelivery: the consumer's own options. */
export type DeliveryPolicy = Pick<EventConsumerOptions<unknown>, 'maxDeliver' | 'backoffMs'>;

/**
 * Opens the service's own database and migrates it to the latest schema, or, with
 * `migrations: 'verify'`, checks that a migration job already did (and fails naming what is missing).
 */
export async function openServiceDatabase<DB>(config: DatabaseConfig, migrations: Migrations, logger: Logger): Promise<Database<DB>> {
  const database = await openDatabase<DB>(config);
  try {
    const schema = config.kind === 'postgres' ? config.schema : undefined;
    if (config.kind === 'postgres' && config.migrations === 'verify') {
      await verifyMigrated(database.db as never, migrations, schema);
      return database;
    }
    const applied = await migrateToLatest(database.db as never, migrations, schema);
    if (applied.length > 0) logger.info({ applied }, 'database migrated');
    return database;
  } catch (err) {
    await database.close();
    throw err;
  }
}
