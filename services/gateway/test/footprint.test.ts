import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * A service loads only what it uses (issue 19): the platform's parts are entries of their own
 * (`@bstore/platform/http`, `/runtime`, ...), and the gateway, which keeps no data and reads no
 * events, imports only those it needs. Checked in a real Node process that records every module
 * it resolves while importing the service; dependency-cruiser checks the same statically.
 */

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'bstore-footprint-'));
const script = join(dir, 'load.mjs');
writeFileSync(
  script,
  `import { registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';
const seen = [];
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.push(r.url); return r; } });
await import(pathToFileURL(process.argv[2]).href);
process.stdout.write(JSON.stringify(seen.filter((u) => u.includes('/node_modules/')).map((u) => u.replace(/.*\\/node_modules\\//, ''))));
`,
);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The packages (by name) a service's index loads, in a fresh process. */
async function packagesLoadedBy(entry: string): Promise<Set<string>> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=source', script, join(ROOT, entry)], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  const urls = JSON.parse(stdout) as string[];
  return new Set(urls.map((u) => (u.startsWith('@') ? u.split('/').slice(0, 2).join('/') : (u.split('/')[0] as string))));
}

const DATABASE_AND_BUS = ['@electric-sql/pglite', 'pg', 'pg-pool', 'nats', '@nats-io/jetstream', '@nats-io/transport-node', '@nats-io/nats-core'];

describe('what a service loads', () => {
  it('the gateway loads no database driver and no bus client', { timeout: 60_000 }, async () => {
    const loaded = await packagesLoadedBy('services/gateway/src/index.ts');
    expect(loaded.has('fastify')).toBe(true);
    expect(DATABASE_AND_BUS.filter((p) => loaded.has(p))).toEqual([]);
  });

  it('a SQL service does load them (the check sees what it looks for)', { timeout: 60_000 }, async () => {
    const loaded = await packagesLoadedBy('services/book/src/index.ts');
    expect(loaded.has('@electric-sql/pglite')).toBe(true);
    expect(loaded.has('pg')).toBe(true);
    expect(loaded.has('@nats-io/jetstream')).toBe(true);
  });
});
