import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoToken, type Role } from '@bstore/platform';
import { DEMO_BOOKS } from '@bstore/book';
import { tokenFor } from './support/auth.ts';
import { eventually } from './support/harness.ts';
import { checkInvariants } from './support/invariants.ts';
import { databasesOf, startTestSystem, type TestSystem } from './support/system.ts';

/*
 * Property-based fuzzing of every public route through the gateway, with the real embedded system:
 * hostile bodies, headers, paths, queries and methods never get a 5xx, every 4xx is a clean
 * problem+json that leaks nothing of the inside, stored strings come back byte-identical, and
 * after it all the system's invariants and the catalogue's stock accounting still hold.
 *
 * Runs are bounded (fixed numRuns); fast-check prints the seed and the shrunk counterexample of a
 * failure, and every failure message here names the exact request that caused it.
 */

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client over a socket: fetch and node:http refuse to send much of what is fuzzed
// here (unusual methods, bodies on GET, header bytes), and they would hide what the server wrote.
// ---------------------------------------------------------------------------------------------

interface RawRequest {
  method: string;
  /** The request-target exactly as written on the request line. */
  target: string;
  headers: [string, string][];
  body?: Buffer;
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** What a test caller wrote, short enough to read in a failure message. */
function describeRequest(req: RawRequest | Buffer): string {
  if (Buffer.isBuffer(req)) return JSON.stringify(clip(req.toString('latin1'), 600));
  const headers = req.headers.map(([k, v]) => `${k}: ${clip(v, 200)}`).join('\n  ');
  const body = req.body ? `\n  body (${req.body.length} bytes): ${JSON.stringify(clip(req.body.toString('utf8'), 400))}` : '';
  return `${req.method} ${clip(req.target, 400)}\n  ${headers}${body}`;
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text;
}

function encodeRequest(base: URL, req: RawRequest): Buffer {
  const lines = [`${req.method} ${req.target} HTTP/1.1`, `host: ${base.host}`, 'connection: close'];
  for (const [name, value] of req.headers) lines.push(`${name}: ${value}`);
  if (req.body) lines.push(`content-length: ${req.body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), req.body ?? Buffer.alloc(0)]);
}

function decodeChunked(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** The final answer in what the server wrote (1xx interim answers skipped); undefined when there is none. */
function parseResponse(data: Buffer, method: string): RawResponse | undefined {
  let rest = data;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const [statusLine = '', ...headerLines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
    if (!Number.isInteger(status)) return undefined;
    rest = rest.subarray(end + 4);
    if (status < 200) continue;
    const headers: Record<string, string> = {};
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const body = method === 'HEAD' ? Buffer.alloc(0) : /chunked/i.test(headers['transfer-encoding'] ?? '') ? decodeChunked(rest) : rest;
    return { status, headers, body };
  }
}

/** Whether `data` holds a whole final answer (its body complete by content-length or chunked end). */
function complete(data: Buffer, method: string): boolean {
  let rest = data;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) return false;
    const head = rest.subarray(0, end).toString('latin1');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? NaN);
    rest = rest.subarray(end + 4);
    if (status >= 100 && status < 200) continue;
    if (method === 'HEAD' || status === 204 || status === 304) return true;
    const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
    if (length !== undefined) return rest.length >= Number(length);
    if (/\r\ntransfer-encoding: *chunked/i.test(head)) return rest.includes('\r\n0\r\n\r\n') || rest.subarray(0, 5).toString('latin1') === '0\r\n\r\n';
    return false;
  }
}

/**
 * Writes `bytes` to the server and reads until it closes. Resolves the answer, or undefined when
 * the server closed (or reset) the connection without one. A server that neither answers nor
 * closes within 20 s is a failure (a hang), not a slow answer.
 */
function sendRaw(base: URL, bytes: Buffer, method: string): Promise<RawResponse | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(base.port), base.hostname);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      const res = parseResponse(Buffer.concat(chunks), method);
      if (res) noteBookAnswer(method, res);
      resolve(res);
    };
    socket.setTimeout(20_000, () => {
      settled = true;
      socket.destroy();
      reject(new Error('the server neither answered nor closed the connection within 20 s'));
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // A complete answer ends the exchange even if the server keeps the connection open.
      if (complete(Buffer.concat(chunks), method)) {
        finish();
        socket.destroy();
      }
    });
    socket.on('end', finish);
    socket.on('close', finish);
    // The server may answer early (413) and reset while the body is still being written.
    socket.on('error', finish);
    socket.write(bytes);
  });
}

// ---------------------------------------------------------------------------------------------
// The system, the callers' tokens and what the fuzzing did that a valid client could have done.
// ---------------------------------------------------------------------------------------------

let system: TestSystem;
let gateway: URL;
let leakMarkers: string[] = [];

interface Tokens {
  alice: string;
  bob: string;
  staff: string;
  hostile: string[];
}
let tokens: Tokens;

/** Reservations answered 201 (I3: each must end reserved or cancelled) and those whose cancel got 202. */
const acknowledged = new Set<number>();
const canceled = new Set<number>();
/** The copies a book was last answered with (201 create, 200 copies): copies change only there. */
const lastCopies = new Map<number, number>();
let booksCreated = 0;
let before: Map<number, { quantity: number; copies: number }>;
const stats = { requests: 0, byStatus: new Map<number, number>() };

/** Records what a 2xx did to the state the final property checks. */
function record(req: RawRequest, res: RawResponse): void {
  stats.requests++;
  stats.byStatus.set(res.status, (stats.byStatus.get(res.status) ?? 0) + 1);
  if (req.method === 'HEAD') return;
  const path = req.target.split('?')[0] ?? '';
  let body: Record<string, unknown> | undefined;
  try {
    body = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  if (!body) return;
  if (req.method === 'POST' && path === '/reservations' && res.status === 201 && typeof body.reservationId === 'number') acknowledged.add(body.reservationId);
  if (req.method === 'PATCH' && path.startsWith('/reservations/') && res.status === 202 && typeof body.reservationId === 'number') canceled.add(body.reservationId);
}

/**
 * Every answer that says a book was created (201) or its copies changed (200 to a POST), however
 * the request was written (raw, pipelined, with odd headers): read from the answer itself, as a
 * book's JSON (it has `copies`; a reservation's has a `reservationId`).
 */
function noteBookAnswer(method: string, res: RawResponse): void {
  if (method !== 'POST' || (res.status !== 200 && res.status !== 201)) return;
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
  } catch {
    return;
  }
  if (typeof body.bookId !== 'number' || typeof body.copies !== 'number' || 'reservationId' in body) return;
  if (res.status === 201) booksCreated++;
  lastCopies.set(body.bookId, body.copies);
}

/**
 * The failures in one answer: a 5xx; a 4xx that is not application/problem+json with `status`
 * equal to the HTTP status and string `type`/`title`/`detail`; a stack trace, an SQL error or an
 * internal service address anywhere in it (unless the request itself carried that text, as an
 * echoed path or name); an internal-only route answered 2xx.
 */
function failuresOf(req: RawRequest | Buffer, method: string, res: RawResponse): string[] {
  const failures: string[] = [];
  const sent = Buffer.isBuffer(req) ? req.toString('latin1') : `${req.target}\n${req.headers.map(([k, v]) => `${k}: ${v}`).join('\n')}\n${req.body?.toString('utf8') ?? ''}`;
  const contentType = res.headers['content-type'] ?? '';
  const text = res.body.toString('utf8');
  if (res.status >= 500) failures.push(`answered ${res.status}`);
  if (res.status >= 400) {
    if (!contentType.startsWith('application/problem+json')) failures.push(`a ${res.status} answered as ${JSON.stringify(contentType)}, not application/problem+json`);
    if (method !== 'HEAD') {
      let problem: Record<string, unknown> | undefined;
      try {
        problem = JSON.parse(text) as Record<string, unknown>;
      } catch {
        failures.push(`the ${res.status} body is not JSON`);
      }
      if (problem) {
        if (problem.status !== res.status) failures.push(`problem.status ${JSON.stringify(problem.status)} != HTTP ${res.status}`);
        for (const member of ['type', 'title', 'detail'] as const) {
          if (typeof problem[member] !== 'string') failures.push(`problem.${member} is ${JSON.stringify(problem[member])}, not a string`);
        }
      }
    }
  }
  const everything = `${Object.entries(res.headers).map(([k, v]) => `${k}: ${v}`).join('\n')}\n${text}`;
  for (const marker of leakMarkers) {
    if (everything.includes(marker) && !sent.includes(marker)) failures.push(`the answer leaks ${JSON.stringify(marker)}`);
  }
  if (!Buffer.isBuffer(req) && res.status < 300 && /\/holds(\/|$|\?)/i.test(req.target)) failures.push('an internal hold route answered through the gateway');
  return failures;
}

async function exchange(req: RawRequest): Promise<RawResponse> {
  let res: RawResponse | undefined;
  try {
    res = await sendRaw(gateway, encodeRequest(gateway, req), req.method);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nrequest: ${describeRequest(req)}`, { cause: err });
  }
  if (!res) throw new Error(`the connection closed without an answer\nrequest: ${describeRequest(req)}`);
  record(req, res);
  const failures = failuresOf(req, req.method, res);
  if (failures.length > 0) {
    throw new Error(
      `${failures.join('; ')}\nrequest: ${describeRequest(req)}\nanswer: ${res.status} ${res.headers['content-type'] ?? ''} ${clip(res.body.toString('utf8'), 600)}`,
    );
  }
  return res;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries.
// ---------------------------------------------------------------------------------------------

const INJECTIONS = [
  "'; DROP TABLE books; --",
  "' OR '1'='1",
  '" OR 1=1 --',
  "1; SELECT pg_sleep(30); --",
  "1' UNION SELECT password FROM users --",
  '%00',
  '\u0000',
  'a\u0000b',
  '../../../../etc/passwd',
  '%2e%2e/%2e%2e/',
  '..%2f..%2f',
  '\r\nX-Injected: 1',
  '%0d%0aSet-Cookie: a=b',
  '{"__proto__":{"polluted":true}}',
  'constructor.prototype.polluted',
  '__proto__',
  'constructor',
  'prototype',
  '${7*7}',
  '{{7*7}}',
  '<script>alert(1)</script>',
  '\u202Eevil\u202C',
  '\u05E9\u05DC\u05D5\u05DD \u0645\u0631\u062D\u0628\u0627',
  'e\u0301\u0302\u0303\u0304\u0305',
  'Z\u0351\u036B\u0343\u036A\u0302\u036B\u033D\u034F\u0334\u0319\u0324\u031E',
  '😀👨‍👩‍👧‍👦🏳️‍🌈',
  '\uD800',
  '\uDFFF',
  'a\uD83Db',
  '\uFEFF',
  '\u2028\u2029',
  '\uFFFF\uFFFE',
  'null',
  'undefined',
  'NaN',
  '-0',
  '1e308',
  '9007199254740993',
  ' ',
  '',
  '\t\n\u000B\f\r',
  '\u001B[31mred',
  '%s%s%s%n',
  '{"$where":"1"}',
  '\\',
  '"',
  '\\u0000',
  'ｆｕｌｌｗｉｄｔｈ',
  'İıß',
];

/** Hostile text of every sort, including strings long enough to cross the 64 KB body limit. */
const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...INJECTIONS) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...INJECTIONS), fc.string({ maxLength: 10 }), fc.constantFrom(...INJECTIONS)).map(([a, b, c]) => a + b + c) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => `x${String.fromCharCode(c)}y`) },
  { weight: 1, arbitrary: fc.constantFrom(300, 301, 100, 101, 200, 201, 1000).map((n) => 'é'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 70_000 }).map((n) => 'x'.repeat(n)) },
);

