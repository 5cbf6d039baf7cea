import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayService, type GatewayConfig, type GatewayService } from '@bstore/gateway';
import { testLogger } from '../../../test/support/harness.ts';
import { testAuth } from '../../../test/support/auth.ts';
import { readSettings } from '@bstore/platform';
import { gatewaySettings } from '../src/module.ts';
import { readServiceConfig } from '../../../apps/launcher/src/service-config.ts';

const readWebRoot = (env: Record<string, string>) => readSettings(gatewaySettings, env).webRoot;

/**
 * The web app the gateway serves (web.ts), on a fake build in a temporary folder: the page and its
 * headers, the hashed assets and their cache, what is refused (listing, dotfiles, `..`), and that
 * the API around it answers as before.
 */

const INDEX_HTML = '<!doctype html><html lang="en"><head><title>bstore</title><script type="module" src="/assets/x.js"></script></head><body><div id="root"></div></body></html>';
const SCRIPT = 'console.log("bstore");';
const SECRET = 'outside the web root: never served';

const PAGE_CSP =
  "default-src 'self';script-src 'self';style-src 'self';img-src 'self' data:;connect-src 'self';font-src 'self';object-src 'none';base-uri 'none';form-action 'self';frame-ancestors 'none'";

let folder: string;
let upstream: Server;
let upstreamUrl: string;
const gateways: GatewayService[] = [];
let built: string; // a gateway with a built web app
let unbuilt: string; // its web root has no index.html
let without: string; // no web root at all

async function gateway(config: Omit<GatewayConfig, 'upstreams'>): Promise<{ url: string; service: GatewayService }> {
  const service = await createGatewayService(
    { logger: testLogger(), auth: await testAuth() },
    { upstreams: { reservation: upstreamUrl, book: upstreamUrl, assignment: upstreamUrl, customercenter: upstreamUrl, notification: upstreamUrl }, ...config },
  );
  gateways.push(service);
  await service.start({ port: 0 });
  return { url: service.url, service };
}

/** A request whose path is sent exactly as written (fetch would resolve `..` and `%2e%2e` first). */
function raw(base: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

let builtService: GatewayService;

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'bstore-web-'));
  const dist = join(folder, 'dist');
  await mkdir(join(dist, 'assets', 'nested'), { recursive: true });
  await writeFile(join(dist, 'index.html'), INDEX_HTML);
  await writeFile(join(dist, 'assets', 'x.js'), SCRIPT);
  await writeFile(join(dist, 'assets', 'x.css'), 'body { margin: 0 }');
  await writeFile(join(dist, 'assets', 'nested', 'y.js'), SCRIPT);
  await writeFile(join(dist, 'assets', '.hidden.js'), SECRET);
  await writeFile(join(dist, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  await writeFile(join(dist, '.env'), SECRET);
  await writeFile(join(folder, 'secret.txt'), SECRET);
  await mkdir(join(folder, 'empty'));

  upstream = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, url: req.url }));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

  const withApp = await gateway({ webRoot: dist });
  built = withApp.url;
  builtService = withApp.service;
  unbuilt = (await gateway({ webRoot: join(folder, 'empty') })).url;
  without = (await gateway({})).url;
});

afterAll(async () => {
  for (const g of gateways) await g.stop();
  upstream.closeAllConnections();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
  await rm(folder, { recursive: true, force: true });
});

