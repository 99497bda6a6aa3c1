import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { constantTimeEqual, toHex } from '../core/bytes.js';
import { fail, isConclaveError } from '../core/errors.js';
import { attestAndRelease } from '../sdk/attest-and-release.js';
import { attest } from '../sdk/attest.js';
import type { Credential } from '../sdk/credential.js';
import { type CaInput, endpointUrl } from '../sdk/http.js';
import { snpPartsOfBody } from '../sdk/sources/maa-body.js';
import type { EvidenceSource, Tee } from '../sdk/sources/types.js';
import type { GpuEvidenceCollector } from '../sdk/sources/nvidia-gpu.js';

/**
 * The SKR sidecar's HTTP API (microsoft/confidential-sidecar-containers `cmd/skr/README.md`,
 * `internal/httpginendpoints`), same routes, bodies and `{"error": "…"}` shapes, so containers written
 * for the Azure sidecar run unchanged. Plain HTTP on 127.0.0.1 only, as the sidecar: it serves the
 * containers of its own group.
 *
 * Unlike the sidecar it holds its ground against its callers (issue #23): it talks only to the
 * attestation service and vault it was configured with (or an explicit allow-list), over HTTPS; a request
 * naming another endpoint is refused before anything is sent. Browsers cannot drive it: only
 * `application/json` bodies, no `Origin`, a `Host` that is its own loopback name and port (no DNS
 * rebinding), no CORS; optionally a per-start token (`authToken`) every request must present.
 */
export interface AgentOptions {
  readonly source: EvidenceSource;
  /** Default 8080 (the sidecar's); 0 picks a free port. */
  readonly port?: number;
  /** Used when a request names no maa_endpoint / akv_endpoint; the endpoints a request may name. */
  readonly attestationUrl?: string;
  readonly vaultUrl?: string;
  /** More endpoints (https URLs or host[:port]) requests may name as maa_endpoint, akv_endpoint or kid URL. */
  readonly allowedEndpoints?: readonly string[];
  /** When set, every request must carry `Authorization: Bearer <authToken>` (the per-start token file). */
  readonly authToken?: string;
  /** The agent's own vault credential, used when a request carries no access_token. */
  readonly credential?: Credential;
  /** PEM CA(s) trusted for the attestation service, vault and token endpoint. */
  readonly ca?: CaInput;
  readonly trustStore?: string | readonly string[];
  readonly allowSelfSignedReleaseCert?: boolean;
  /**
   * Hand a released key out only once its release is proven in the vault's transparency log (the SDK's
   * attestAndRelease requireInclusion): its entry names the key and token, its inclusion proof verifies
   * against a head signed by `logKey` (PEM; fetched from the vault's GET /log/key when unset).
   */
  readonly requireInclusion?: boolean;
  readonly logKey?: string;
  /** TEE asked of multi-TEE sources (sim); the sidecar speaks SEV-SNP. */
  readonly tee?: Tee;
  /** The host's GPUs, attested with the CPU (composite attestation) on /attest/maa and /key/release. */
  readonly gpus?: GpuEvidenceCollector;
  readonly log?: (line: string, fields?: Record<string, unknown>) => void;
}

export interface RunningAgent {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;

class RequestError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new RequestError(400, 'invalid request format: body too large');
    chunks.push(c);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new RequestError(400, 'invalid request format: body is not a JSON object');
  }
}

function required(body: Record<string, unknown>, field: string, fallback?: string): string {
  const v = body[field];
  if (typeof v === 'string' && v !== '') return v;
  if (fallback) return fallback;
  throw new RequestError(400, `invalid request format: Key: '${field}' Error:Field validation for '${field}' failed on the 'required' tag`);
}

/** The most an access_token may hold: far above any JWT a token endpoint issues, far below a header limit. */
const MAX_ACCESS_TOKEN = 16 * 1024;

/**
 * A caller's access_token goes into `Authorization: Bearer …`: it must be an RFC 6750 b64token, checked
 * before the agent attests, so a release that cannot be asked spends no attestation and fails typed.
 */
