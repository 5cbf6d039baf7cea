import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { Type } from 'typebox';
import { createHttpApp, type EmbeddedBus, type HttpApp } from '@bstore/platform';
import { createBookService, type BookService } from '@bstore/book';
import { createCustomerCenterService, type CustomerCenterService } from '@bstore/customercenter';
import { createGatewayService, type GatewayService } from '@bstore/gateway';
import { acceptable, parseAccept } from '../src/http/method-and-accept.ts';
import { jsonDeeperThan } from '../src/http/validation.ts';
import { memoryBus, testLogger } from '../../../test/support/harness.ts';
import { testAuth } from '../../../test/support/auth.ts';

/** A message such as a database driver's error might carry: nothing of it may reach a client. */
const LEAKY = 'relation missing in SELECT * FROM secret_table WHERE token = 42 (db.internal:5432)';

/** A small app with routes of each kind the checks need; nothing of a real service. */
async function probeApp(extend: (app: HttpApp) => void = () => undefined): Promise<HttpApp> {
  const app = createHttpApp({ service: 'probe', logger: testLogger(), bodyLimit: 1024 });
  const Params = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 1000 }) }, { additionalProperties: false });
  const Body = Type.Object({ name: Type.String({ maxLength: 100 }) }, { additionalProperties: false });
  app.get('/things/:id', { schema: { params: Params } }, async (request) => ({ id: request.params.id }));
  app.put('/things/:id', { schema: { params: Params, body: Body } }, async (request) => ({ id: request.params.id, ...request.body }));
  app.post('/things', { schema: { body: Body } }, async (request, reply) => reply.status(201).send(request.body));
  app.get('/stream', { config: { produces: ['text/event-stream'] } }, async (_request, reply) => reply.type('text/event-stream').send(': hello\n\n'));
  // Like a static file server: the route serves GET, and answers 404 for what it does not have.
  app.get('/files/*', async (_request, reply) => reply.callNotFound());
  app.get('/teapot', async () => {
    throw Object.assign(new Error(`library failure reading ${LEAKY}`), { statusCode: 418 });
  });
  app.get('/boom', async () => {
    const err = new Error(LEAKY);
    err.stack = `Error: ${LEAKY}\n    at query (/srv/app/node_modules/pg/lib/client.js:526:17)`;
    throw err;
  });
  extend(app);
  await app.ready();
  return app;
}

/** Asserts an RFC 9457 problem+json answer with the given status and code, and returns its body. */
function expectProblem(res: LightMyRequestResponse, status: number, code: string): Record<string, unknown> {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json<Record<string, unknown>>();
  expect(body).toMatchObject({ status, code, type: `urn:bstore:problem:${code.toLowerCase().replaceAll('_', '-')}` });
  for (const member of ['type', 'title', 'detail', 'instance']) expect(typeof body[member], member).toBe('string');
  expect(body.instance).toBe((res.raw.req.url ?? '').split('?')[0]);
  return body;
}

describe('Accept header parsing', () => {
  const json = ['application/json', 'application/problem+json'];

  it.each([
    [undefined, true],
    ['', true],
    ['*/*', true],
    ['application/*', true],
    ['application/json', true],
    ['application/problem+json', true],
    ['APPLICATION/JSON', true],
    ['text/html, application/json;q=0.1', true],
    ['application/json; charset=utf-8', true],
    ['application/json;q=0, application/problem+json', true],
    ['text/html', false],
    ['text/html, image/*', false],
    ['application/json;q=0', false],
    ['application/json;q=0.000, application/problem+json;q=0', false],
    ['application/*;q=0', false],
    ['*/*;q=0', false],
    ['*/*;q=0.5, application/*;q=0', false],
    ['text/html, not a media type', false],
    ['text/html;level="1,2", application/xml', false],
    // Not one well-formed range: disregarded, as if absent.
    ['garbage', true],
    ['application/json;q=2', true],
    ['*/json', true],
  ])('%j -> %s for JSON', (header, expected) => {
    expect(acceptable(header, json)).toBe(expected);
  });

  it('takes the most specific range that matches, whatever the order', () => {
    expect(acceptable('application/json;q=0, application/*;q=1', ['application/json'])).toBe(false);
    expect(acceptable('application/*;q=1, application/json;q=0', ['application/json'])).toBe(false);
    expect(acceptable('*/*, text/event-stream;q=0', ['text/event-stream'])).toBe(false);
    expect(acceptable('text/*;q=0.2', ['text/event-stream'])).toBe(true);
  });

  it('accepts anything for a route that produces */*', () => {
    expect(acceptable('text/html', ['*/*'])).toBe(true);
  });

  it('parses weights, ignores other parameters and leaves malformed ranges out', () => {
    expect(parseAccept('text/html;level=1;q=0.7, application/json ;  Q=0.25, */*;q=1.5, bad')).toEqual([
      { type: 'text', subtype: 'html', q: 0.7 },
      { type: 'application', subtype: 'json', q: 0.25 },
    ]);
  });
});

