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

/**
 * JSON with object keys sorted at every level and undefined members dropped (RFC 8785-like for the
 * strings, numbers and booleans audit records and token claims hold): one encoding per value, so a hash
 * of it names the value (audit log entries, the claims hash of a release).
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  // Written into one string as it goes (no entry arrays, closures or joins: it runs on every release
  // for the token's claims and for the audit record).
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (i > 0) out += ',';
      out += x === undefined ? 'null' : canonicalJson(x);
    }
    return `${out}]`;
  }
  const o = v as Record<string, unknown>;
  // Default sort order: UTF-16 code units, as `a < b` compares strings (own keys are distinct).
  const keys = Object.keys(o).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const x = o[k];
    if (x === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += quotedKey(k);
    out += canonicalJson(x);
  }
  return `${out}}`;
}

/**
 * `JSON.stringify(key) + ':'`, remembered: audit records and token claims repeat a small vocabulary of
 * member names, and quoting them was a third of canonicalJson's time. Bounded (short keys, at most
 * {@link QUOTED_KEYS_MAX} of them; any other key is quoted each time), so keys an attacker chooses cost
 * no more than before and hold no memory.
 */
const QUOTED_KEYS_MAX = 2048;
const QUOTED_KEY_CHARS = 64;
const quotedKeys = new Map<string, string>();
function quotedKey(k: string): string {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = `${JSON.stringify(k)}:`;
    if (k.length <= QUOTED_KEY_CHARS && quotedKeys.size < QUOTED_KEYS_MAX) quotedKeys.set(k, q);
  }
  return q;
}