function bearerToken(v: string): void {
  if (v.length > MAX_ACCESS_TOKEN || !/^[A-Za-z0-9\-._~+/]+=*$/.test(v)) {
    throw new RequestError(400, `invalid request format: access_token is not a bearer token (RFC 6750 b64token characters, at most ${MAX_ACCESS_TOKEN} of them)`);
  }
}

/** The sidecar decodes runtime_data with Go's StdEncoding: strict standard base64. */
function stdBase64(v: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) {
    throw new RequestError(400, 'decoding base64-encoded runtime data of request failed: illegal base64 data');
  }
  return new Uint8Array(Buffer.from(v, 'base64'));
}

/** Key Vault's key names and versions (as the vault checks them, vault/key.ts). */
const KEY_NAME = /^[0-9A-Za-z-]{1,127}$/;
const KEY_VERSION = /^[0-9A-Fa-f]{32}$/;

/**
 * The name and version a kid names must be Key Vault's, checked before the agent attests: they go into
 * the release URL's path, where `..` would climb out of a vault endpoint's path.
 */
function keyOf(kid: string, keyName: string, version: string | undefined): { keyName: string; version?: string } {
  if (!KEY_NAME.test(keyName) || (version !== undefined && !KEY_VERSION.test(version))) {
    throw fail('request.invalid', `kid ${JSON.stringify(kid.slice(0, 200))} does not name a key (name: 1 to 127 letters, digits and -; version: 32 hex digits)`, { field: 'kid' });
  }
  return { keyName, ...(version !== undefined ? { version } : {}) };
}

/**
 * `kid` as the sidecar takes it (`https://{akv}/keys/{kid}/release`): a name, `name/version`, or a full
 * key URL, whose origin then names the vault.
 */
export function parseKid(kid: string, akvEndpoint: string | undefined): { vaultUrl: string; keyName: string; version?: string } {
  if (/^https?:\/\//i.test(kid)) {
    let u: URL;
    try {
      u = new URL(kid);
    } catch {
      throw fail('request.invalid', `kid ${kid} is not a URL`, { field: 'kid' });
    }
    const m = /^\/keys\/([^/]+)(?:\/([^/]+))?\/?$/.exec(u.pathname);
    if (!m) throw fail('request.invalid', `kid ${kid} is not a key URL (…/keys/{name}[/{version}])`, { field: 'kid' });
    let keyName: string;
    let version: string | undefined;
    try {
      keyName = decodeURIComponent(m[1]!);
      version = m[2] ? decodeURIComponent(m[2]) : undefined;
    } catch {
      throw fail('request.invalid', `kid ${kid} holds a malformed % escape`, { field: 'kid' });
    }
    return { vaultUrl: akvEndpoint ? endpointUrl(akvEndpoint) : u.origin, ...keyOf(kid, keyName, version) };
  }
  if (!akvEndpoint) throw new RequestError(400, "invalid request format: Key: 'akv_endpoint' Error:Field validation for 'akv_endpoint' failed on the 'required' tag");
  const [name, version, ...rest] = kid.replace(/^\/+|\/+$/g, '').split('/');
  if (!name || rest.length > 0) throw fail('request.invalid', `kid ${kid} is not a key name`, { field: 'kid' });
  return { vaultUrl: endpointUrl(akvEndpoint), ...keyOf(kid, name, version || undefined) };
}

/**
 * An endpoint as the agent compares it: `https://host[:port][/path]` without a default port or trailing
 * slash. Anything but https is refused: the agent's tokens never travel in clear.
 */