/** Short hostile text, for paths, queries and headers (which have no 64 KB body limit but a 16 KB head limit). */
const shortHostileString = hostileString.filter((s) => s.length <= 2000);

/** Number-like JSON fragments: huge, negative, fractional, not numbers at all, not JSON at all. */
const numberLiteral: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '0', '-0', '-1', '1', '2', '100000', '100001', '-100000', '-100001', '2147483647', '2147483648', '-2147483649',
      '9007199254740991', '9007199254740993', '1e308', '-1e308', '1e400', '5e-324', '1.5', '0.1', '1e2', '1E-7', '1.0',
      '"1"', '"NaN"', '"Infinity"', '"-0"', 'null', 'true', 'false', '[]', '[1]', '{}', '"0x10"',
      // not JSON: the parser must refuse them
      '00', '+1', '.5', '1.', 'NaN', 'Infinity', '0x10', '1_000',
    ),
  },
  { weight: 1, arbitrary: fc.integer().map(String) },
  { weight: 1, arbitrary: fc.double().map((d) => JSON.stringify(d)) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String) },
);

/** A JSON fragment for one member of a body. */
const hostileValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: hostileString.map((s) => JSON.stringify(s)) },
  { weight: 3, arbitrary: numberLiteral },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
);

const hostileKey = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', ' ', 'bookId ', 'BOOKNAME', 'role', 'customerId', 'status'), shortHostileString);

