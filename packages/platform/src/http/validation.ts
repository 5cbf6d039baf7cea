import { Ajv, type Options } from 'ajv';
import * as addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

// ajv-formats is CommonJS: its default export arrives wrapped under ESM.
const addFormats = (addFormatsModule as unknown as { default: (ajv: Ajv) => Ajv }).default;

const common: Options = { allErrors: false, removeAdditional: false, useDefaults: true, strict: false };

/** Bodies are JSON, so types are checked strictly: `"1"` is not an integer. */
const bodyAjv = new Ajv({ ...common, coerceTypes: false });
/** Path and query arrive as strings: those are coerced to the declared types. */
const paramsAjv = new Ajv({ ...common, coerceTypes: 'array' });
addFormats(bodyAjv);
addFormats(paramsAjv);

/**
 * Schema compiler for every route: unknown properties are rejected (never silently dropped),
 * bodies are not coerced, path and query strings are.
 */
export const validatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) => {
  const ajv = httpPart === 'body' ? bodyAjv : paramsAjv;
  return ajv.compile(schema) as ReturnType<FastifySchemaCompiler<object>>;
};
