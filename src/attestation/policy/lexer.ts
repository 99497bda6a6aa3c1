import { fail } from '../../core/errors.js';
import type { SourcePosition } from './ast.js';

export type TokenKind = 'ident' | 'string' | 'number' | 'punct' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** Identifier name, decoded string, number source text, or the punctuation itself. */
  readonly text: string;
  readonly line: number;
  readonly column: number;
}

/** Punctuation of the policy language, longest first so `=>` wins over `=`. */
const PUNCTUATION = ['=>', '==', '!=', '<=', '>=', '&&', '<', '>', '=', '!', ';', '{', '}', '[', ']', '(', ')', ',', ':', '.'] as const;

/**
 * Quote characters that open and close a string literal. Besides ASCII `"`, Microsoft's own published
 * policies (policy-examples 2020, custom-tcb-baseline-enforcement) carry typographic quotes that the docs
 * renderer put there; accepting them lets those examples be pasted as they are.
 */
const QUOTES = new Set(['"', '\u201c', '\u201d']);

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', "'": "'", n: '\n', r: '\r', t: '\t', b: '\b', f: '\f' };

export function syntaxError(message: string, at: SourcePosition, near: string): never {
  throw fail('attestation.policy_syntax', `${message} at line ${at.line}, column ${at.column}`, { line: at.line, column: at.column, near: near.slice(0, 40) });
}

function isIdentStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c === '$';
}

function isIdentPart(c: string): boolean {
  return isIdentStart(c) || (c >= '0' && c <= '9') || c === '-';
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

/**
 * Splits policy text into tokens. `//` starts a comment to the end of the line (used throughout the 1.2
 * samples). Identifiers may contain `-` and `$` because MAA claim-set identifiers and function names are
 * written bare, but `-` cannot start one.
 */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === '\n') {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v' || c === '\u00a0' || c === '\ufeff') {
      i++;
      continue;
    }
    const column = i - lineStart + 1;
    if (c === '/' && text[i + 1] === '/') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (QUOTES.has(c)) {
      let value = '';
      let j = i + 1;
      for (;;) {
        if (j >= n || text[j] === '\n') syntaxError('unterminated string literal', { line, column }, text.slice(i, i + 20));
        const d = text[j]!;
        if (QUOTES.has(d)) break;
        if (d === '\\') {
          const e = text[j + 1];
          if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(j + 2, j + 6))) {
            value += String.fromCharCode(Number.parseInt(text.slice(j + 2, j + 6), 16));
            j += 6;
            continue;
          }
          const mapped = e === undefined ? undefined : ESCAPES[e];
          if (mapped === undefined) syntaxError('unknown escape sequence in string literal', { line, column: j - lineStart + 1 }, text.slice(j, j + 2));
          value += mapped;
          j += 2;
          continue;
        }
        value += d;
        j++;
      }
      tokens.push({ kind: 'string', text: value, line, column });
      i = j + 1;
      continue;
    }
    if (isDigit(c) || (c === '-' && i + 1 < n && isDigit(text[i + 1]!))) {
      const start = c === '-' ? i + 1 : i;
      let j = start;
      if (text[start] === '0' && (text[start + 1] === 'x' || text[start + 1] === 'X')) {
        j = start + 2;
        while (j < n && /[0-9a-fA-F]/.test(text[j]!)) j++;
        if (j === start + 2) syntaxError('hexadecimal literal without digits', { line, column }, text.slice(i, j + 1));
      } else {
        while (j < n && isDigit(text[j]!)) j++;
        if (text[j] === '.' && j + 1 < n && isDigit(text[j + 1]!)) {
          j++;
          while (j < n && isDigit(text[j]!)) j++;
        }
      }
      if (j < n && isIdentStart(text[j]!)) syntaxError('malformed number', { line, column }, text.slice(i, j + 1));
      tokens.push({ kind: 'number', text: text.slice(i, j), line, column });
      i = j;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(text[j]!)) j++;
      tokens.push({ kind: 'ident', text: text.slice(i, j), line, column });
      i = j;
      continue;
    }
    const p = PUNCTUATION.find((q) => text.startsWith(q, i));
    if (p === undefined) syntaxError(`unexpected character '${c}'`, { line, column }, text.slice(i, i + 10));
    tokens.push({ kind: 'punct', text: p, line, column });
    i += p.length;
  }
  tokens.push({ kind: 'eof', text: '', line, column: n - lineStart + 1 });
  return tokens;
}
