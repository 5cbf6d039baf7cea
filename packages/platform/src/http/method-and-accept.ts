import Router from 'find-my-way';

/**
 * What a route answers with, for the Accept check of createHttpApp: by default JSON (and
 * problem+json, which every error is). A route that answers with something else says so in its
 * config, e.g. `config: { produces: ['text/event-stream'] }`; `ANY_MEDIA_TYPE` turns the check off
 * (a proxy, whose upstream negotiates; static assets).
 */
export const JSON_MEDIA_TYPES: readonly string[] = ['application/json', 'application/problem+json'];

/** In `produces`: the route may answer any media type, so no Accept header is refused. */
export const ANY_MEDIA_TYPE = '*/*';

/** One media range of an Accept header, lower-cased, with its weight. */
export interface MediaRange {
  type: string;
  subtype: string;
  q: number;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/** Splits on `separator` outside double-quoted strings (a parameter value may be quoted and hold commas). */
function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quoted && char === '\\') {
      current += char + (text[i + 1] ?? '');
      i++;
      continue;
    }
    if (char === '"') quoted = !quoted;
    if (char === separator && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts;
}

/**
 * The media ranges of an Accept header (RFC 9110 §12.5.1). A range that is not well formed (no
 * `type/subtype`, `*` type with a concrete subtype, a q-value outside 0..1 or with more than three
 * decimals) is left out, as if it were not there. Other parameters are ignored.
 *
 * @example
 * parseAccept('text/html, application/json;q=0.5') // [{ type: 'text', subtype: 'html', q: 1 }, { type: 'application', subtype: 'json', q: 0.5 }]
 */
export function parseAccept(header: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const element of splitOutsideQuotes(header, ',')) {
    const [range = '', ...params] = splitOutsideQuotes(element, ';').map((p) => p.trim());
    if (range === '') continue;
    const [type = '', subtype = '', ...extra] = range.toLowerCase().split('/');
    if (extra.length > 0 || !TOKEN.test(type) || !TOKEN.test(subtype) || (type === '*' && subtype !== '*')) continue;
    let q = 1;
    let valid = true;
    for (const param of params) {
      const eq = param.indexOf('=');
      if (eq <= 0) continue;
      if (param.slice(0, eq).trim().toLowerCase() !== 'q') continue;
      const value = param.slice(eq + 1).trim();
      if (!QVALUE.test(value)) valid = false;
      else q = Number(value);
      break; // parameters after the weight are extensions, ignored
    }
    if (valid) ranges.push({ type, subtype, q });
  }
  return ranges;
}

/**
 * The weight the ranges give one media type: that of the most specific range that matches it
 * (`type/subtype` over `type/*` over `*\/*`), the highest of equally specific ones; 0 when none matches.
 */
export function weightOf(mediaType: string, ranges: readonly MediaRange[]): number {
  const [type = '', subtype = ''] = mediaType.toLowerCase().split('/');
  let best = -1;
  let weight = 0;
  for (const range of ranges) {
    const specificity =
      range.type === type && range.subtype === subtype ? 2 : range.type === type && range.subtype === '*' ? 1 : range.type === '*' && range.subtype === '*' ? 0 : -1;
    if (specificity < 0) continue;
    if (specificity > best) {
      best = specificity;
      weight = range.q;
    } else if (specificity === best) {
      weight = Math.max(weight, range.q);
    }
  }
  return weight;
}

/**
 * Whether a request's Accept header allows at least one of the media types the route produces. No
 * header (or one with no well-formed range, which a server may disregard) accepts anything.
 *
 * @example
 * acceptable('text/html', JSON_MEDIA_TYPES) // false
 * acceptable('application/json;q=0, application/*;q=0.1', JSON_MEDIA_TYPES) // true: problem+json still is
 */
export function acceptable(header: string | undefined, produces: readonly string[]): boolean {
  if (header === undefined || produces.includes(ANY_MEDIA_TYPE)) return true;
  const ranges = parseAccept(header);
  if (ranges.length === 0) return true;
  return produces.some((mediaType) => weightOf(mediaType, ranges) > 0);
}

/** The order of the methods in an `Allow` header; others follow alphabetically. */
const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

function byMethodOrder(a: string, b: string): number {
  const ia = METHOD_ORDER.indexOf(a);
  const ib = METHOD_ORDER.indexOf(b);
  if (ia !== -1 || ib !== -1) return (ia === -1 ? Infinity : ia) - (ib === -1 ? Infinity : ib);
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The methods each registered path serves, for 405 answers: routes are added as they are
 * registered, and `allowedMethods(path)` matches a concrete path against their patterns with
 * find-my-way, Fastify's own router (so `:param` and `*` mean what they mean to Fastify).
 */
export class RouteMethods {
  private readonly router = Router({ ignoreTrailingSlash: true });
  private readonly methods = new Set<Router.HTTPMethod>();

  /** Records that `url` (a route pattern, e.g. `/books/:bookId`) serves `method`. */
  add(method: string, url: string): void {
    const m = method.toUpperCase() as Router.HTTPMethod;
    try {
      this.router.on(m, url, () => undefined);
      this.methods.add(m);
    } catch {
      // Declared twice (Fastify refuses that itself), or a method find-my-way does not know.
    }
  }

  /**
   * The methods a concrete path is served with, in `Allow` order; empty when no route matches it.
   * A path that only an OPTIONS route matches (CORS registers `OPTIONS *`) counts as unknown.
   */
  allowedMethods(path: string): string[] {
    const allowed = [...this.methods].filter((method) => this.router.find(method, path) !== null);
    if (allowed.every((method) => method === 'OPTIONS')) return [];
    return allowed.sort(byMethodOrder);
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The media types the route answers with besides errors, checked against the Accept header
     * (406 when none is acceptable); default JSON. `['*\/*']` (ANY_MEDIA_TYPE): not checked.
     */
    produces?: readonly string[];
  }
}