describe('JSON depth', () => {
  it('counts nested objects and arrays, not brackets inside strings', () => {
    expect(jsonDeeperThan('{"a":[{"b":[1]}]}', 4)).toBe(false);
    expect(jsonDeeperThan('{"a":[{"b":[1]}]}', 3)).toBe(true);
    expect(jsonDeeperThan(JSON.stringify({ s: '[[[[[[{{{{{{' }), 1)).toBe(false);
    expect(jsonDeeperThan(JSON.stringify({ s: 'quote \\" then [[[[' }), 1)).toBe(false);
    expect(jsonDeeperThan('['.repeat(33) + ']'.repeat(33), 32)).toBe(true);
  });
});

describe('createHttpApp answers every error as problem+json', () => {
  let app: HttpApp;

  beforeAll(async () => {
    app = await probeApp();
  });

  afterAll(async () => {
    await app.close();
  });

  describe('405 and 404', () => {
    it('a known path with a method it does not serve is 405 with Allow', async () => {
      const res = await app.inject({ method: 'DELETE', url: '/things/7' });
      const body = expectProblem(res, 405, 'METHOD_NOT_ALLOWED');
      expect(res.headers.allow).toBe('GET, HEAD, PUT');
      expect(body.allow).toEqual(['GET', 'HEAD', 'PUT']);
      expect(body.title).toBe('Method Not Allowed');
    });

    it('matches paths as the router does: parameters, trailing slash, query string', async () => {
      expect((await app.inject({ method: 'PATCH', url: '/things' })).headers.allow).toBe('POST');
      expect((await app.inject({ method: 'POST', url: '/things/not-a-number' })).headers.allow).toBe('GET, HEAD, PUT');
      expect((await app.inject({ method: 'DELETE', url: '/things/' })).headers.allow).toBe('POST');
      expectProblem(await app.inject({ method: 'DELETE', url: '/things/7?x=1' }), 405, 'METHOD_NOT_ALLOWED');
      expect((await app.inject({ method: 'POST', url: '/health/live' })).headers.allow).toBe('GET, HEAD');
    });

    it('a route that serves the method but finds nothing is 404, not 405', async () => {
      expectProblem(await app.inject({ method: 'GET', url: '/files/missing.js' }), 404, 'ROUTE_NOT_FOUND');
      expect((await app.inject({ method: 'DELETE', url: '/files/missing.js' })).headers.allow).toBe('GET, HEAD');
    });

    it('an unknown path is 404, whatever the method and Accept', async () => {
      expectProblem(await app.inject({ method: 'GET', url: '/nowhere' }), 404, 'ROUTE_NOT_FOUND');
      expectProblem(await app.inject({ method: 'DELETE', url: '/things/7/parts' }), 404, 'ROUTE_NOT_FOUND');
      const res = await app.inject({ method: 'GET', url: '/nowhere', headers: { accept: 'text/html' } });
      expect(expectProblem(res, 404, 'ROUTE_NOT_FOUND').allow).toBeUndefined();
      expect(res.headers.allow).toBeUndefined();
    });
  });

  describe('406', () => {
    it('refuses an Accept header that allows no JSON', async () => {
      const res = await app.inject({ method: 'GET', url: '/things/7', headers: { accept: 'text/html' } });
      expect(expectProblem(res, 406, 'NOT_ACCEPTABLE').produces).toEqual(['application/json', 'application/problem+json']);
      expectProblem(await app.inject({ method: 'GET', url: '/things/7', headers: { accept: 'application/json;q=0' } }), 406, 'NOT_ACCEPTABLE');
      expectProblem(await app.inject({ method: 'POST', url: '/things', headers: { accept: 'application/xml' }, payload: { name: 'x' } }), 406, 'NOT_ACCEPTABLE');
    });

    it('serves JSON to any Accept that allows it, and without one', async () => {
      for (const accept of [undefined, '*/*', 'application/*', 'application/json', 'text/html, application/json;q=0.1']) {
        const res = await app.inject({ method: 'GET', url: '/things/7', headers: accept === undefined ? {} : { accept } });
        expect(res.statusCode, String(accept)).toBe(200);
        expect(res.json()).toEqual({ id: 7 });
      }
    });

    it('checks a route against what it declares it produces (Server-Sent Events, metrics)', async () => {
      expect((await app.inject({ method: 'GET', url: '/stream', headers: { accept: 'text/event-stream' } })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/stream' })).statusCode).toBe(200);
      expectProblem(await app.inject({ method: 'GET', url: '/stream', headers: { accept: 'application/json' } }), 406, 'NOT_ACCEPTABLE');
      const metrics = await app.inject({ method: 'GET', url: '/metrics', headers: { accept: 'text/plain;version=0.0.4;q=0.4, */*;q=0.1' } });
      expect(metrics.statusCode).toBe(200);
      expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
      expect(metrics.body).toMatch(/^# HELP /);
      expectProblem(await app.inject({ method: 'GET', url: '/metrics', headers: { accept: 'text/html' } }), 406, 'NOT_ACCEPTABLE');
    });

    it('HEAD is served wherever GET is, and negotiated the same', async () => {
      expect((await app.inject({ method: 'HEAD', url: '/things/7' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'HEAD', url: '/things/7', headers: { accept: 'text/html' } })).statusCode).toBe(406);
    });
  });

  describe('bodies', () => {
    it('413 for a body over the limit', async () => {
      const res = await app.inject({ method: 'POST', url: '/things', payload: { name: 'x'.repeat(2000) } });
      expectProblem(res, 413, 'BODY_TOO_LARGE');
    });

    it.each([
      ['text/plain', 'name=x'],
      ['application/x-www-form-urlencoded', 'name=x'],
      ['application/xml', '<name>x</name>'],
    ])('415 for a %s body on a JSON route', async (contentType, payload) => {
      const res = await app.inject({ method: 'POST', url: '/things', headers: { 'content-type': contentType }, payload });
      expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    });

    it('400 for malformed JSON', async () => {
      const res = await app.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'application/json' }, payload: '{"name": "x",' });
      expect(expectProblem(res, 400, 'MALFORMED_REQUEST').detail).toBe('the body is not valid JSON');
    });

    it('400 for deeply nested JSON, even far deeper than the stack allows', async () => {
      const deep = await app.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'application/json' }, payload: `{"name":${'['.repeat(40)}${']'.repeat(40)}}` });
      expectProblem(deep, 400, 'BODY_TOO_DEEP');
      const huge = createHttpApp({ service: 'probe', logger: testLogger(), bodyLimit: 1024 * 1024 });
      huge.post('/things', { schema: { body: Type.Object({}, { additionalProperties: false }) } }, async () => ({}));
      try {
        const res = await huge.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'application/json' }, payload: '['.repeat(200_000) + ']'.repeat(200_000) });
        expectProblem(res, 400, 'BODY_TOO_DEEP');
      } finally {
        await huge.close();
      }
    });

    it('400 for a body that breaks the schema, naming the unknown property', async () => {
      const res = await app.inject({ method: 'POST', url: '/things', payload: { name: 'x', admin: true } });
      expect(expectProblem(res, 400, 'VALIDATION_FAILED').detail).toBe('body unknown property "admin"');
    });

    it('400 for an empty JSON body', async () => {
      const res = await app.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'application/json' }, payload: '' });
      expectProblem(res, 400, 'EMPTY_BODY');
    });

    it('a JSON body still parses, with proto poisoning refused', async () => {
      expect((await app.inject({ method: 'POST', url: '/things', payload: { name: 'x' } })).statusCode).toBe(201);
      const res = await app.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'application/json' }, payload: '{"name":"x","__proto__":{"admin":true}}' });
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    });
  });

  describe('500', () => {
    it('is a problem with no stack trace, SQL or internal host', async () => {
      const res = await app.inject({ method: 'GET', url: '/boom' });
      const body = expectProblem(res, 500, 'INTERNAL_ERROR');
      expect(body.title).toBe('Internal Server Error');
      for (const secret of ['SELECT', 'secret_table', 'db.internal', '5432', 'client.js', 'node_modules', '    at ', 'stack']) {
        expect(res.body, secret).not.toContain(secret);
      }
      expect(Object.keys(body).sort()).toEqual(['code', 'detail', 'instance', 'status', 'title', 'type']);
    });

    it('a 4xx a library raised keeps its status, not its message', async () => {
      const res = await app.inject({ method: 'GET', url: '/teapot' });
      expect(expectProblem(res, 418, 'MALFORMED_REQUEST').detail).toBe('the request could not be processed');
      expect(res.body).not.toContain('secret_table');
    });
  });

  it('503 while shutting down, as a problem', async () => {
    let port = 0;
    let during: { status: number; type: string | null; body: Record<string, unknown> } | undefined;
    let readyDuring: { status: number; body: Record<string, unknown> } | undefined;
    const closing = await probeApp((app) =>
      // preClose hooks run before the server stops accepting: this request arrives while it closes.
      app.addHook('preClose', async () => {
        const res = await fetch(`http://127.0.0.1:${port}/things/7`);
        during = { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown> };
        const ready = await fetch(`http://127.0.0.1:${port}/health/ready`);
        readyDuring = { status: ready.status, body: (await ready.json()) as Record<string, unknown> };
      }),
    );
    await closing.listen({ port: 0, host: '127.0.0.1' });
    const address = closing.server.address();
    port = typeof address === 'object' && address ? address.port : 0;
    await closing.close();
    expect(during?.status).toBe(503);
    expect(during?.type).toMatch(/^application\/problem\+json/);
    expect(during?.body).toMatchObject({ status: 503, code: 'SHUTTING_DOWN', instance: '/things/7' });
    expect(readyDuring).toEqual({ status: 503, body: expect.objectContaining({ status: 503, code: 'SHUTTING_DOWN', title: 'Service Unavailable' }) });
  });

  it('health keeps its own answers under its response schemas', async () => {
    const health = createHttpApp({ service: 'probe', logger: testLogger(), readiness: { db: async () => undefined, cache: async () => 'closed' } });
    try {
      expect((await health.inject({ method: 'GET', url: '/health/live' })).json()).toEqual({ status: 'up' });
      const ready = await health.inject({ method: 'GET', url: '/health/ready' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toEqual({ status: 'up', checks: { db: 'up', cache: 'closed' } });
      health.addReadinessCheck('bus', async () => {
        throw new Error('bus down at nats.internal:4222');
      });
      const down = await health.inject({ method: 'GET', url: '/health/ready' });
      expect(down.statusCode).toBe(503);
      expect(down.json()).toEqual({ status: 'down', checks: { db: 'up', cache: 'closed', bus: 'down' } });
      health.markDraining();
      const draining = await health.inject({ method: 'GET', url: '/health/ready' });
      expect(draining.statusCode).toBe(503);
      expect(draining.json()).toEqual({ status: 'draining', checks: {} });
    } finally {
      await health.close();
    }
  });
});

