import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { compile, type JSONSchema } from 'json-schema-to-typescript';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedSystem } from '@bstore/launcher';
import type { OpenApiDocument } from '@bstore/platform';
import { startTestSystem } from './support/system.ts';

/**
 * The web client declares the API's types by hand (web/src/api.ts); this test holds them to the
 * gateway's OpenAPI document. Each `ApiClient` method is paired with the operation it calls; the
 * operation's answer, request body and query parameters become TypeScript types
 * (json-schema-to-typescript), and the compiler checks that what the gateway answers fits what the
 * web app expects, that every field the web app reads is in the answer, and that what the web app
 * sends fits the request's schema. A field renamed, retyped or dropped on either side fails here,
 * naming the method and the compiler's message.
 */

const ROOT = resolve(import.meta.dirname, '..');
const WEB_API = join(ROOT, 'web/src/api.ts');

interface Check {
  /** The operation in the gateway's document. */
  method: 'get' | 'post' | 'patch';
  path: string;
  status: number;
  /** The web's type for the answer, written against `Web` (web/src/api.ts). */
  answer: string;
  /** The web's type for the body it sends, if any. */
  body?: string;
  /** The web's type for the query it sends, if any. */
  query?: string;
}

/** Every ApiClient call, by name (a method of ApiClient, or a type of api.ts for the shared Problem). */
const CHECKS: Record<string, Check> = {
  signIn: { method: 'post', path: '/auth/token', status: 200, answer: 'Web.TokenResponse', body: '{ username: string; password: string }' },
  books: { method: 'get', path: '/books', status: 200, answer: "Awaited<ReturnType<Web.ApiClient['books']>>", query: "Parameters<Web.ApiClient['books']>[0]" },
  createBook: { method: 'post', path: '/books', status: 201, answer: "Awaited<ReturnType<Web.ApiClient['createBook']>>", body: "Parameters<Web.ApiClient['createBook']>[0]" },
  adjustCopies: { method: 'post', path: '/books/{bookId}/copies', status: 200, answer: "Awaited<ReturnType<Web.ApiClient['adjustCopies']>>", body: '{ delta: number }' },
  libraries: { method: 'get', path: '/libraries', status: 200, answer: '{ items: Web.LibraryWithLoad[] }' },
  createLibrary: { method: 'post', path: '/libraries', status: 201, answer: "Awaited<ReturnType<Web.ApiClient['createLibrary']>>", body: "Parameters<Web.ApiClient['createLibrary']>[0]" },
  assignments: { method: 'get', path: '/assignments', status: 200, answer: "Awaited<ReturnType<Web.ApiClient['assignments']>>", query: "Parameters<Web.ApiClient['assignments']>[0]" },
  reserve: { method: 'post', path: '/reservations', status: 201, answer: "Awaited<ReturnType<Web.ApiClient['reserve']>>", body: "Parameters<Web.ApiClient['reserve']>[0]" },
  cancel: { method: 'patch', path: '/reservations/{reservationId}', status: 202, answer: "Awaited<ReturnType<Web.ApiClient['cancel']>>", body: "{ status: 'bookCancel' }" },
  checkOut: { method: 'patch', path: '/reservations/{reservationId}', status: 200, answer: "Awaited<ReturnType<Web.ApiClient['checkOut']>>", body: "{ status: 'bookLoaned' }" },
  checkIn: { method: 'patch', path: '/reservations/{reservationId}', status: 200, answer: "Awaited<ReturnType<Web.ApiClient['checkIn']>>", body: "{ status: 'bookReturned' }" },
  reservations: { method: 'get', path: '/reservations', status: 200, answer: "Awaited<ReturnType<Web.ApiClient['reservations']>>", query: "Parameters<Web.ApiClient['reservations']>[0]" },
  reservationPages: {
    method: 'get',
    path: '/reservationPages',
    status: 200,
    answer: "Awaited<ReturnType<Web.ApiClient['reservationPages']>>",
    query: "Parameters<Web.ApiClient['reservationPages']>[0]",
  },
  reservationPage: { method: 'get', path: '/reservationPages/{reservationId}', status: 200, answer: "Awaited<ReturnType<Web.ApiClient['reservationPage']>>" },
  deadLetters: { method: 'get', path: '/admin/dead-letters', status: 200, answer: "Awaited<ReturnType<Web.ApiClient['deadLetters']>>", query: "Parameters<Web.ApiClient['deadLetters']>[0]" },
  replayDeadLetter: { method: 'post', path: '/admin/dead-letters/{id}/replay', status: 200, answer: "Awaited<ReturnType<Web.ApiClient['replayDeadLetter']>>" },
};

/**
 * The web's fields missing from the API's type, as paths (the check file's other tests are plain
 * functions answering the API's type as the web's, so that the compiler names the field that does
 * not fit).
 */
const PRELUDE = `
type Missing<W, A, P extends string = ''> =
  W extends readonly (infer WE)[] ? (A extends readonly (infer AE)[] ? Missing<WE, AE, \`\${P}[]\`> : never)
  : W extends object
    ? A extends object
      ? { [K in keyof W & string]-?: K extends keyof A ? Missing<NonNullable<W[K]>, NonNullable<A[K]>, \`\${P}.\${K}\`> : \`\${P}.\${K}\` }[keyof W & string]
      : never
    : never;
type NoneMissing<W, A> = [Missing<W, A>] extends [never] ? true : Missing<W, A>;
`;

interface Operation {
  parameters?: Array<{ name: string; in: string; required?: boolean; schema?: JSONSchema }>;
  requestBody?: { content?: Record<string, { schema?: JSONSchema }> };
  responses?: Record<string, { content?: Record<string, { schema?: JSONSchema }> }>;
}

