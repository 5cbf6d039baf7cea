import { access } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { HttpProblem, type HttpApp } from '@bstore/platform/http';
import { WEB_APP_CSP_DIRECTIVES } from './protections.ts';

export interface WebAppOptions {
  /** Absolute path of the built web app (web/dist): index.html, assets/ and Vite's public files. */
  root: string;
}

/** What the page's route answers with (the 406 check of createHttpApp reads `config.produces`). */
const PAGE_MEDIA_TYPES = ['text/html'] as const;

/** What the hashed assets and the top-level public files are: scripts, styles, images, fonts. */
export const STATIC_MEDIA_TYPES = [
  'text/javascript',
  'application/javascript',
  'text/css',
  'image/svg+xml',
  'image/png',
  'image/x-icon',
  'image/vnd.microsoft.icon',
  'image/webp',
  'image/avif',
  'image/jpeg',
  'image/gif',
  'font/woff2',
  'font/woff',
  'application/manifest+json',
  'text/plain',
  'application/wasm',
] as const;

/**
 * The top-level files Vite copies from public/ (favicon.svg, robots.txt, ...): a plain name with one
 * of these extensions. Only such names are routed, so every other path (the API's included) stays
 * as it was: 404 or 405 as before.
 */
const PUBLIC_FILE = String.raw`/:file(^[A-Za-z0-9_-][A-Za-z0-9._-]*\.(?:ico|svg|png|webp|avif|jpg|jpeg|gif|txt|webmanifest|woff2?)$)`;

/** The hashed files never change under their name: cached for a year. */
const ASSET_MAX_AGE_MS = 365 * 24 * 60 * 60 * 1000;

/**
 * A plugin serving the web app the gateway hosts: GET / is its page (index.html, revalidated every
 * time, with the page's own Content-Security-Policy), GET /assets/* the hashed scripts and styles
 * (immutable, cached a year), and GET /<name>.<ext> the files of Vite's public/ folder. There is no
 * directory listing, dotfiles are refused, and `..` never leaves the folder. The app routes with
 * the URL's hash, so no other path falls back to the page. None of this is in the OpenAPI document.
 *
 * When the folder has no index.html (the app is not built), GET / answers 503 WEB_APP_NOT_BUILT.
 *
 * @example
 * await app.register(webApp, { root: '/srv/bstore/web/dist' });
 */
export async function webApp(app: HttpApp, options: WebAppOptions): Promise<void> {
  if (!isAbsolute(options.root)) throw new Error(`the web app's folder must be an absolute path, not ${JSON.stringify(options.root)}`);
  const root = options.root;
  const scope = app as unknown as FastifyInstance;

  // @fastify/static registers /assets/* itself: it gets what it answers with and is hidden here.
  scope.addHook('onRoute', (route) => {
    route.config = { produces: STATIC_MEDIA_TYPES, ...route.config };
    route.schema = { ...route.schema, hide: true };
  });

  // What @fastify/static refuses (a `..`, `//` or hidden file) is 403 there: here it is not served, like any other unknown path.
  const parentErrorHandler = scope.errorHandler;
  scope.setErrorHandler(function (this: FastifyInstance, err, request, reply) {
    const status = (err as { statusCode?: number; status?: number }).statusCode ?? (err as { status?: number }).status;
    const answered = status === 403 ? new HttpProblem(404, 'ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`) : err;
    return parentErrorHandler.call(this, answered, request, reply);
  });

  await scope.register(fastifyStatic, {
    root: join(root, 'assets'),
    prefix: '/assets/',
    wildcard: true,
    list: false,
    index: false,
    redirect: false,
    dotfiles: 'deny',
    // A folder is not a file: 404, never a listing (nor send's 403).
    allowedPath: (pathName) => !pathName.endsWith('/'),
    maxAge: ASSET_MAX_AGE_MS,
    immutable: true,
    // The folder may be built after the gateway starts (it is looked up on every request).
    suppressWarning: true,
  });

  const page = join(root, 'index.html');
  app.get(
    '/',
    {
      schema: { hide: true },
      config: { produces: PAGE_MEDIA_TYPES, helmet: { contentSecurityPolicy: { useDefaults: false, directives: WEB_APP_CSP_DIRECTIVES } } },
    },
    async (_request, reply) => {
      try {
        await access(page);
      } catch {
        throw new HttpProblem(503, 'WEB_APP_NOT_BUILT', 'the web app is not built: run npm run build:web');
      }
      // Revalidated on every load (ETag / Last-Modified), so a new build's asset names are picked up at once.
      reply.header('cache-control', 'no-cache');
      return reply.sendFile('index.html', root, { cacheControl: false, dotfiles: 'deny', index: false });
    },
  );

  app.get<{ Params: { file: string } }>(PUBLIC_FILE, { schema: { hide: true }, config: { produces: STATIC_MEDIA_TYPES } }, async (request, reply) => {
    reply.header('cache-control', 'no-cache');
    return reply.sendFile(request.params.file, root, { cacheControl: false, dotfiles: 'deny', index: false });
  });
}
