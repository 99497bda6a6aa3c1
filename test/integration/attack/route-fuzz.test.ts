/**
 * #14 item 6 acceptance: a seeded, bounded fuzz over every operation that /openapi.json lists. Each
 * operation gets the same number of requests built from a seeded generator: hostile path parameters,
 * declared and undeclared query parameters with wrong types, huge numbers and non-dates, bodies that are
 * deeply nested, not JSON, of the wrong type, with the declared fields filled with the wrong types, in
 * other encodings, with and without the administrator's token. Whatever arrives, the answer is a typed
 * 4xx (or a success): any 5xx fails, listed with what produced it so it reproduces (FUZZ_SEED,
 * FUZZ_PER_OPERATION widen the run; the defaults keep it to seconds).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type PcsStandin, startPcsStandin } from '../../helpers/pcs-standin.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x14f022);
const PER_OPERATION = Number(process.env.FUZZ_PER_OPERATION ?? 10);

/** mulberry32: small, seeded, good enough to pick fuzz inputs. */
function generator(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
type Gen = ReturnType<typeof generator>;

const deep = (n: number, open = '[', close = ']', inner = '1') => open.repeat(n) + inner + close.repeat(n);
const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

/** Strings that have broken parsers: empty, huge, numeric edge cases, non-dates, traversal, control and astral characters, encodings. */
const STRINGS: readonly string[] = [
  '',
  ' ',
  'a',
  '0',
  '-1',
  '1.5',
  '1e308',
  '-1e308',
  '99999999999999999999999999999999',
  '9007199254740993',
  'NaN',
  'Infinity',
  'null',
  'true',
  '[]',
  '{}',
  '{"a":1}',
  deep(2000),
  deepObject(2000),
  '../../../../etc/passwd',
  '..%2F..%2F',
  '%00',
  '\u0000',
  '\r\nX-Injected: 1',
  'ä€😀\ud800',
  'x'.repeat(4096),
  'f'.repeat(64),
  '00'.repeat(16),
  '0'.repeat(12),
  '2024-13-45T25:61:61Z',
  'not-a-date',
  '1970-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '11111111-2222-3333-4444-555555555555',
  'eyJhbGciOiJub25lIn0.eyJ9.',
  'eyJ4Ijp7fQ.e30.AA',
  'bm90IGpzb24.e30.AA',
  Buffer.from('99999999999999999999999').toString('base64'),
  Buffer.from('{"skip":1e400,"nextLink":"x"}').toString('base64url'),
  Buffer.from('-5').toString('base64url'),
  Buffer.from('1e300').toString('base64url'),
  Buffer.from('1.5').toString('base64url'),
  'AAAA',
  '====',
  'sgx',
  'tdx',
  'processor',
  'platform',
  'SgxEnclave',
  'TdxVm',
  'SevSnpVm',
  'Milan',
  'Genoa',
  'RSA',
  'EC',
  'ES256',
  'RSA-OAEP-256',
];

function fuzzValue(g: Gen, depth = 0): unknown {
  switch (g.int(depth > 3 ? 6 : 9)) {
    case 0:
      return g.pick(STRINGS);
    case 1:
      return g.pick([0, -1, 1, 2 ** 53 + 1, -(2 ** 63), 1e308, 0.5, Number.MAX_SAFE_INTEGER]);
    case 2:
      return g.pick([true, false]);
    case 3:
      return null;
    case 4:
      return g.pick(STRINGS).slice(0, 64);
    case 5:
      return g.int(100_000);
    case 6:
      return Array.from({ length: g.int(4) }, () => fuzzValue(g, depth + 1));
    case 7: {
      const o: Record<string, unknown> = {};
      // Own properties, `__proto__` included (as JSON.parse makes them), not prototype changes.
      for (let i = g.int(4); i > 0; i--) Object.defineProperty(o, g.pick(['a', 'data', 'value', 'kty', 'key', 'policy', 'type', '__proto__', 'constructor', 'x'.repeat(300)]), { value: fuzzValue(g, depth + 1), enumerable: true, configurable: true, writable: true });
      return o;
    }
    default:
      return { [g.pick(['a', 'b'])]: fuzzValue(g, depth + 1) };
  }
}

/** The property names a JSON schema declares, nested ones included (they are what handlers read). */
function declaredFields(schema: unknown, out = new Set<string>()): Set<string> {
  if (schema && typeof schema === 'object') {
    const s = schema as { properties?: Record<string, unknown>; items?: unknown; required?: string[] };
    for (const [k, v] of Object.entries(s.properties ?? {})) {
      out.add(k);
      declaredFields(v, out);
    }
    if (s.items) declaredFields(s.items, out);
    for (const r of s.required ?? []) out.add(r);
  }
  return out;
}

/** Field names handlers of undeclared bodies read (AKV, MAA, PCCS, admin bodies), so the wrong types reach them. */
const KNOWN_FIELDS = [
  'kty', 'key_size', 'crv', 'key_ops', 'attributes', 'tags', 'release_policy', 'target', 'nonce', 'enc', 'alg', 'value', 'digest', 'iv', 'aad', 'tag',
  'quote', 'report', 'runtimeData', 'initTimeData', 'draftPolicyForAttestation', 'evidence', 'data', 'dataType', 'policy', 'lifetimeActions', 'exportable',
  'properties', 'roleDefinitionId', 'principalId', 'scope', 'permissions', 'roleName', 'assignableScopes', 'authorities', 'token', 'sasTokenUrl', 'folderToUse',
  'qe_id', 'pce_id', 'cpu_svn', 'pce_svn', 'enc_ppid', 'platform_manifest', 'platformManifest', 'fmspc', 'collaterals', 'items', 'baseline', 'bundle',
  'clientId', 'clientSecret', 'code', 'displayName', 'name', 'from', 'limit', 'gpuEvidence', 'AttestationInfo', 'TpmInfo', 'request', 'payload',
];

interface Operation {
  readonly method: string;
  readonly path: string;
  readonly query: readonly string[];
  readonly fields: readonly string[];
}

function operationsOf(openapi: { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; requestBody?: { content?: Record<string, { schema?: unknown }> } }>> }): Operation[] {
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(openapi.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const query = (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
      const fields = [...declaredFields(op.requestBody?.content?.['application/json']?.schema)];
      ops.push({ method: method.toUpperCase(), path, query, fields });
    }
  }
  return ops;
}