export function normalEndpoint(endpoint: string): string {
  let u: URL;
  try {
    u = new URL(endpointUrl(endpoint));
  } catch {
    throw new RequestError(400, `invalid request format: "${endpoint}" is not a host name or URL`);
  }
  if (u.protocol !== 'https:') throw new RequestError(403, `endpoint ${u.origin} is not https: the agent sends tokens only over TLS`);
  if (u.username || u.password || u.search || u.hash) throw new RequestError(400, `invalid request format: endpoint ${endpoint} carries credentials, a query or a fragment`);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

function failureMessage(e: unknown): string {
  if (isConclaveError(e)) return `${e.message} (${e.code})`;
  return e instanceof Error ? e.message : String(e);
}

/** REPORTED_TCB as the sidecar's `endorsed_tcb`/THIM `tcbm`: the LE u64 printed as 16 hex digits. */
function reportedTcbHex(report: Uint8Array): string {
  return toHex(Uint8Array.from(report.subarray(0x180, 0x188)).reverse());
}

export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  const log = opts.log ?? (() => undefined);
  const tee = opts.tee ?? 'snp';
  // Configuration errors surface here, at start (normalEndpoint throws for http or malformed URLs).
  const extra = (opts.allowedEndpoints ?? []).map(normalEndpoint);
  const allowedAttestation = new Set([...(opts.attestationUrl ? [normalEndpoint(opts.attestationUrl)] : []), ...extra]);
  const allowedVault = new Set([...(opts.vaultUrl ? [normalEndpoint(opts.vaultUrl)] : []), ...extra]);

  /** The endpoint a request names (or the configured one), if the agent may talk to it; else 403 before anything is sent. */
  function allowed(named: string | undefined, configured: string | undefined, set: ReadonlySet<string>, what: string): string {
    const e = named ?? configured;
    if (e === undefined) throw new RequestError(400, `invalid request format: Key: '${what}' Error:Field validation for '${what}' failed on the 'required' tag`);
    const n = normalEndpoint(e);
    if (!set.has(n)) {
      log('request names an endpoint the agent may not use', { what, endpoint: n });
      throw new RequestError(403, `${what} ${n} is not an endpoint this agent may use${set.size > 0 ? ` (allowed: ${[...set].join(', ')})` : ' (start it with --attestation-url, --vault-url or --allow-endpoint)'}`);
    }
    return n;
  }
  const named = (body: Record<string, unknown>, field: string) => (typeof body[field] === 'string' && body[field] !== '' ? (body[field] as string) : undefined);

  async function snpEvidence(runtimeData: Uint8Array) {
    const ev = await opts.source.getEvidence(runtimeData, { tee, runtimeDataType: 'JSON' });
    if (ev.path !== '/attest/SevSnpVm') throw new RequestError(403, `source ${opts.source.name} produced ${ev.path} evidence, not an SEV-SNP report`);
    return snpPartsOfBody(ev.body);
  }

  const routes: Record<string, (body: Record<string, unknown>) => Promise<[number, unknown]>> = {
    'POST /attest/raw': async (body) => {
      const runtimeData = stdBase64(required(body, 'runtime_data'));
      const { report } = await snpEvidence(runtimeData);
      return [200, { report: toHex(report) }];
    },
    'POST /attest/combined': async (body) => {
      const runtimeData = stdBase64(required(body, 'runtime_data'));
      const { report, vcekCertChainPem, uvmReferenceInfo } = await snpEvidence(runtimeData);
      const combined = {
        endorsed_tcb: reportedTcbHex(report),
        endorsements: Buffer.from(vcekCertChainPem ?? '', 'utf8').toString('base64'),
        evidence: Buffer.from(report).toString('base64'),
        uvm_endorsements: uvmReferenceInfo ? Buffer.from(uvmReferenceInfo).toString('base64') : '',
      };
      return [200, { combined_report: JSON.stringify(combined) }];
    },
    'POST /attest/maa': async (body) => {
      const maa = allowed(named(body, 'maa_endpoint'), opts.attestationUrl, allowedAttestation, 'maa_endpoint');
      const runtimeData = stdBase64(required(body, 'runtime_data'));
      const token = await attest({
        attestationUrl: maa,
        source: opts.source,
        runtimeData,
        runtimeDataType: 'JSON',
        tee,
        ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
        ...(opts.gpus ? { gpus: opts.gpus } : {}),
      });
      return [200, { token }];
    },
    'POST /key/release': async (body) => {
      const kid = required(body, 'kid');
      const maa = allowed(named(body, 'maa_endpoint'), opts.attestationUrl, allowedAttestation, 'maa_endpoint');
      const target = parseKid(kid, named(body, 'akv_endpoint') ?? (/^https?:\/\//i.test(kid) ? undefined : opts.vaultUrl));
      const vaultUrl = allowed(target.vaultUrl, undefined, allowedVault, 'akv_endpoint');
      const accessToken = named(body, 'access_token');
      if (accessToken !== undefined) bearerToken(accessToken);
      const credential: Credential | undefined = accessToken ? () => accessToken : opts.credential;
      if (!credential) throw new RequestError(403, 'no access token: pass access_token, or start the agent with --credential-file (a client holding only the release role)');
      const released = await attestAndRelease({
        attestationUrl: maa,
        vaultUrl,
        keyName: target.keyName,
        ...(target.version ? { version: target.version } : {}),
        source: opts.source,
        credential,
        tee,
        ...(opts.gpus ? { gpus: opts.gpus } : {}),
        ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
        ...(opts.trustStore !== undefined ? { trustStore: opts.trustStore } : {}),
        ...(opts.allowSelfSignedReleaseCert !== undefined ? { allowSelfSignedReleaseCert: opts.allowSelfSignedReleaseCert } : {}),
        ...(opts.requireInclusion ? { requireInclusion: true, ...(opts.logKey !== undefined ? { logKey: opts.logKey } : {}) } : {}),
      });
      log('key released', { kid, kty: released.jwk.kty, ...(released.inclusion ? { leafIndex: released.inclusion.leafIndex } : {}) });
      return [200, { key: JSON.stringify(released.jwk) }];
    },
  };

  /**
   * What a browser page could send: refused before routing. A cross-site page cannot set a JSON content
   * type without a CORS preflight (which the agent never approves), always sends Origin on a cross-origin
   * POST, and a DNS-rebinding page reaches the agent under its own host name.
   */
  function refusal(req: IncomingMessage): [number, string] | undefined {
    const host = (req.headers.host ?? '').toLowerCase();
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) return [403, `forbidden: Host ${host || '(none)'} is not this agent (127.0.0.1:${port})`];
    if (req.headers.origin !== undefined) return [403, 'forbidden: requests with an Origin header (browser pages) are refused'];
    if (opts.authToken !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (!m || !constantTimeEqual(m[1]!, opts.authToken)) return [401, 'unauthorized: present the token of the agent token file as Authorization: Bearer <token>'];
    }
    if (req.method !== 'GET') {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/json') return [415, `unsupported media type ${type || '(none)'}: send Content-Type: application/json`];
    }
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '') || '/';
    const refused = refusal(req);
    if (refused) {
      req.resume();
      send(res, refused[0], { error: refused[1] });
      return;
    }
    if (req.method === 'GET' && path === '/status') {
      send(res, 200, { message: 'Status OK' });
      return;
    }
    const route = routes[`${req.method} ${path}`];
    if (!route) {
      send(res, 404, { error: `no route ${req.method} ${path}` });
      return;
    }
    try {
      const body = await readJson(req);
      const [status, out] = await route(body);
      send(res, status, out);
    } catch (e) {
      if (e instanceof RequestError) {
        send(res, e.status, { error: e.message });
        return;
      }
      if (isConclaveError(e, 'request.invalid')) {
        send(res, 400, { error: `invalid request format: ${e.message}` });
        return;
      }
      // The sidecar answers every failure after parsing with 403 Forbidden.
      log('request failed', { path, error: failureMessage(e) });
      send(res, 403, { error: failureMessage(e) });
    }
  }

  let port = 0;
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { error: failureMessage(e) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? 8080);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
