import { fail } from '../../core/errors.js';
import { MAX_JSON_DEPTH, jsonTextTooDeep } from '../../core/json.js';
import type { ClaimValue } from './ast.js';
import { type Charge, searchJmesPath, serialiseJmesValue } from './jmespath.js';

/**
 * A value during evaluation: a single claim value, a set (from `JsonToClaimValue` of a JSON array or a
 * set-valued claim), or `null` for the empty claim value (`JsonToClaimValue` of JSON null), whose add or
 * issue is a no-op (claim-rule-functions §JsonToClaimValue).
 */
export type EvalValue = ClaimValue | readonly ClaimValue[] | null;

/** Functions of policy version 1.2 and their argument counts (claim-rule-functions). */
export const FUNCTION_ARITY: Readonly<Record<string, number>> = {
  JmesPath: 2,
  JsonToClaimValue: 1,
  IsSubsetOf: 2,
  AppendString: 2,
  NegateBool: 1,
  ContainsOnlyValue: 2,
};

function evaluationError(fn: string, message: string): never {
  throw fail('attestation.policy_evaluation', `${fn}: ${message}`, { function: fn });
}

function single(fn: string, v: EvalValue, what: string): ClaimValue {
  if (v === null || Array.isArray(v)) evaluationError(fn, `${what} must be a single value`);
  return v as ClaimValue;
}

function asSet(v: EvalValue): readonly ClaimValue[] {
  if (v === null) return [];
  return Array.isArray(v) ? (v as readonly ClaimValue[]) : [v as ClaimValue];
}

function parseJson(fn: string, text: string): unknown {
  if (jsonTextTooDeep(text)) evaluationError(fn, `argument nests deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    return JSON.parse(text);
  } catch {
    return evaluationError(fn, 'argument is not valid JSON');
  }
}

function primitive(fn: string, v: unknown): ClaimValue {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) evaluationError(fn, 'fractional numbers are not claim values');
    return v;
  }
  return evaluationError(fn, 'objects and nested arrays are not claim values');
}

/**
 * Runs a 1.2 function on already evaluated arguments. `charge` meters the work of a JmesPath query beyond its
 * arguments' size (see {@link Charge}); the evaluator charges it to its step budget.
 */
export function callFunction(name: string, args: readonly EvalValue[], charge?: Charge): EvalValue {
  switch (name) {
    case 'JmesPath': {
      const json = single(name, args[0]!, 'the JSON argument');
      const query = single(name, args[1]!, 'the query argument');
      if (typeof json !== 'string' || json === '') evaluationError(name, 'the first argument must be a non-empty JSON string');
      if (typeof query !== 'string' || query === '') evaluationError(name, 'the second argument must be a non-empty query string');
      const result = searchJmesPath(parseJson(name, json), query, charge);
      return serialiseJmesValue(result === undefined ? null : result, charge);
    }
    case 'JsonToClaimValue': {
      const json = single(name, args[0]!, 'the argument');
      if (typeof json !== 'string') evaluationError(name, 'the argument must be a JSON string');
      const v = parseJson(name, json);
      if (v === null) return null;
      if (Array.isArray(v)) {
        const set: ClaimValue[] = [];
        for (const e of v) if (e !== null) set.push(primitive(name, e));
        return set;
      }
      return primitive(name, v);
    }
    case 'IsSubsetOf': {
      const sub = asSet(args[0]!);
      const sup = asSet(args[1]!);
      return sub.every((x) => sup.some((y) => y === x));
    }
    case 'AppendString': {
      const a = single(name, args[0]!, 'the first argument');
      const b = single(name, args[1]!, 'the second argument');
      if (typeof a !== 'string' || typeof b !== 'string') evaluationError(name, 'both arguments must be strings');
      return a + b;
    }
    case 'NegateBool': {
      const a = single(name, args[0]!, 'the argument');
      if (typeof a !== 'boolean') evaluationError(name, 'the argument must be a Boolean');
      return !a;
    }
    case 'ContainsOnlyValue': {
      const set = asSet(args[0]!);
      const v = single(name, args[1]!, 'the second argument');
      return set.length > 0 && set.every((x) => x === v);
    }
    default:
      return evaluationError(name, 'unknown function');
  }
}
