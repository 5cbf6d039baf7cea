import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ServiceRuntime, createHttpApp, defineService, setting, type ServiceModule } from '@bstore/platform';
import { startEmbedded, type EmbeddedSystem } from '../src/embedded-system.ts';
import { DEFAULT_PORTS, MODULES, SERVICE_NAMES } from '../src/registry.ts';
import { readServiceConfig, schemaVariablesOf } from '../src/service-config.ts';
import { readClusterConfig } from '../src/cluster-config.ts';
import { testLogger } from '../../../test/support/harness.ts';

/**
 * The hosts know no service by name (issue 19): they loop over the registry of service modules.
 * A new service is its module and one line in the registry; here a small one, `notices`, joins
 * the registry's six and every host runs it with no change of its own: its settings from its
 * schema, the URL of the services started before it, its demo data and its start-up work.
 */

const SRC = join(import.meta.dirname, '../src');

let afterStartRan = 0;
/** A sixth service: reads a setting of its own and BOOK_URL, answers what it knows, calls book. */
const noticesService = defineService({
  name: 'notices',
  defaultPort: 8085,
  settings: {
    greeting: setting.name('NOTICES_GREETING', /^[a-z]+$/, 'hello'),
    bookUrl: setting.urlList('BOOK_URL', ['http:', 'https:'], 'http://127.0.0.1:8083'),
  },
  usesBus: false,
  build: async (deps, config) => {
    const app = createHttpApp({ service: 'notices', logger: deps.logger });
    const demoNotices: string[] = [];
    app.get('/notice', async () => {
      const book = await fetch(`${config.bookUrl[0]}/books/1`);
      return { greeting: config.greeting, bookStatus: book.status, book: ((await book.json()) as { bookName?: string }).bookName ?? null, demoNotices };
    });
    return new ServiceRuntime({ name: 'notices', logger: deps.logger, app, operations: { addDemoNotice: (text: string) => demoNotices.push(text) } });
  },
  seedDemoData: async (runtime) => {
    runtime.operations.addDemoNotice('welcome to the library');
    return { notices: 1 };
  },
  afterStart: async () => {
    afterStartRan++;
  },
});
const withNotices: readonly ServiceModule[] = [...MODULES, noticesService];

let system: EmbeddedSystem | undefined;
afterAll(async () => {
  await system?.stop();
});

describe('the registry of service modules', () => {
  it('lists the six services in start-up order, each with the seed port of its own module (notification: the next free one)', () => {
    expect(SERVICE_NAMES).toEqual(['book', 'assignment', 'customercenter', 'notification', 'reservation', 'gateway']);
    expect(DEFAULT_PORTS).toEqual({ book: 8083, assignment: 8082, customercenter: 8084, notification: 8085, reservation: 8081, gateway: 8088 });
    // A service starts after those it calls: reservation after book, the gateway last.
    expect(SERVICE_NAMES.indexOf('reservation')).toBeGreaterThan(SERVICE_NAMES.indexOf('book'));
    expect(SERVICE_NAMES.at(-1)).toBe('gateway');
  });

  it('no host names a service: the only service names in apps/launcher/src are in registry.ts', () => {
    const literal = new RegExp(`['"\`](${SERVICE_NAMES.join('|')})['"\`]`);
    const offenders = readdirSync(SRC)
      .filter((file) => file.endsWith('.ts') && file !== 'registry.ts')
      .flatMap((file) =>
        readFileSync(join(SRC, file), 'utf8')
          .split('\n')
          .map((line, i) => ({ where: `${file}:${i + 1}`, line }))
          .filter(({ line }) => !line.trim().startsWith('*') && !line.trim().startsWith('//') && literal.test(line)),
      )
      .map(({ where, line }) => `${where}: ${line.trim()}`);
    expect(offenders).toEqual([]);
  });

  it('a new service runs embedded with no change to the host: its settings, the URLs before it, its demo data and start-up work', { timeout: 120_000 }, async () => {
    system = await startEmbedded({
      logger: testLogger(),
      ports: { gateway: 0, reservation: 0, assignment: 0, book: 0, customercenter: 0, notification: 0, notices: 0 } as Record<string, number>,
      seedDemoData: true,
      env: { NOTICES_GREETING: 'welcome', BSTORE_WEB_ROOT: '' },
      services: withNotices,
    });
    const urls = system.urls as Record<string, string>;
    expect(Object.keys(urls)).toEqual([...SERVICE_NAMES, 'notices']);
    const res = await fetch(`${urls.notices}/notice`);
    expect(res.status).toBe(200);
    // Its BOOK_URL was book's address in this system (the demo catalogue's first book); its demo data was added once.
    expect(await res.json()).toEqual({ greeting: 'welcome', bookStatus: 200, book: expect.any(String), demoNotices: ['welcome to the library'] });
    expect(afterStartRan).toBe(1);
  });

  it('a new service is a process of its own with no change to the host: its port, its settings, no database or bus it does not use', () => {
    const config = readServiceConfig({ BSTORE_DEMO_AUTH: 'true', NOTICES_GREETING: 'bonjour', BOOK_URL: 'http://book-0:8083,http://book-1:8083' }, 'notices', withNotices);
    expect(config.port).toBe(8085);
    expect(config.settings).toEqual({ greeting: 'bonjour', bookUrl: ['http://book-0:8083', 'http://book-1:8083'] });
    expect(config).not.toHaveProperty('database');
    expect(config).not.toHaveProperty('nats');
    expect(() => readServiceConfig({ BSTORE_DEMO_AUTH: 'true', NOTICES_GREETING: 'Bonjour!' }, 'notices', withNotices)).toThrow(/NOTICES_GREETING must match/);
  });

  it("the cluster supervisor gives every service every other one's URL and only a SQL service a database", () => {
    const cluster = readClusterConfig({}, false);
    for (const name of SERVICE_NAMES) {
      for (const peer of SERVICE_NAMES) expect(cluster.envOf[name][`${peer.toUpperCase()}_URL`], `${name} → ${peer}`).toBe(`http://127.0.0.1:${DEFAULT_PORTS[peer]}`);
      expect(Boolean(cluster.envOf[name].DATABASE_URL), name).toBe(schemaVariablesOf(name).includes('DATABASE_URL') && name !== 'customercenter');
    }
  });
});