describe('the web app the gateway serves', () => {
  it('GET / is the page: index.html, revalidated every time, with the page CSP and the other security headers', async () => {
    const res = await fetch(`${built}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('etag') ?? res.headers.get('last-modified')).toBeTruthy();
    expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await res.text()).toBe(INDEX_HTML);

    // A browser's navigation Accept header is fine; so is HEAD.
    const navigation = await fetch(`${built}/`, { headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' } });
    expect(navigation.status).toBe(200);
    const head = await fetch(`${built}/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-security-policy')).toBe(PAGE_CSP);
  });

  it('revalidates the page: a matching ETag gets 304', async () => {
    const first = await fetch(`${built}/`);
    const etag = first.headers.get('etag');
    expect(etag).toBeTruthy();
    // Sent raw: fetch adds `cache-control: no-cache` to a conditional request, which forces a full answer.
    const again = await raw(built, '/', { 'if-none-match': etag ?? '' });
    expect(again.status).toBe(304);
  });

  it('GET / with an Accept header that allows only JSON is 406: the page is HTML', async () => {
    const res = await fetch(`${built}/`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(406);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ code: 'NOT_ACCEPTABLE', produces: ['text/html'] });
  });

  it('serves the hashed assets with their type and a year-long immutable cache, under the API CSP', async () => {
    const script = await fetch(`${built}/assets/x.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^(text|application)\/javascript/);
    expect(script.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(script.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await script.text()).toBe(SCRIPT);

    const style = await fetch(`${built}/assets/x.css`, { headers: { accept: 'text/css,*/*;q=0.1' } });
    expect(style.status).toBe(200);
    expect(style.headers.get('content-type')).toMatch(/^text\/css/);

    const nested = await fetch(`${built}/assets/nested/y.js`, { headers: { accept: '*/*' } });
    expect(nested.status).toBe(200);

    const missing = await fetch(`${built}/assets/nope.js`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
  });

  it('serves the top-level public files (favicon), revalidated', async () => {
    const res = await fetch(`${built}/favicon.svg`, { headers: { accept: 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect((await fetch(`${built}/nope.png`)).status).toBe(404);
  });

  it('lists no directory and serves no dotfile', async () => {
    for (const path of ['/assets/', '/assets', '/assets/nested/', '/assets/nested']) {
      const res = await raw(built, path);
      expect(res.status, path).toBe(404);
      expect(res.body, path).not.toContain('x.js');
    }
    for (const path of ['/assets/.hidden.js', '/.env', '/assets/%2ehidden.js']) {
      const res = await raw(built, path);
      expect(res.status, path).toBe(404);
      expect(res.body, path).not.toContain(SECRET);
    }
  });

  it('never leaves the folder: `..` in any spelling is refused', async () => {
    const attempts = [
      '/assets/../index.html',
      '/assets/../../secret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%2E%2E%2F%2E%2E%2Fsecret.txt',
      '/assets/nested/../../../secret.txt',
      '/assets/..\\..\\secret.txt',
      '/assets//etc/passwd',
      '/..%2fsecret.txt',
      '/%2e%2e/secret.txt',
      '/../secret.txt',
    ];
    for (const path of attempts) {
      const res = await raw(built, path);
      expect([400, 404], path).toContain(res.status);
      expect(res.body, path).not.toContain(SECRET);
      expect(res.body, path).not.toContain('<html');
      expect(res.body, path).not.toContain('root:');
    }
  });

  it('leaves the API as it was: proxied paths, the API CSP, 404 and 405, and nothing of it in the OpenAPI document', async () => {
    const books = await fetch(`${built}/books`);
    expect(books.status).toBe(200);
    expect(await books.json()).toMatchObject({ ok: true, url: '/books' });
    expect(books.headers.get('content-security-policy')).toContain("default-src 'none'");

    const unknown = await fetch(`${built}/nope`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
    expect((await fetch(`${built}/nope`, { method: 'DELETE' })).status).toBe(404);

    const post = await fetch(`${built}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toMatch(/^GET, HEAD\b/);

    const live = await fetch(`${built}/health/live`);
    expect(live.status).toBe(200);

    const routes = builtService.app.registeredRoutes();
    const web = routes.filter((r) => r.url === '/' || r.url.startsWith('/assets') || r.url.startsWith('/:file'));
    expect(web.length).toBeGreaterThanOrEqual(3);
    expect(web.every((r) => r.hidden)).toBe(true);
    const paths = Object.keys(builtService.app.ownOpenApiDocument().paths ?? {});
    expect(paths.filter((p) => p === '/' || p.startsWith('/assets') || p.includes('file'))).toEqual([]);
  });

  it('answers 503 WEB_APP_NOT_BUILT when the folder has no index.html', async () => {
    const res = await fetch(`${unbuilt}/`);
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = (await res.json()) as { code: string; detail: string };
    expect(body.code).toBe('WEB_APP_NOT_BUILT');
    expect(body.detail).toContain('run npm run build:web');
    expect((await fetch(`${unbuilt}/assets/x.js`)).status).toBe(404);
  });

  it('without a web root, GET / is a 404 as before', async () => {
    const res = await fetch(`${without}/`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
    expect((await fetch(`${without}/assets/x.js`)).status).toBe(404);
  });

  it('refuses a relative web root at start', async () => {
    await expect(
      createGatewayService(
        { logger: testLogger(), auth: await testAuth() },
        { upstreams: { reservation: upstreamUrl, book: upstreamUrl, assignment: upstreamUrl, customercenter: upstreamUrl, notification: upstreamUrl }, webRoot: 'web/dist' },
      ),
    ).rejects.toThrow(/absolute/);
  });
});

describe('BSTORE_WEB_ROOT', () => {
  const repositoryWebDist = fileURLToPath(new URL('../../../web/dist', import.meta.url));

  it("defaults to the repository's web/dist; empty turns the web app off; a relative path is taken from here", () => {
    expect(readWebRoot({})).toBe(repositoryWebDist);
    expect(readWebRoot({ BSTORE_WEB_ROOT: '' })).toBeUndefined();
    expect(readWebRoot({ BSTORE_WEB_ROOT: '  ' })).toBeUndefined();
    expect(readWebRoot({ BSTORE_WEB_ROOT: '/srv/bstore/web' })).toBe('/srv/bstore/web');
    expect(readWebRoot({ BSTORE_WEB_ROOT: 'build/web' })).toBe(resolve('build/web'));
  });

  it('reaches the gateway process', () => {
    expect(readServiceConfig({ BSTORE_DEMO_AUTH: 'true' }, 'gateway').settings.webRoot).toBe(repositoryWebDist);
    expect(readServiceConfig({ BSTORE_DEMO_AUTH: 'true', BSTORE_WEB_ROOT: '' }, 'gateway').settings.webRoot).toBeUndefined();
  });
});
