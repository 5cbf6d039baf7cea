import { hasIdentityConfiguration } from './auth-config.ts';
import { ConfigError, boolSetting, choiceSetting, intSetting, listSetting, urlSetting } from './env.ts';
import { DEFAULT_PORTS, SERVICE_NAMES, urlVariableOf, type ServiceName } from './registry.ts';
import { keepsSqlDatabase, readServiceConfig } from './service-config.ts';

export interface ClusterConfig {
  services: ServiceName[];
  host: string;
  ports: Record<ServiceName, number>;
  /** Whether the children run with the demo identity (no BSTORE_AUTH_* given). */
  demoAuth: boolean;
  /** The environment of each service's process, on top of the supervisor's own. */
  envOf: Record<ServiceName, Record<string, string>>;
  restart: { initialMs: number; maxMs: number; stableAfterMs: number };
  /** How long the children get to stop gracefully before they are killed. */
  stopTimeoutMs: number;
}

/**
 * The supervisor's configuration: which services to run and each one's environment. Databases:
 * BSTORE_<SERVICE>_DATABASE_URL for one service; otherwise from the server URL BSTORE_DATABASE_URL,
 * with BSTORE_DATABASE_LAYOUT `database` (a database `bstore_<service>` each, created when
 * missing) or `schema` (the URL's database, a schema per service).
 */
export function readClusterConfig(env: NodeJS.ProcessEnv, terminal: boolean): ClusterConfig {
  const services = listSetting(env, 'BSTORE_SERVICES', SERVICE_NAMES);
  const host = env.BSTORE_HOST || '127.0.0.1';
  const ports = Object.fromEntries(
    SERVICE_NAMES.map((name) => [name, intSetting(env, `BSTORE_${name.toUpperCase()}_PORT`, DEFAULT_PORTS[name], { min: 1, max: 65_535 })]),
  ) as Record<ServiceName, number>;
  const layout = choiceSetting(env, 'BSTORE_DATABASE_LAYOUT', ['database', 'schema'], 'database');
  const server = new URL(urlSetting(env, 'BSTORE_DATABASE_URL', ['postgres:', 'postgresql:'], 'postgres://postgres@127.0.0.1:5432/bstore'));
  const demoData = boolSetting(env, 'BSTORE_DEMO_DATA', true);
  const demoAuth = boolSetting(env, 'BSTORE_DEMO_AUTH', true) && !hasIdentityConfiguration(env);
  const local = (name: ServiceName) => `http://${host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host}:${ports[name]}`;

  const databaseEnv = (name: ServiceName): Record<string, string> => {
    // The service's own settings say whether it keeps a SQL database (customercenter: BSTORE_READ_MODEL=postgres).
    if (!keepsSqlDatabase(env, name)) return {};
    const own = env[`BSTORE_${name.toUpperCase()}_DATABASE_URL`];
    if (own) return { DATABASE_URL: urlSetting(env, `BSTORE_${name.toUpperCase()}_DATABASE_URL`, ['postgres:', 'postgresql:'], own) };
    const url = new URL(server);
    if (layout === 'schema') {
      if (url.pathname.length <= 1) url.pathname = '/bstore';
      return { DATABASE_URL: url.toString(), DATABASE_SCHEMA: name };
    }
    url.pathname = `/bstore_${name}`;
    return { DATABASE_URL: url.toString() };
  };

  const envOf = Object.fromEntries(
    SERVICE_NAMES.map((name): [ServiceName, Record<string, string>] => [
      name,
      {
        PORT: String(ports[name]),
        HOST: host,
        // Every service's URL, in the variable the services that call it read (BOOK_URL).
        ...Object.fromEntries(SERVICE_NAMES.map((peer) => [urlVariableOf(peer), local(peer)])),
        BSTORE_DEMO_DATA: String(demoData),
        // A developer's cluster signs in with the demo users unless real identity is configured
        // (the services then read BSTORE_AUTH_* from the supervisor's own environment).
        BSTORE_DEMO_AUTH: String(demoAuth),
        LOG_FORMAT: env.LOG_FORMAT || (terminal ? 'pretty' : 'json'),
        ...databaseEnv(name),
      },
    ]),
  ) as Record<ServiceName, Record<string, string>>;

  const restart = {
    initialMs: intSetting(env, 'BSTORE_RESTART_INITIAL_MS', 1000, { min: 10, max: 60_000 }),
    maxMs: intSetting(env, 'BSTORE_RESTART_MAX_MS', 30_000, { min: 10, max: 600_000 }),
    stableAfterMs: intSetting(env, 'BSTORE_RESTART_STABLE_AFTER_MS', 60_000, { min: 100, max: 3_600_000 }),
  };
  if (restart.maxMs < restart.initialMs) throw new ConfigError('BSTORE_RESTART_MAX_MS must not be below BSTORE_RESTART_INITIAL_MS');
  const grace = intSetting(env, 'BSTORE_SHUTDOWN_GRACE_MS', 10_000, { min: 100, max: 600_000 });
  const chosen = services.length > 0 ? services : [...SERVICE_NAMES];
  // Each child's whole configuration is checked here, once: a mistake (say, real identity without
  // BSTORE_INTERNAL_KEY) stops the supervisor with its message instead of a child crash-looping.
  for (const name of chosen) {
    try {
      readServiceConfig({ ...env, ...envOf[name] }, name);
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(`${name}: ${err.message}`);
      throw err;
    }
  }
  return { services: chosen, host, ports, envOf, restart, stopTimeoutMs: grace + 5000, demoAuth };
}
