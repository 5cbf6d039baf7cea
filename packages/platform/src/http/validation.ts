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

/** How deep a JSON body may nest (objects and arrays); bstore's bodies are a level or two. */
export const MAX_JSON_DEPTH = 32;

/**
 * Whether JSON text nests objects and arrays deeper than `max`, found by one scan of the text
 * (brackets inside strings do not count), before it is parsed: JSON.parse of a body nested many
 * thousand levels deep overflows the stack.
 */
export function jsonDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c) i++; // backslash: the next character is escaped
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) {
      inString = true;
    } else if (char === 0x7b || char === 0x5b) {
      if (++depth > max) return true;
    } else if (char === 0x7d || char === 0x5d) {
      depth--;
    }
  }
  return false;
}