interface FuzzRequest {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body?: string | Uint8Array;
  readonly what: string;
}

function fuzzRequest(g: Gen, op: Operation, adminToken: string): FuzzRequest {
  const path = op.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(g.pick(STRINGS).slice(0, g.pick([8, 64, 300, 5000])).replace(/[\ud800-\udfff]/g, '\ufffd')));
  const q = new URLSearchParams();
  const apiVersion = g.pick(['7.4', '7.5', '2022-08-01', '2020-10-01', '2023-04-01-preview', 'x', undefined]);
  if (apiVersion) q.set('api-version', apiVersion);
  for (const name of op.query) {
    if (g.next() >= 0.7) continue;
    const v = fuzzValue(g);
    q.set(name, (typeof v === 'string' ? v : (JSON.stringify(v) ?? 'null')).slice(0, 5000));
    // A repeated parameter reaches a handler as an array, not a string.
    if (g.next() < 0.2) q.append(name, g.pick(STRINGS).slice(0, 200));
  }
  for (const name of ['$skiptoken', 'maxresults', '$top', 'from', 'to', 'limit', 'start', 'end', 'update', 'fmspc', 'tcbEvaluationDataNumber']) {
    if (g.next() < 0.15) q.set(name, g.pick(STRINGS).slice(0, 2000));
  }
  // An empty first segment would make `//host/…`, a URL of another host: collapse the leading slashes.
  const url = `${path.replace(/^\/+/, '/')}${q.size ? `?${q}` : ''}`;
  const headers: Record<string, string> = {};
  const auth = g.int(4);
  if (auth < 2) headers.authorization = `Bearer ${adminToken}`;
  else if (auth === 2) headers.authorization = g.pick(['Bearer x', 'Basic Og==', 'Bearer eyJhbGciOiJub25lIn0.e30.', `Bearer ${'a'.repeat(9000)}`]);
  if (g.next() < 0.2) headers['admin-token'] = g.pick(STRINGS).slice(0, 100).replace(/[^\x21-\x7e]/g, 'x') || 'x';
  if (g.next() < 0.2) headers['user-token'] = 'x';
  if (op.method === 'GET' || op.method === 'DELETE') return { url, headers, what: 'no body' };
  const kind = g.int(10);
  const json = (v: unknown) => ({ url, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(v) ?? 'null' });
  switch (kind) {
    case 0:
      return { ...json(null), body: g.pick([deep(100_000), deepObject(50_000), deep(65), deepObject(65)]), what: 'deep JSON' };
    case 1:
      return { url, headers: { ...headers, 'content-type': 'application/json' }, body: g.pick(['{', '{"a":', 'nul', '"\\ud800"', '\u0000', '{"a":1}{']), what: 'not JSON' };
    case 2:
      return { url, headers: { ...headers, 'content-type': g.pick(['application/x-www-form-urlencoded', 'text/plain', 'application/octet-stream', 'application/jose', 'multipart/form-data; boundary=x', 'application/xml']) }, body: g.pick(STRINGS).slice(0, 3000), what: 'other encoding' };
    case 3:
      return { ...json(fuzzValue(g)), what: 'random JSON' };
    case 4:
      return { url, headers, what: 'no body' };
    default: {
      // The declared fields (or the fields handlers read), each with a value of a random type; nested
      // fields nested one level down, deep documents inside strings that handlers decode.
      const names = op.fields.length > 0 && g.next() < 0.7 ? op.fields : KNOWN_FIELDS;
      const body: Record<string, unknown> = {};
      for (const n of names) if (g.next() < 0.5) body[n] = g.next() < 0.1 ? Buffer.from(deepObject(g.pick([65, 3000]))).toString('base64url') : fuzzValue(g);
      if (g.next() < 0.3) body[g.pick(names)] = { data: Buffer.from(deep(g.pick([65, 5000]))).toString('base64url'), dataType: 'JSON' };
      return { ...json(body), what: 'declared fields with wrong types' };
    }
  }
}

