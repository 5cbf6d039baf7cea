import { Type } from 'typebox';

/**
 * An RFC 9457 problem: thrown by route handlers, answered as application/problem+json by the
 * error handler of createHttpApp. `code` is the stable machine-readable code; further members
 * (for example `reservationId`) go in `extensions`.
 */
export class HttpProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, detail: string, options: { title?: string; extensions?: Record<string, unknown>; headers?: Record<string, string> } = {}) {
    super(detail);
    this.name = 'HttpProblem';
    this.status = status;
    this.code = code;
    this.title = options.title ?? titleOf(status);
    this.extensions = options.extensions ?? {};
    this.headers = options.headers ?? {};
  }
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  [member: string]: unknown;
}

export function problemType(code: string): string {
  return `urn:bstore:problem:${code.toLowerCase().replaceAll('_', '-')}`;
}

export function problemBody(status: number, code: string, detail: string, extensions: Record<string, unknown> = {}, title = titleOf(status)): ProblemBody {
  // Extensions never override the standard members (RFC 9457 §3.1: `status` is the HTTP status).
  return { ...extensions, type: problemType(code), title, status, detail, code };
}

/** The schema of every error answer, for route declarations and the OpenAPI document. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    instance: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

/**
 * The errors any route of a bstore service can answer, for its `response` map (and so its OpenAPI
 * document): a bearer token that is malformed or not valid (401; every service verifies tokens),
 * an Accept header that allows nothing the route produces (406), an unexpected failure (500, with
 * nothing of it in the body) and an instance shutting down (503).
 *
 * @example
 * response: { 200: BookSchema, 404: ProblemSchema, ...COMMON_PROBLEMS }
 */
export const COMMON_PROBLEMS = { 401: ProblemSchema, 406: ProblemSchema, 500: ProblemSchema, 503: ProblemSchema };

/** The further errors of a route that takes a JSON body: too large (413), not JSON (415). */
export const BODY_PROBLEMS = { 413: ProblemSchema, 415: ProblemSchema };

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function titleOf(status: number): string {
  return TITLES[status] ?? (status >= 500 ? 'Server Error' : 'Client Error');
}