describe('the services answer 405 and 406 the same way', () => {
  let bus: EmbeddedBus;
  let book: BookService;
  let customercenter: CustomerCenterService;

  beforeAll(async () => {
    const logger = testLogger();
    const auth = await testAuth();
    bus = await memoryBus(logger);
    book = await createBookService({ database: { kind: 'pglite' }, bus, logger, auth }, { maxHeldCopiesPerCustomer: 1000 });
    customercenter = await createCustomerCenterService({ database: { kind: 'pglite' }, bus, logger, auth });
  });

  afterAll(async () => {
    await book?.stop();
    await customercenter?.stop();
    await bus?.close();
  });

  it('book: DELETE /books/1 is 405, PUT /books is 405, GET /books for HTML is 406', async () => {
    const del = await book.app.inject({ method: 'DELETE', url: '/books/1' });
    expectProblem(del, 405, 'METHOD_NOT_ALLOWED');
    expect(del.headers.allow).toBe('GET, HEAD');
    const put = await book.app.inject({ method: 'PUT', url: '/books' });
    expectProblem(put, 405, 'METHOD_NOT_ALLOWED');
    expect(put.headers.allow).toBe('GET, HEAD, POST');
    expectProblem(await book.app.inject({ method: 'GET', url: '/books', headers: { accept: 'text/html' } }), 406, 'NOT_ACCEPTABLE');
    expect((await book.app.inject({ method: 'GET', url: '/books', headers: { accept: 'application/json' } })).statusCode).toBe(200);
    expectProblem(await book.app.inject({ method: 'GET', url: '/bookz' }), 404, 'ROUTE_NOT_FOUND');
  });

  it('customercenter: the stream takes text/event-stream, not JSON', async () => {
    expectProblem(await customercenter.app.inject({ method: 'GET', url: '/reservationPages/stream', headers: { accept: 'application/json' } }), 406, 'NOT_ACCEPTABLE');
    // Acceptable, so on to the identity check: anonymous is 401.
    expectProblem(await customercenter.app.inject({ method: 'GET', url: '/reservationPages/stream', headers: { accept: 'text/event-stream' } }), 401, 'UNAUTHENTICATED');
    expectProblem(await customercenter.app.inject({ method: 'GET', url: '/reservationPages', headers: { accept: 'text/event-stream' } }), 406, 'NOT_ACCEPTABLE');
    expect((await customercenter.app.inject({ method: 'DELETE', url: '/reservationPages/stream' })).headers.allow).toBe('GET, HEAD');
  });
});

