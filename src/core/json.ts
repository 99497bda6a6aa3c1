import { type ErrorCode, fail } from './errors.js';

/**
 * How deep untrusted JSON may nest. JSON.parse itself copes with any depth, but everything that walks
 * the result afterwards (JSON.stringify, canonical forms, JMESPath, deep comparisons) recurses, and a
 * document nested a hundred thousand levels deep would overflow the stack there: a 500, not a 400.
 * Real documents (MAA runtime data, release policies, collateral, bundles) nest fewer than 16 levels.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether JSON text nests arrays and objects deeper than `limit`, read from the text in one pass
 * without recursion (brackets inside strings do not count).
 */
export function jsonTextTooDeep(text: string, limit = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * JSON.parse for untrusted text: refuses text nested deeper than {@link MAX_JSON_DEPTH} and text that is
 * not JSON, both with `code` (default `request.invalid`) naming `what`.
 */
export function parseJsonText(text: string, what: string, code: ErrorCode = 'request.invalid', maxDepth = MAX_JSON_DEPTH): unknown {
  if (jsonTextTooDeep(text, maxDepth)) throw fail(code, `${what} nests deeper than ${maxDepth} levels`, { field: what, maxDepth });
  try {
    return JSON.parse(text);
  } catch {
    throw fail(code, `${what} is not valid JSON`, { field: what });
  }
}