function objectText(members: [string, string][]): string {
  return `{${members.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

/** Nested `depth` levels deep: arrays, objects, or both alternating. */
function nested(depth: number, kind: 'array' | 'object' | 'mixed'): string {
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    const array = kind === 'array' || (kind === 'mixed' && i % 2 === 0);
    open += array ? '[' : '{"a":';
    close = (array ? ']' : '}') + close;
  }
  return `${open}1${close}`;
}

const deepJson = fc.record({ depth: fc.integer({ min: 1, max: 5000 }), kind: fc.constantFrom('array' as const, 'object' as const, 'mixed' as const) }).map(({ depth, kind }) => nested(depth, kind));

/** Bodies of no particular route: random JSON, broken JSON, other formats, random bytes. */
const strayBody: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(
        '', '{', '{"a":', 'undefined', "{'a':1}", '{"a":1,}', '\u0000', '[1,2', 'nul', '{"bookId":1}garbage', '\uFEFF{"bookId":1}', '{"bookId":1}{"bookId":2}',
        '{"__proto__":{"role":"staff","isAdmin":true},"bookId":1}', '{"constructor":{"prototype":{"polluted":1}},"bookId":1}',
        '{"bookId":1,"bookId":2}', 'bookName=x&quantity=1', '--x\r\nContent-Disposition: form-data; name="bookId"\r\n\r\n1\r\n--x--\r\n', '<xml/>',
        '"\\ud800"', '{"a":"\\u0000"}',
      )
      .map((s) => Buffer.from(s, 'utf8')),
  },
  { weight: 1, arbitrary: deepJson.map((s) => Buffer.from(s)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constantFrom(Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), Buffer.from([0xc0, 0xaf]), Buffer.from('{"bookName":"\xff\xfe","quantity":1}', 'latin1')) },
  { weight: 1, arbitrary: fc.integer({ min: 64 * 1024 - 50, max: 70_000 }).map((n) => Buffer.from(`{"bookName":"${'a'.repeat(n)}","quantity":1}`)) },
);

const CONTENT_TYPES = [
  'application/json; charset=utf-8', 'application/json;charset=UTF-8', 'application/JSON', 'application/json; charset=latin1', 'application/json; charset="utf-16"',
  'application/json;;;', 'text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/problem+json',
  'application/vnd.api+json', 'application/xml', '*/*', 'application/json, text/plain', 'application', '', ';', 'application/octet-stream',
];

const ACCEPTS = [
  '*/*', 'application/json', 'application/problem+json', 'text/html', 'application/xml', 'application/json;q=0', '*/*;q=0', 'application/json;q=2',
  'text/event-stream', ';;;,,,', 'application/*', 'image/png, text/*;q=0.5', 'application/json;q=0.0001', 'a/b/c', '*/json',
];

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH', 'PURGE', 'LOCK', 'COPY', 'MKCOL', 'QUERY', 'LINK'];

/** Percent-encodes the UTF-8 bytes of a string (a lone surrogate becomes U+FFFD's bytes). */
function pct(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Header values as HTTP allows them (no control characters); non-ASCII goes out as its UTF-8 bytes. */
function headerSafe(s: string): string {
  return [...s].filter((c) => c.charCodeAt(0) > 0x1f && c !== '\u007f').join('').slice(0, 4000);
}

/** Ids in a path: real ones, out of range, not numbers, encoded unicode, dot segments, broken escapes. */
const idSegment: fc.Arbitrary<string> = fc
  .oneof(
    { weight: 4, arbitrary: fc.integer({ min: 1, max: 40 }).map(String) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '0', '-1', '-0', '2147483647', '2147483648', '9007199254740993', '1e308', '1e3', '0x10', '1.5', 'NaN', 'Infinity', '%201', '007', '%2B1', '1_000', '99999999999999999999999',
        '..', '.', '%2e%2e', '%2E%2E%2F', '%00', '..%2f..%2fadmin', '%', '%zz', '%C0%AF', '%E2%80%AE', '%F0%9F%98%80', '%ED%A0%80', '%FF', '', 'book-1', 'reservation-1', 'nope-0',
      ),
    },
    { weight: 1, arbitrary: fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String) },
    { weight: 3, arbitrary: shortHostileString.map(pct) },
  )
  .filter((s) => s !== 'stream');

const pathSuffix = fc.constantFrom('', '', '', '/', '//', '/x', '/..', '/%2e%2e', '/holds/1', '/1/2/3', '?');

/** Query strings: encoded hostile values of known and unknown names, duplicates, broken escapes. */
const hostileQuery: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .array(
        fc.tuple(
          fc.oneof(fc.constantFrom('limit', 'offset', 'q', 'status', 'customerId', 'reservationId', 'pending', 'service', 'limit[]', '__proto__', '__proto__[role]', 'constructor[prototype][x]'), shortHostileString),
          fc.oneof(shortHostileString, numberLiteral),
        ),
        { minLength: 1, maxLength: 4 },
      )
      .map((pairs) => `?${pairs.map(([k, v]) => `${pct(k)}=${pct(v)}`).join('&')}`),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '?%', '?%E0%A4%A', '?limit=1&limit=2', '?&&&', '?=', '?limit', '?q=%00', '?limit=-1', '?limit=0', '?limit=101', '?limit=1e308', '?offset=-1', '?offset=9007199254740993',
      '?status=bookReserved', '?status=DROP', '?customerId=alice', '?customerId=bob', '?customerId=%27%3B%20DROP%20TABLE%20reservations%3B--', '?service=book', '?service=evil', '?pending=true',
      '?pending=maybe', `?q=${'a'.repeat(101)}`, '?q=%27%20OR%201%3D1--', '?q=%25', '?q=_', '?q=%5C', '?reservationId=1', '?offset=999&limit=100', '?limit=1.5',
    ),
  },
);

type Access = 'anyone' | 'signedIn' | 'customer' | 'staff';

interface Route {
  method: string;
  /** `{id}` is replaced by the id segment. */
  path: string;
  access: Access;
  /** A valid id for `{id}`. */
  id?: fc.Arbitrary<string>;
  /** A valid query string (with its `?`), or none. */
  query?: fc.Arbitrary<string>;
  /** The body's members, as valid JSON fragments a client would send. */
  body?: fc.Arbitrary<[string, string][]>;
  idempotent?: boolean;
}

const str = (s: string) => JSON.stringify(s);
const validName = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => s.trim() === s && s.length > 0);
const pageQuery = fc.record({ limit: fc.integer({ min: 1, max: 100 }), offset: fc.integer({ min: 0, max: 50 }) }).map(({ limit, offset }) => `?limit=${limit}&offset=${offset}`);
const demoBookIds = fc.integer({ min: 1, max: DEMO_BOOKS.length + 5 });
const smallId = fc.integer({ min: 1, max: 40 }).map(String);

/** Every public route of the gateway (design §10), with what a valid call to it looks like. */
const ROUTES: Route[] = [
  {
    method: 'POST',
    path: '/auth/token',
    access: 'anyone',
    body: fc.constantFrom(['alice', 'alice'], ['bob', 'bob'], ['librarian', 'librarian'], ['alice', 'wrong'], ['nobody', 'x']).map(([u, p]) => [['username', str(u)], ['password', str(p)]]),
  },
  { method: 'GET', path: '/.well-known/jwks.json', access: 'anyone' },
  { method: 'GET', path: '/books', access: 'anyone', query: fc.oneof(pageQuery, validName.map((q) => `?q=${pct(q)}`)) },
  { method: 'GET', path: '/books/{id}', access: 'anyone', id: demoBookIds.map(String) },
  {
    method: 'POST',
    path: '/books',
    access: 'staff',
    body: fc
      .record({ bookName: validName, author: fc.option(validName, { nil: undefined }), isbn: fc.option(fc.constantFrom('978-3-16-148410-0', '0306406152'), { nil: undefined }), quantity: fc.integer({ min: 0, max: 5 }) })
      .map((b) => Object.entries(b).filter(([, v]) => v !== undefined).map(([k, v]) => [k, JSON.stringify(v)] as [string, string])),
  },
  { method: 'POST', path: '/books/{id}/copies', access: 'staff', id: demoBookIds.map(String), body: fc.integer({ min: -2, max: 3 }).map((d) => [['delta', String(d)]]) },
  {
    method: 'POST',
    path: '/reservations',
    access: 'customer',
    idempotent: true,
    body: fc
      .record({ bookId: demoBookIds, preferredLibraryId: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }) })
      .map((b) => Object.entries(b).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)] as [string, string])),
  },
  { method: 'GET', path: '/reservations', access: 'signedIn', query: fc.oneof(pageQuery, fc.constantFrom('?status=bookReserved', '?customerId=alice')) },
  { method: 'GET', path: '/reservations/{id}', access: 'signedIn', id: smallId },
  { method: 'PATCH', path: '/reservations/{id}', access: 'signedIn', id: smallId, body: fc.constant([['status', str('bookCancel')]]) },
  { method: 'GET', path: '/libraries', access: 'anyone' },
  {
    method: 'POST',
    path: '/libraries',
    access: 'staff',
    body: fc
      .record({ name: validName.map((n) => `Fuzz ${n}`), address: fc.option(validName, { nil: undefined }) })
      .map((b) => Object.entries(b).filter(([, v]) => v !== undefined).map(([k, v]) => [k, JSON.stringify(v)] as [string, string])),
  },
  { method: 'GET', path: '/assignments', access: 'staff', query: fc.oneof(pageQuery, smallId.map((id) => `?reservationId=${id}`)) },
  { method: 'GET', path: '/reservationPages', access: 'signedIn', query: fc.oneof(pageQuery, fc.constantFrom('?status=bookReserved', '?customerId=alice')) },
  { method: 'GET', path: '/reservationPages/{id}', access: 'signedIn', id: smallId },
  { method: 'GET', path: '/admin/dead-letters', access: 'staff', query: fc.oneof(pageQuery, fc.constantFrom('?service=book', '?pending=true')) },
  { method: 'GET', path: '/admin/dead-letters/{id}', access: 'staff', id: fc.tuple(fc.constantFrom('book', 'reservation', 'assignment', 'customercenter'), smallId).map(([s, n]) => `${s}-${n}`) },
  { method: 'POST', path: '/admin/dead-letters/{id}/replay', access: 'staff', id: fc.tuple(fc.constantFrom('book', 'reservation', 'assignment', 'customercenter'), smallId).map(([s, n]) => `${s}-${n}`) },
  { method: 'GET', path: '/openapi.json', access: 'anyone' },
];

function rightTokens(access: Access): string[] {
  if (access === 'staff') return [tokens.staff];
  if (access === 'customer') return [tokens.alice, tokens.bob];
  return [tokens.alice, tokens.bob, tokens.staff];
}

function wrongTokens(access: Access): string[] {
  if (access === 'staff') return [tokens.alice, tokens.bob];
  if (access === 'customer') return [tokens.staff];
  return [];
}

/** Authorization headers that are absent, garbage, forged, expired or of the wrong caller. */
function hostileAuthorization(): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.constantFrom(...tokens.hostile).map((t) => `Bearer ${t}`) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        'Bearer', 'Bearer ', 'bearer', 'Bearer  ', 'Basic YWxpY2U6YWxpY2U=', 'Bearer a.b.c', 'Bearer null', 'Bearer undefined', 'Token abc', 'Bearer ====', 'Bearer a b',
        `Bearer ${'A'.repeat(8000)}`, 'Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJsaWJyYXJpYW4iLCJyb2xlIjoic3RhZmYifQ.', ', Bearer x', 'Bearer x, Bearer y',
      ),
    },
    { weight: 1, arbitrary: fc.base64String({ maxLength: 600 }).map((s) => `Bearer ${s}`) },
    { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9._~+/-]{1,300}$/).map((s) => `Bearer ${s}`) },
    { weight: 1, arbitrary: shortHostileString.map((s) => headerSafe(`Bearer ${s}`)) },
  );
}

function authorizationFor(route: Route): fc.Arbitrary<string | undefined> {
  const right = fc.constantFrom(...rightTokens(route.access)).map((t) => `Bearer ${t}`);
  const wrong = wrongTokens(route.access);
  return fc.oneof(
    { weight: 4, arbitrary: right },
    ...(wrong.length > 0 ? [{ weight: 1, arbitrary: fc.constantFrom(...wrong).map((t) => `Bearer ${t}`) }] : []),
    { weight: 2, arbitrary: hostileAuthorization() },
  );
}

/** The members of a route's body, some valid, some hostile, some missing, some unknown. */
function hostileMembers(route: Route): fc.Arbitrary<[string, string][]> {
  const valid = route.body ?? fc.constant([] as [string, string][]);
  return fc
    .tuple(valid, fc.array(fc.oneof(hostileValue, fc.constant(undefined)), { minLength: 3, maxLength: 3 }), fc.option(fc.tuple(hostileKey, hostileValue), { nil: undefined }))
    .map(([members, replacements, extra]) => {
      const out: [string, string][] = [];
      members.forEach(([k, v], i) => {
        const replacement = replacements[i % replacements.length];
        // undefined: the member keeps its valid value; null-ish drop is a missing member.
        if (replacement === undefined) out.push([k, v]);
        else if (replacement !== 'null' || i % 2 === 0) out.push([k, replacement]);
      });
      if (extra) out.push(extra);
      return out;
    });
}

interface Draft {
  method: string;
  path: string;
  query: string;
  body: Buffer | undefined;
  contentType: string | undefined;
  authorization: string | undefined;
  accept: string | undefined;
  extra: [string, string][];
}

function toRequest(d: Draft): RawRequest {
  const headers: [string, string][] = [];
  if (d.authorization !== undefined) headers.push(['authorization', d.authorization]);
  if (d.contentType !== undefined) headers.push(['content-type', d.contentType]);
  if (d.accept !== undefined) headers.push(['accept', d.accept]);
  headers.push(...d.extra);
  return { method: d.method, target: `${d.path}${d.query}`, headers, ...(d.body ? { body: d.body } : {}) };
}

const pathOf = (route: Route, id: string) => route.path.replace('{id}', id);

/** A call exactly as a correct client makes it (it may still be refused: out of stock, not found, wrong password). */
function validRequest(route: Route): fc.Arbitrary<RawRequest> {
  return fc
    .record({
      id: route.id ?? fc.constant(''),
      query: route.query ?? fc.constant(''),
      members: route.body ?? fc.constant(undefined),
      authorization: route.access === 'anyone' ? fc.constant(undefined) : fc.constantFrom(...rightTokens(route.access)).map((t) => `Bearer ${t}`),
      key: fc.option(fc.uuid(), { nil: undefined }),
    })
    .map(({ id, query, members, authorization, key }) =>
      toRequest({
        method: route.method,
        path: pathOf(route, id),
        query,
        body: members ? Buffer.from(objectText(members)) : undefined,
        contentType: members ? 'application/json' : undefined,
        authorization,
        accept: undefined,
        extra: route.idempotent && key ? [['idempotency-key', key]] : [],
      }),
    );
}

const extraHeader: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.tuple(fc.constantFrom('idempotency-key', 'x-request-id', 'x-forwarded-for', 'x-forwarded-host', 'x-http-method-override', 'x-customer-id', 'x-role', 'origin', 'cookie', 'forwarded', 'if-none-match', 'range'), shortHostileString.map(headerSafe)),
  fc.constantFrom<[string, string]>(
    ['x-http-method-override', 'DELETE'], ['x-customer-id', 'librarian'], ['x-role', 'staff'], ['x-forwarded-for', '127.0.0.1, evil'], ['origin', 'https://evil.example'],
    ['expect', '100-continue'], ['content-encoding', 'gzip'], ['accept-charset', 'utf-16'], ['range', 'bytes=0-10'], ['idempotency-key', 'k'.repeat(5000)], ['x-request-id', '../../etc'],
  ),
);

/** A call with some of its parts hostile: method, path, query, body, content type, token, Accept, more headers. */
function hostileRequest(route: Route): fc.Arbitrary<RawRequest> {
  const id = route.id ? fc.oneof({ weight: 1, arbitrary: route.id }, { weight: 3, arbitrary: idSegment }) : fc.constant('');
  const bodyless = !route.body;
  return fc
    .record({
      method: fc.oneof({ weight: 8, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
      path: fc.oneof(
        { weight: 4, arbitrary: id.map((i) => pathOf(route, i)) },
        { weight: 1, arbitrary: fc.tuple(id, pathSuffix).map(([i, s]) => pathOf(route, i) + s) },
      ),
      query: fc.oneof({ weight: 2, arbitrary: route.query ?? fc.constant('') }, { weight: 1, arbitrary: hostileQuery }),
      body: bodyless
        ? fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: strayBody })
        : fc.oneof({ weight: 5, arbitrary: hostileMembers(route).map((m) => Buffer.from(objectText(m))) }, { weight: 2, arbitrary: strayBody }, { weight: 1, arbitrary: fc.constant(undefined) }),
      contentType: fc.oneof({ weight: 5, arbitrary: fc.constant(bodyless ? undefined : 'application/json') }, { weight: 1, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: fc.constantFrom(...CONTENT_TYPES) }),
      authorization: authorizationFor(route),
      accept: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...ACCEPTS) }, { weight: 1, arbitrary: shortHostileString.map(headerSafe) }),
      extra: fc.oneof({ weight: 3, arbitrary: fc.constant([] as [string, string][]) }, { weight: 1, arbitrary: fc.array(extraHeader, { maxLength: 2 }) }),
    })
    // An open event stream never ends: the hostile path may not land on it.
    .filter((d) => !/^\/reservationPages\/stream(\/|\?|$)/i.test(d.path))
    .map(toRequest);
}

function requestFor(route: Route): fc.Arbitrary<RawRequest> {
  return fc.oneof({ weight: 1, arbitrary: validRequest(route) }, { weight: 3, arbitrary: hostileRequest(route) });
}

/**
 * fc.assert's settings here: a fixed number of runs, and on a failure a short report (the seed and
 * path that replay it, and the exact request) instead of the whole generated value, which may hold
 * 70 KB strings. A run sends many requests, so shrinking is skipped: the request named is already
 * the one that failed.
 */
function settings<T>(numRuns: number): fc.Parameters<T> {
  return {
    numRuns,
    endOnFailure: true,
    reporter: (details) => {
      if (!details.failed) return;
      const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      throw new Error(`property failed after ${details.numRuns} run(s); replay with { seed: ${details.seed}, path: ${JSON.stringify(details.counterexamplePath)} }\n${cause}`);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The properties.
// ---------------------------------------------------------------------------------------------

describe('fuzzing every public route through the gateway (fast-check, real embedded system)', () => {
  beforeAll(async () => {
    // The whole system with the gateway's rate limits off (startTestSystem's): this file sends
    // thousands of requests a minute as a handful of callers from one address. `system.databases`:
    // the test's own connections to the services' databases, to read the stock as an operator would.
    system = await startTestSystem();
    gateway = new URL(system.urls.gateway);
    leakMarkers = ['    at ', 'syntax error at or near', 'node_modules', 'duplicate key value', 'invalid byte sequence', 'violates ', 'relation "'];
    for (const name of ['reservation', 'assignment', 'book', 'customercenter'] as const) {
      const url = new URL(system.urls[name]);
      leakMarkers.push(url.host, `localhost:${url.port}`);
    }

    const staff = await tokenFor('librarian', 'staff');
    const signed = (customerId: string, role: string, ttl = 600) => demoToken({ customerId, role: role as Role }, ttl).then((t) => t.access_token);
    tokens = {
      alice: await tokenFor('alice'),
      bob: await tokenFor('bob'),
      staff,
      hostile: [
        await signed('alice', 'customer', -120), // expired
        await signed('librarian', 'staff', -1),
        await signed('alice', 'admin'), // a role that does not exist
        await signed('alice', 'STAFF'),
        await signed("'; DROP TABLE reservations; --", 'customer'), // signed, but an impossible subject
        await signed('../../admin', 'staff'),
        await signed('ålice\u202E', 'customer'),
        await signed('a'.repeat(500), 'customer'),
        await signed('', 'customer'),
        `${staff.slice(0, -2)}${staff.endsWith('AA') ? 'BB' : 'AA'}`, // tampered signature
        staff.split('.').slice(0, 2).join('.'), // no signature
        `${staff.split('.')[0]}.${Buffer.from(JSON.stringify({ sub: 'alice', role: 'staff', iss: 'bstore-demo', aud: 'bstore-api', exp: 4102444800 })).toString('base64url')}.${staff.split('.')[2]}`, // swapped claims
      ],
    };

    const rows = await system.databases.book.selectFrom('books').select(['book_id', 'quantity', 'copies']).execute();
    before = new Map(rows.map((r) => [r.book_id, { quantity: r.quantity, copies: r.copies }]));
  });

  afterAll(async () => {
    await system?.stop();
  });

  // FAILS until the product bugs listed in 'found by fuzzing' below are fixed: this property finds
  // them (NUL in a stored string -> 500, `Expect: 100-continue` -> 502, `??%` in the query -> 500), all fixed since.
  it('hostile bodies, paths, queries, methods and headers on every public route: never a 5xx; every 4xx a problem+json that leaks nothing', async () => {
    // One request per route in every run: each route is fuzzed numRuns times.
    const numRuns = 600;
    await fc.assert(
      fc.asyncProperty(fc.tuple(...ROUTES.map(requestFor)), async (requests) => {
        for (const req of requests) await exchange(req);
      }),
      settings(numRuns),
    );
    expect(stats.requests).toBeGreaterThanOrEqual(numRuns * ROUTES.length);
    // The fuzzing reached the handlers too, not only the gates in front of them.
    expect([...stats.byStatus.keys()].some((s) => s >= 200 && s < 300)).toBe(true);
    // 600 runs of every route: 40-50 s on this machine alone, more while other suites (a build,
    // a cluster) share its two cores; the default 60 s was too close. A limit, not a measurement.
  }, 300_000);

  it('JSON nested 1..5000 levels deep, as every body and under every content type: never a 5xx, a 4xx is a problem+json', async () => {
    const withBody = ROUTES.filter((r) => r.body);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...withBody),
        deepJson,
        fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', undefined),
        fc.boolean(),
        async (route, json, contentType, wrapped) => {
          const body = Buffer.from(wrapped ? objectText([['bookName', json], ['quantity', json]]) : json);
          const req: RawRequest = {
            method: route.method,
            target: pathOf(route, '1'),
            headers: [['authorization', `Bearer ${rightTokens(route.access)[0]}`], ...(contentType ? ([['content-type', contentType]] as [string, string][]) : [])],
            body,
          };
          const res = await exchange(req);
          expect(res.status).toBeLessThan(500);
        },
      ),
      settings(100),
    );
  });

  // FAILS until NUL in a stored string is fixed (see 'found by fuzzing'): the 'binary' unit generates \u0000.
  it('a book created with any unicode bookName/author comes back byte-identical, from the catalogue and on the reservation page', async () => {
    const staff = `Bearer ${tokens.staff}`;
    const alice = `Bearer ${tokens.alice}`;
    const codePoints = (s: string) => [...s].length;
    // What the schema accepts: 1..300 code points (author up to 200), no surrounding blanks (the domain trims them).
    const text = (max: number) =>
      fc.oneof(
        { weight: 4, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: max }) },
        { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: Math.min(max, 60) }) },
        { weight: 1, arbitrary: fc.constantFrom(...INJECTIONS.filter((s) => s.length > 0)) },
        // A lone surrogate cannot be UTF-8: refused (400), or stored as U+FFFD.
        { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 10 }), fc.integer({ min: 0xd800, max: 0xdfff })).map(([s, c]) => `a${s}${String.fromCharCode(c)}z`) },
      ).filter((s) => s.trim() === s && s.length > 0 && codePoints(s) <= max);

    await fc.assert(
      fc.asyncProperty(text(300), fc.option(text(200), { nil: undefined }), async (bookName, author) => {
        const members: [string, string][] = [['bookName', JSON.stringify(bookName)], ['quantity', '2']];
        if (author !== undefined) members.push(['author', JSON.stringify(author)]);
        const created = await exchange({ method: 'POST', target: '/books', headers: [['authorization', staff], ['content-type', 'application/json']], body: Buffer.from(objectText(members)) });
        const wellFormed = bookName.isWellFormed() && (author === undefined || author.isWellFormed());
        if (created.status === 400 && !wellFormed) return; // refused: fine for a string UTF-8 cannot carry
        // U+0000 cannot be stored in PostgreSQL text: every service refuses it with one clear 400.
        if ([bookName, author ?? ''].some((s) => s.includes('\u0000'))) {
          expect(created.status).toBe(400);
          expect(JSON.parse(created.body.toString('utf8'))).toMatchObject({ code: 'NUL_CHARACTER' });
          return;
        }
        expect(created.status, created.body.toString('utf8')).toBe(201);
        const bytes = (s: string) => Buffer.from(s, 'utf8');
        const same = (got: unknown, want: string, where: string) => {
          expect(typeof got, where).toBe('string');
          // Byte for byte (a lone surrogate is stored as U+FFFD, the only thing UTF-8 can hold).
          expect(bytes(got as string).equals(bytes(want.toWellFormed())), `${where}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`).toBe(true);
        };
        const { bookId } = JSON.parse(created.body.toString('utf8')) as { bookId: number };
        same(JSON.parse(created.body.toString('utf8')).bookName, bookName, 'the 201 answer');

        const got = await exchange({ method: 'GET', target: `/books/${bookId}`, headers: [] });
        expect(got.status).toBe(200);
        const book = JSON.parse(got.body.toString('utf8')) as { bookName: string; author: string | null };
        same(book.bookName, bookName, 'GET /books/{id} bookName');
        if (author !== undefined) same(book.author, author, 'GET /books/{id} author');

        const reserved = await exchange({ method: 'POST', target: '/reservations', headers: [['authorization', alice], ['content-type', 'application/json']], body: Buffer.from(`{"bookId":${bookId}}`) });
        expect(reserved.status, reserved.body.toString('utf8')).toBe(201);
        const { reservationId } = JSON.parse(reserved.body.toString('utf8')) as { reservationId: number };
        const reservation = await exchange({ method: 'GET', target: `/reservations/${reservationId}`, headers: [['authorization', alice]] });
        same((JSON.parse(reservation.body.toString('utf8')) as { bookName: unknown }).bookName, bookName, 'GET /reservations/{id} bookName');
        const page = await eventually(`the page of reservation ${reservationId}`, async () => {
          const res = await exchange({ method: 'GET', target: `/reservationPages/${reservationId}`, headers: [['authorization', alice]] });
          const body = res.status === 200 ? (JSON.parse(res.body.toString('utf8')) as { bookName: string | null }) : undefined;
          return body && body.bookName !== null ? body : undefined;
        });
        same(page.bookName, bookName, 'GET /reservationPages/{id} bookName');
      }),
      settings(150),
    );
  });

  // FAILS until createHttpApp answers the HTTP parser's errors as problem+json (see 'found by fuzzing', 4):
  // Fastify's default clientErrorHandler writes {"error","message","statusCode"} as application/json.
  it('malformed HTTP (CRLF and NUL in headers, bad methods, raw bytes in the target, oversized heads, smuggling): never a 5xx, a 4xx is a problem+json', async () => {
    const staff = `Bearer ${tokens.staff}`;
    const method = fc.oneof(
      fc.constantFrom('GET', 'POST', 'FOO', 'get', 'CONNECT', 'M-SEARCH', 'G\u0000ET', 'GET GET', 'GÉT', ''),
      fc.stringMatching(/^[A-Z]{1,12}$/),
    );
    const target = fc.oneof(
      fc.constantFrom(
        'books', '/books HTTP/1.0', '/books/\u0000', '/books/../../etc/passwd', '/%', '*', 'http://evil.example/books', '/books?q=\u00e9\u202e', '/books/\u00e9',
        '/books\r\nX-Injected: 1', '/books/1\t', '/books/ 1', '/books/"1"', '/books/<1>', '/books/{1}', '/books/1#frag', `/books/${'x'.repeat(20_000)}`, `/books?q=${'x'.repeat(20_000)}`,
      ),
      fc.tuple(fc.constantFrom(...ROUTES.map((r) => pathOf(r, '1'))), shortHostileString).map(([p, s]) => `${p}/${s.slice(0, 200)}`),
    );
    const headerLines = fc.oneof(
      fc.constantFrom(
        `authorization: ${staff}\r\nx-role: staff`,
        'authorization: Bearer x\r\nX-Injected: 1',
        'authorization: Bearer \u0000',
        'x-request-id: a\u0000b',
        'x-test: \u0001\u0002\u007f',
        'bad header: 1',
        'x\u00e9: 1',
        ': empty-name',
        'no-colon',
        ' leading-space: 1',
        `x-big: ${'a'.repeat(20_000)}`,
        Array.from({ length: 300 }, (_, i) => `x-h${i}: ${i}`).join('\r\n'),
        'content-length: 1\r\ncontent-length: 2',
        'content-length: -1',
        'content-length: 1e3',
        'transfer-encoding: chunked\r\ncontent-length: 5',
        'transfer-encoding: chunked, identity',
        'transfer-encoding: xchunked',
        `authorization: Bearer ${'A'.repeat(20_000)}`,
        'host: a\r\nhost: b',
      ),
      fc.tuple(fc.constantFrom('authorization', 'accept', 'content-type', 'idempotency-key', 'x-request-id'), shortHostileString).map(([k, v]) => `${k}: ${v.slice(0, 300)}`),
    );
    await fc.assert(
      fc.asyncProperty(method, target, headerLines, fc.option(fc.constantFrom('{"bookId":1}', '0\r\n\r\n', 'x'), { nil: undefined }), async (m, t, h, body) => {
        const head = `${m} ${t} HTTP/1.1\r\nhost: ${gateway.host}\r\nconnection: close\r\n${h}\r\n${body !== undefined && !/content-length|transfer-encoding/i.test(h) ? `content-length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n`;
        const bytes = Buffer.concat([Buffer.from(head, 'utf8'), Buffer.from(body ?? '', 'utf8')]);
        const res = await sendRaw(gateway, bytes, m);
        if (!res) return; // the server hung up on it: a fine answer to a request it could not read
        stats.requests++;
        stats.byStatus.set(res.status, (stats.byStatus.get(res.status) ?? 0) + 1);
        const failures = failuresOf(bytes, m, res);
        if (failures.length > 0) {
          throw new Error(`${failures.join('; ')}\nrequest bytes: ${describeRequest(bytes)}\nanswer: ${res.status} ${res.headers['content-type'] ?? ''} ${clip(res.body.toString('utf8'), 400)}`);
        }
      }),
      settings(150),
    );
  });

  /*
   * FOUND BY THE FUZZER, now fixed: the exact requests that once failed the properties above,
   * replayed deterministically as regression tests. Each must answer below 500, a 4xx as problem+json.
   */
  it('found by fuzzing: each of these exact requests answers below 500, a 4xx as problem+json', async () => {
    const staff: [string, string] = ['authorization', `Bearer ${tokens.staff}`];
    const json: [string, string] = ['content-type', 'application/json'];
    const findings: { what: string; bytes: Buffer; method: string }[] = [
      // 1. A valid request with `Expect: 100-continue` (RFC 9110 §10.1.1): was 502 (the proxy passed the header on).
      { what: 'Expect: 100-continue on POST /books', method: 'POST', bytes: encodeRequest(gateway, { method: 'POST', target: '/books', headers: [staff, json, ['expect', '100-continue']], body: Buffer.from('{"bookName":"Expect","quantity":1}') }) },
      { what: 'Expect: 100-continue on GET /books', method: 'GET', bytes: encodeRequest(gateway, { method: 'GET', target: '/books', headers: [['expect', '100-continue']] }) },
      // 2. A NUL character (\u0000, valid in JSON) in a stored string: was 500 (PostgreSQL text cannot hold it); now 400 NUL_CHARACTER.
      { what: 'NUL in bookName', method: 'POST', bytes: encodeRequest(gateway, { method: 'POST', target: '/books', headers: [staff, json], body: Buffer.from('{"bookName":"a\\u0000b","quantity":1}') }) },
      { what: 'NUL in author', method: 'POST', bytes: encodeRequest(gateway, { method: 'POST', target: '/books', headers: [staff, json], body: Buffer.from('{"bookName":"ok","author":"a\\u0000b","quantity":1}') }) },
      { what: 'NUL in library name', method: 'POST', bytes: encodeRequest(gateway, { method: 'POST', target: '/libraries', headers: [staff, json], body: Buffer.from('{"name":"a\\u0000b"}') }) },
      // 3. A second "?" hid a malformed percent-escape from the gateway's query check: was 500; now 400 INVALID_QUERY.
      { what: 'GET /assignments??%', method: 'GET', bytes: encodeRequest(gateway, { method: 'GET', target: '/assignments??%', headers: [staff] }) },
      { what: 'GET /books??%', method: 'GET', bytes: encodeRequest(gateway, { method: 'GET', target: '/books??%', headers: [] }) },
      { what: 'GET /books?limit=1?%', method: 'GET', bytes: encodeRequest(gateway, { method: 'GET', target: '/books?limit=1?%', headers: [] }) },
      // 4. A request the HTTP parser refuses (raw non-ASCII in the target, a bad method, CRLF in a
      //    header): was Fastify's default 400 application/json (431 for an oversized head); now
      //    createHttpApp's clientErrorHandler answers problem+json.
      { what: 'raw UTF-8 in the request target', method: 'GET', bytes: Buffer.from(`GET /books/\u00e9 HTTP/1.1\r\nhost: ${gateway.host}\r\nconnection: close\r\n\r\n`, 'utf8') },
      { what: 'unknown method FOO', method: 'FOO', bytes: Buffer.from(`FOO /books HTTP/1.1\r\nhost: ${gateway.host}\r\nconnection: close\r\n\r\n`) },
      // 5. A request answered 400 for its URL whose body then broke the parser (an unknown
      //    transfer-encoding) was answered a second time on the same socket: two answers.
      { what: 'an answered bad URL, then a parser error', method: 'GET', bytes: Buffer.from(`GET /% HTTP/1.1\r\nhost: ${gateway.host}\r\nconnection: close\r\ntransfer-encoding: xchunked\r\n\r\nx`) },
      { what: 'a 20 KB header', method: 'GET', bytes: Buffer.from(`GET /books HTTP/1.1\r\nhost: ${gateway.host}\r\nconnection: close\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`) },
    ];
    const failed: string[] = [];
    for (const f of findings) {
      const res = await sendRaw(gateway, f.bytes, f.method);
      if (!res) continue;
      const failures = failuresOf(f.bytes, f.method, res);
      if (failures.length > 0) failed.push(`${f.what}: ${failures.join('; ')} — ${res.status} ${res.headers['content-type'] ?? ''} ${clip(res.body.toString('utf8'), 200)}`);
    }
    expect(failed).toEqual([]);
  });

  it('after all the fuzzing: invariants I1–I5 hold, and the stock moved only where valid requests moved it', async () => {
    const dbs = databasesOf(system);
    const input = { acknowledged: [...acknowledged], canceled: [...canceled] };
    const violations = await eventually('the saga to go quiet with the invariants holding', async () => {
      const found = await checkInvariants(dbs, input);
      return found.length === 0 ? found : undefined;
    }, 30_000).catch(() => checkInvariants(dbs, input));
    expect(violations).toEqual([]);

    const rows = await system.databases.book.selectFrom('books').select(['book_id', 'quantity', 'copies']).execute();
    const after = new Map(rows.map((r) => [r.book_id, { quantity: r.quantity, copies: r.copies }]));
    // Books appear only by a 201 to POST /books.
    const unexplained = rows.filter((r) => !before.has(r.book_id) && !lastCopies.has(r.book_id));
    expect(unexplained.map((r) => r.book_id), JSON.stringify(await system.databases.book.selectFrom('books').selectAll().where('book_id', 'in', unexplained.length > 0 ? unexplained.map((r) => r.book_id) : [-1]).execute())).toEqual([]);
    expect(after.size).toBe(before.size + booksCreated);
    // Copies change only by POST /books/{id}/copies (a hold moves a copy from quantity, not from copies).
    for (const [bookId, row] of after) {
      const expected = lastCopies.get(bookId) ?? before.get(bookId)?.copies;
      expect(row.copies, `copies of book ${bookId}`).toBe(expected);
    }
    // A book no valid request touched (no reservation of it, no copies added or withdrawn) has the stock it had.
    const reserved = new Set((await system.databases.reservation.selectFrom('reservations').select('book_id').execute()).map((r) => r.book_id));
    let untouched = 0;
    for (const [bookId, old] of before) {
      if (reserved.has(bookId) || lastCopies.has(bookId)) continue;
      untouched++;
      expect(after.get(bookId), `book ${bookId}`).toEqual(old);
    }
    console.info(
      `fuzz: ${stats.requests} requests; statuses ${JSON.stringify(Object.fromEntries([...stats.byStatus].sort(([a], [b]) => a - b)))}; ` +
        `${acknowledged.size} reservations acknowledged, ${canceled.size} cancelled, ${booksCreated} books created, ${untouched} books untouched`,
    );
  });
});