let system: EmbeddedSystem;
let doc: OpenApiDocument;
let dir: string;

beforeAll(async () => {
  system = await startTestSystem({ seedDemoData: false });
  const res = await fetch(`${system.urls.gateway}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as OpenApiDocument;
  dir = mkdtempSync(join(tmpdir(), 'bstore-web-types-'));
});

afterAll(async () => {
  await system?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The schema, with the document's components beside it so that its `#/components/...` references resolve. */
const withComponents = (schema: JSONSchema): JSONSchema => ({ ...structuredClone(schema), components: structuredClone(doc.components ?? {}) });

async function generate(file: string, name: string, schema: JSONSchema): Promise<void> {
  const source = await compile(withComponents(schema), name, { bannerComment: '', format: false, additionalProperties: false, strictIndexSignatures: true, unreachableDefinitions: false });
  writeFileSync(join(dir, file), source);
}

function operationOf(check: Check): Operation {
  const operation = (doc.paths?.[check.path] as Record<string, Operation> | undefined)?.[check.method];
  if (!operation) throw new Error(`the gateway's document has no ${check.method.toUpperCase()} ${check.path}`);
  return operation;
}

const jsonSchema = (content: Record<string, { schema?: JSONSchema }> | undefined, what: string): JSONSchema => {
  const schema = content?.['application/json']?.schema;
  if (!schema) throw new Error(`${what} has no application/json schema`);
  return schema;
};

/** Type-checks `source` (a file in `dir`) and answers the compiler's messages. */
function typeErrors(file: string): string[] {
  const program = ts.createProgram([join(dir, file)], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    customConditions: ['source'],
    lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
    types: [],
    skipLibCheck: true,
  });
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file ? `${d.file.fileName.replace(`${dir}/`, '')}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}

describe("the web client's types against the gateway's OpenAPI document", () => {
  it('every ApiClient call answers, accepts and is queried as the web app declares (generated from the schemas and checked by the compiler)', { timeout: 120_000 }, async () => {
    const lines = [`import type * as Web from ${JSON.stringify(WEB_API)};`, PRELUDE];
    for (const [name, check] of Object.entries(CHECKS)) {
      const operation = operationOf(check);
      const label = `${name}: ${check.method.toUpperCase()} ${check.path}`;
      const answer = jsonSchema(operation.responses?.[String(check.status)]?.content, `${label} ${check.status}`);
      await generate(`${name}.answer.ts`, 'Answer', answer);
      lines.push(`import type { Answer as ${name}Answer } from './${name}.answer.ts';`);
      lines.push(`export const ${name}AnswerFits = (answer: ${name}Answer): ${check.answer} => answer;`);
      lines.push(`export const ${name}AnswerHasEveryField: NoneMissing<${check.answer}, ${name}Answer> = true;`);
      if (check.body) {
        await generate(`${name}.body.ts`, 'Body', jsonSchema(operation.requestBody?.content, `${label} request body`));
        lines.push(`import type { Body as ${name}Body } from './${name}.body.ts';`);
        lines.push(`export const ${name}BodyFits = (body: ${check.body}): ${name}Body => body;`);
      }
      if (check.query) {
        const params = (operation.parameters ?? []).filter((p) => p.in === 'query');
        const query: JSONSchema = {
          type: 'object',
          properties: Object.fromEntries(params.map((p) => [p.name, p.schema ?? {}])),
          // A parameter with a default is one the client may leave out (the route's schema fills it in).
          required: params.filter((p) => p.required && (p.schema as { default?: unknown } | undefined)?.default === undefined).map((p) => p.name),
        };
        await generate(`${name}.query.ts`, 'Query', query);
        lines.push(`import type { Query as ${name}Query } from './${name}.query.ts';`);
        lines.push(`export const ${name}QueryFits = (query: ${check.query}): ${name}Query => query;`);
      }
    }
    // The shared error body: what the gateway documents fits the web's Problem.
    const problem = doc.components?.schemas?.Problem as JSONSchema | undefined;
    expect(problem, 'the document describes Problem').toBeDefined();
    await generate('problem.ts', 'Problem', problem as JSONSchema);
    lines.push(`import type { Problem as ApiProblem } from './problem.ts';`, 'export const problemFits = (problem: ApiProblem): Web.Problem => problem;');
    writeFileSync(join(dir, 'check.ts'), lines.join('\n'));

    expect(typeErrors('check.ts')).toEqual([]);
  });

  it('fails when they drift: a field the web app reads that the answer lacks, and a field typed otherwise, are both caught', { timeout: 120_000 }, async () => {
    // The same machinery on a web type that disagrees with GET /books/{bookId}'s answer.
    const answer = jsonSchema(operationOf({ method: 'get', path: '/books/{bookId}', status: 200, answer: '' }).responses?.['200']?.content, 'GET /books/{bookId}');
    await generate('drift.answer.ts', 'Answer', answer);
    writeFileSync(
      join(dir, 'drift.ts'),
      [
        `import type * as Web from ${JSON.stringify(WEB_API)};`,
        PRELUDE,
        "import type { Answer } from './drift.answer.ts';",
        'export const same = (answer: Answer): Web.Book => answer;',
        'export const sameFields: NoneMissing<Web.Book, Answer> = true;',
        'export const extraField: NoneMissing<Web.Book & { shelf: string }, Answer> = true;',
        "export const otherType = (answer: Answer): Omit<Web.Book, 'quantity'> & { quantity: string } => answer;",
      ].join('\n'),
    );
    const errors = typeErrors('drift.ts');
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/drift\.ts:\d+: .*"\.shelf"/);
    expect(errors[1]).toMatch(/drift\.ts:\d+: [^]*'quantity'[^]*'number' is not assignable to type 'string'/);
  });
});
