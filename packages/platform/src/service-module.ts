import type { Logger } from 'pino';
import type { SettingsOf, SettingsSchema } from './config/settings.ts';
import type { DatabaseConfig } from './db/config.ts';
import type { Migrations } from './db/migrations.ts';
import type { MessageBus } from './messaging/bus.ts';
import type { ServiceAuth } from './auth/service-auth.ts';
import type { ServiceRuntime } from './service-runtime.ts';
import type { ServiceTracing } from './tracing.ts';

/** What a host gives a service module's `build`: only what the module says it needs. */
export interface ServiceModuleDeps {
  logger: Logger;
  auth: ServiceAuth;
  tracing: ServiceTracing;
  /** Present when the module has `migrations` and the host keeps its data in SQL (see `usesSql`). */
  database?: DatabaseConfig;
  /** Present when the module `usesBus`. */
  bus?: MessageBus;
}

/**
 * A service, described once: what every host (embedded, cluster, one service, migrate) needs to
 * know to run it. The hosts in apps/ loop over a registry of these and know no service by name, so
 * adding a service is its folder and one line in the registry.
 *
 * `Config` is what `build` takes: the schema's settings, plus, for a host that builds it in process
 * (tests, embedded mode), overrides such as a clock.
 */
export interface ServiceModule<
  S extends SettingsSchema = SettingsSchema,
  R extends ServiceRuntime = ServiceRuntime,
  Config extends SettingsOf<S> = SettingsOf<S>,
  Name extends string = string,
> {
  readonly name: Name;
  /** The port it listens on unless told otherwise (the seed's ports). */
  readonly defaultPort: number;
  /** Its own settings (beyond the host's: port, database, bus, identity, logs, tracing). */
  readonly settings: S;
  /** Its SQL migrations, when it can keep its data in SQL; a host gives it a database then. */
  readonly migrations?: Migrations;
  /**
   * Whether, with these settings, it keeps its data in its SQL database on a server (cluster mode
   * and Kubernetes); default: when it has migrations. Embedded mode always gives it one (PGlite).
   */
  usesSql?(settings: SettingsOf<S>): boolean;
  /** Whether it reads or writes events (a host connects it to the bus). */
  readonly usesBus: boolean;
  /** Whether it calls another service with the internal service token (it then needs BSTORE_INTERNAL_KEY outside demo mode). */
  readonly internalCalls?: 'makes' | 'takes' | 'both';
  /** Whether it signs users in (issues tokens with BSTORE_AUTH_SIGNING_KEY): the public entry. */
  readonly issuesTokens?: boolean;
  /** Builds it, not listening yet. */
  build(deps: ServiceModuleDeps, config: Config): Promise<R>;
  /** Work to run once it listens, before it counts as started (what a previous run left behind). A failure is logged, not fatal. */
  afterStart?(runtime: R, logger: Logger): Promise<void>;
  /** Adds the demo data that is missing; returns what it added, for the log. */
  seedDemoData?(runtime: R): Promise<Record<string, number>>;
}

/** Declares a service module with its types inferred (settings, runtime, build's config). */
export function defineService<const Name extends string, S extends SettingsSchema, R extends ServiceRuntime, Config extends SettingsOf<S> = SettingsOf<S>>(
  module: ServiceModule<S, R, Config, Name>,
): ServiceModule<S, R, Config, Name> {
  return module;
}

/** Whether `module`, with `settings`, keeps its data in a SQL database on a server. */
export function usesSql<S extends SettingsSchema>(module: ServiceModule<S, ServiceRuntime, SettingsOf<S>>, settings: SettingsOf<S>): boolean {
  if (!module.migrations) return false;
  return module.usesSql ? module.usesSql(settings) : true;
}

/** The dependencies of a service that keeps its data in SQL and uses the bus, or an error naming what the host did not give. */
export function sqlServiceDeps(name: string, deps: ServiceModuleDeps): ServiceModuleDeps & { database: DatabaseConfig; bus: MessageBus } {
  if (!deps.database) throw new Error(`${name} needs a database`);
  if (!deps.bus) throw new Error(`${name} needs the bus`);
  return { database: deps.database, bus: deps.bus, logger: deps.logger, auth: deps.auth, tracing: deps.tracing };
}