describe('the gateway leaves 405 and 406 of proxied paths to the service', () => {
  const seen: { method: string; url: string; accept: string | undefined }[] = [];
  let upstream: Server;
  let gateway: GatewayService;

  beforeAll(async () => {
    // A fake service: answers 200 JSON to anything, and remembers what it got.
    upstream = createServer((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', accept: req.headers.accept });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    gateway = await createGatewayService({ logger: testLogger(), auth: await testAuth() }, { upstreams: { reservation: url, book: url, assignment: url, customercenter: url, notification: url } });
    await gateway.app.ready();
  });

  afterAll(async () => {
    await gateway?.stop();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('passes any method and any Accept of a proxied path on to the owning service', async () => {
    const html = await gateway.app.inject({ method: 'GET', url: '/books', headers: { accept: 'text/html' } });
    expect(html.statusCode).toBe(200);
    const del = await gateway.app.inject({ method: 'DELETE', url: '/books/1' });
    expect(del.statusCode).toBe(200);
    expect(seen).toEqual(
      expect.arrayContaining([{ method: 'GET', url: '/books', accept: 'text/html' }, expect.objectContaining({ method: 'DELETE', url: '/books/1' })]),
    );
  });

  it('serves Swagger UI, HTML and scripts, whatever JSON it is not', async () => {
    const docs = await gateway.app.inject({ method: 'GET', url: '/docs/', headers: { accept: 'text/html' } });
    expect(docs.statusCode).toBe(200);
    expect(docs.headers['content-type']).toMatch(/^text\/html/);
    const script = await gateway.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js', headers: { accept: 'application/javascript' } });
    expect(script.statusCode).toBe(200);
  });

  it("answers 405 and 406 on its own routes, and 404 on unknown paths (CORS's OPTIONS route aside)", async () => {
    const get = await gateway.app.inject({ method: 'GET', url: '/auth/token' });
    expectProblem(get, 405, 'METHOD_NOT_ALLOWED');
    // OPTIONS: the CORS preflight route, which serves every path.
    expect(get.headers.allow).toBe('POST, OPTIONS');
    expectProblem(await gateway.app.inject({ method: 'GET', url: '/health/upstreams', headers: { accept: 'text/html' } }), 406, 'NOT_ACCEPTABLE');
    expectProblem(await gateway.app.inject({ method: 'GET', url: '/nowhere' }), 404, 'ROUTE_NOT_FOUND');
  });
});
