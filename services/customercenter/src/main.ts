import type { Kysely, Transaction } from 'kysely';
import { EventConsumer, KyselyInbox, ServiceRuntime, createHttpApp, openServiceDatabase, type ServiceDeps } from '@bstore/platform';
import { isPageEvent } from './application/events.ts';
import type { ReservationPageStore } from './application/ports.ts';
import { ProjectReservationEvent } from './application/project-reservation-event/project-reservation-event.service.ts';
import { ViewReservationPages } from './application/view-reservation-pages/view-reservation-pages.service.ts';
import { WatchReservationPages } from './application/watch-reservation-pages/watch-reservation-pages.service.ts';
import { customercenterMigrations } from './adapters/db/migrations.ts';
import { KyselyReservationPageStore } from './adapters/db/reservation-page.store.ts';
import type { CustomerCenterTables } from './adapters/db/schema.ts';
import { customercenterErrorStatus, customercenterRoutes } from './adapters/http/customercenter.routes.ts';
import { InProcessPageUpdates } from './adapters/live/in-process.page-updates.ts';
import { customercenterEventHandlers } from './adapters/messaging/customercenter.handlers.ts';

/** Composition root of the customer center: the read model of reservations, with live updates. */
export interface CustomerCenterInternals {
  db: Kysely<CustomerCenterTables>;
  consumer: EventConsumer<Transaction<CustomerCenterTables>>;
  store: ReservationPageStore;
}

export type CustomerCenterService = ServiceRuntime<CustomerCenterInternals>;

export async function createCustomerCenterService(deps: ServiceDeps): Promise<CustomerCenterService> {
  const logger = deps.logger.child({ service: 'customercenter' });
  const database = await openServiceDatabase<CustomerCenterTables>(deps.database, customercenterMigrations, logger);
  // Nothing here emits events, so there is no outbox relay.
  const store = new KyselyReservationPageStore(database.db);
  const watch = new WatchReservationPages(store, new InProcessPageUpdates(logger));

  const consumer = new EventConsumer({
    name: 'customercenter',
    inbox: new KyselyInbox(database.db),
    bus: deps.bus,
    logger,
    handlers: customercenterEventHandlers(new ProjectReservationEvent()),
    // The live stream shows a change only once it is committed.
    afterCommit: async (event) => {
      if (isPageEvent(event)) await watch.announce(event.data.reservationId);
    },
  });

  const app = createHttpApp({
    service: 'customercenter',
    logger,
    errorStatus: customercenterErrorStatus,
    readiness: {
      database: async () => void (await database.db.selectFrom('reservation_pages').select('reservation_id').limit(1).execute()),
    },
  });
  await app.register(customercenterRoutes, { pages: new ViewReservationPages(store), watch });

  return new ServiceRuntime({
    name: 'customercenter',
    logger,
    app,
    database,
    consumers: [consumer],
    internals: { db: database.db, consumer, store },
  });
}
