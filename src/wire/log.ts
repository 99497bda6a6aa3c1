/** The transparency log on the wire (RFC 9162 shapes, hex hashes) and the vault's audit reads. */
import { OBJECT, conclaveErrors } from './common.js';
import { S, route } from './schema.js';

const INDEX = S.string({ pattern: '^[0-9]{1,16}$', description: 'a non-negative integer (a safe integer: the handler refuses larger ones)' });
const HASH = S.string({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256, hex' });
export const TREE_HEAD = S.object({ treeSize: S.integer(), timestamp: S.integer(), rootHash: HASH, keyId: S.string(), signature: S.string({ description: 'base64' }) });

export const LOG = {
  sth: route({ body: null, responses: { 200: { description: 'the latest signed tree head', schema: TREE_HEAD }, ...conclaveErrors } }),
  key: route({ body: null, responses: { 200: { description: 'the key that signs tree heads', schema: S.object({ keyId: S.string(), alg: S.enum(['ES256', 'RS256']), publicKey: S.string({ description: 'SubjectPublicKeyInfo, PEM' }) }) } } }),
  inclusion: route({
    invalid: { query: 'log.range_invalid' },
    query: S.object({ leaf: S.optional(HASH), size: S.optional(INDEX) }),
    body: null,
    responses: { 200: { description: 'the audit path', schema: S.object({ leafIndex: S.integer(), treeSize: S.integer(), leafHash: HASH, inclusionPath: S.array(HASH), sth: S.optional(TREE_HEAD) }) }, ...conclaveErrors },
  }),
  consistency: route({
    invalid: { query: 'log.range_invalid' },
    query: S.object({ from: INDEX, to: S.optional(INDEX) }),
    body: null,
    responses: { 200: { description: 'the consistency path', schema: S.object({ from: S.integer(), to: S.integer(), consistencyPath: S.array(HASH) }) }, ...conclaveErrors },
  }),
  entries: route({
    invalid: { query: 'log.range_invalid' },
    query: S.object({ start: INDEX, end: S.optional(INDEX) }),
    body: null,
    responses: { 200: { description: 'the entries (JSON text each)', schema: S.object({ entries: S.array(S.object({ index: S.integer(), leafHash: HASH, entry: S.string() })) }) }, ...conclaveErrors },
  }),
  audit: route({
    invalid: { query: 'log.range_invalid' },
    query: S.object({ from: S.optional(INDEX), limit: S.optional(INDEX) }),
    body: null,
    responses: { 200: { description: 'audit records', schema: S.object({ value: S.array(S.object({ index: S.anyOf([S.integer(), S.null()]), leafHash: S.anyOf([HASH, S.null()]), record: OBJECT })) }) }, ...conclaveErrors },
  }),
  verify: route({ body: null, responses: { 200: { description: 'whether the log recomputes to its signed heads', schema: S.object({ ok: S.boolean() }) }, ...conclaveErrors } }),
};