describe('route fuzz over /openapi.json', () => {
  let server: TestServer;
  let upstream: PcsStandin;
  before(async () => {
    upstream = await startPcsStandin();
    server = await startTestServer({
      simulate: true,
      upstreamIntel: upstream.url,
      upstreamAmd: upstream.url,
      upstreamNvidiaRim: upstream.url,
      upstreamNvidiaOcsp: `${upstream.url}/ocsp`,
      upstreamTimeout: 2000,
      pccsAdminTokenHash: 'a'.repeat(128),
      pccsUserTokenHash: 'b'.repeat(128),
    });
  });
  after(async () => {
    await server?.stop();
    await upstream?.close();
  });

  test(`every operation, ${PER_OPERATION} seeded requests each (seed ${SEED}): no 5xx`, async (t) => {
    const openapi = (await server.send('GET', '/openapi.json')).json();
    const ops = operationsOf(openapi);
    assert.ok(ops.length > 100, `only ${ops.length} operations in /openapi.json`);
    const token = await server.adminToken();
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let sent = 0;
    for (const [i, op] of ops.entries()) {
      // One stream per operation, so adding a route does not change what the others get.
      const g = generator(SEED ^ Math.imul(i + 1, 0x9e3779b1) ^ hash(`${op.method} ${op.path}`));
      for (let n = 0; n < PER_OPERATION; n++) {
        const req = fuzzRequest(g, op, token);
        const r = await server.send(op.method, req.url, { headers: req.headers, ...(req.body !== undefined ? { body: req.body } : {}) });
        sent++;
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status >= 500) failures.push(`${op.method} ${req.url.slice(0, 200)} [${req.what}; ${req.headers['content-type'] ?? 'no type'}; ${String(req.body ?? '').slice(0, 120)}] → ${r.status} ${r.text.slice(0, 200)}`);
      }
    }
    t.diagnostic(`${ops.length} operations, ${sent} requests; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`);
    assert.deepEqual(failures, []);
  });
});

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
