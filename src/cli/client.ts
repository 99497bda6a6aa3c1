/**
 * The CLI's HTTPS client for the Conclave server: where to connect and with which credential, from
 * flags, then CONCLAVE_URL / CONCLAVE_CLIENT_ID / CONCLAVE_CLIENT_SECRET, then `<data-dir>/admin.json`
 * (only for the server that wrote it: see {@link adminCredentialFor}).
 * The server's local CA (`<data-dir>/tls/ca.pem`, or `--ca`/CONCLAVE_CA) is trusted besides system CAs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { rootCertificates } from 'node:tls';
import type { Command } from 'commander';
import { exchange } from '../sdk/http.js';
import { CliError } from './output.js';

export interface ClientFlags {
  url?: string;
  clientId?: string;
  clientSecret?: string;
  dataDir?: string;
  ca?: string;
}

export interface ServerClient {
  readonly url: string;
  /** The CA file pinned for the server (--ca, CONCLAVE_CA or <data-dir>/tls/ca.pem), if any. */
  readonly caFile: string | undefined;
  /** Sends a JSON request with a bearer token; throws CliError on a non-2xx answer. */
  call<T = any>(method: string, path: string, body?: unknown): Promise<T>;
}

/** Adds --url, --client-id, --client-secret, --data-dir, --ca to a command. */
export function withClientOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'server base URL (env CONCLAVE_URL; default from <data-dir>/admin.json)')
    .option('--client-id <id>', 'OAuth client id (env CONCLAVE_CLIENT_ID)')
    .option('--client-secret <secret>', 'OAuth client secret (env CONCLAVE_CLIENT_SECRET)')
    .option('--data-dir <dir>', 'data directory holding admin.json (used only for its own server) and tls/ca.pem (default ./data)')
    .option('--ca <file>', 'CA certificate (PEM) to trust (env CONCLAVE_CA)');
}

interface HttpAnswer {
  status: number;
  text: string;
}

/** One exchange with the server through the shared client (src/sdk/http.ts); a failure is a usage error (exit 2). */
async function send(url: URL, method: string, headers: Record<string, string>, body: string | undefined, ca: string[]): Promise<HttpAnswer> {
  const r = await exchange(url, {
    method,
    headers,
    ...(body !== undefined ? { body } : {}),
    ca,
    timeoutMs: 30_000,
    fault: (reason, u, d) => {
      const why = reason === 'too_large' ? `the answer exceeds ${d.maxBytes} bytes` : reason === 'network' ? (d.cause?.message ?? 'failed') : `no complete answer within ${d.limitMs} ms`;
      return new CliError(`cannot reach ${u.origin}: ${why}`, 'is `conclave serve` running, and is --url right?', 2);
    },
  });
  return { status: r.status, text: r.body.toString('utf8') };
}

function errorText(a: HttpAnswer): string {
  try {
    const j = JSON.parse(a.text) as { error?: { code?: string; message?: string; innererror?: { code?: string } } | string; error_description?: string };
    if (typeof j.error === 'object') return `${a.status} ${j.error.innererror?.code ?? j.error.code ?? ''}: ${j.error.message ?? ''}`;
    return `${a.status} ${j.error ?? ''}: ${j.error_description ?? ''}`;
  } catch {
    return `${a.status} ${a.text.slice(0, 200)}`;
  }
}

/** The names the CLI treats as this machine (the SDK's HTTP client allows plain http to the same). */
function isLoopback(url: URL): boolean {
  return url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
}

/** What `conclave serve` writes to `<data-dir>/admin.json` (src/server/auth.ts ensureAdminCredential). */
interface AdminFile {
  readonly clientId?: string;
  readonly clientSecret?: string;
  readonly tokenEndpoint?: string;
}

/**
 * The administrator credential of `<data-dir>/admin.json`, for `url` only when it is the server that
 * file belongs to: the origin of its `tokenEndpoint`, or a loopback address (replicas of one data dir
 * on one machine each rewrite the file with their own address). Any other server would receive the
 * local administrator's secret at its token endpoint: refused (exit 2) before anything is sent.
 */
export function adminCredentialFor(adminPath: string, admin: AdminFile, url: string): AdminFile {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new CliError(`${url} is not a URL`, 'e.g. --url https://127.0.0.1:8443', 2);
  }
  let origin: string | undefined;
  try {
    origin = admin.tokenEndpoint ? new URL(admin.tokenEndpoint).origin : undefined;
  } catch {
    origin = undefined;
  }
  if (target.origin === origin || isLoopback(target)) return admin;
  throw new CliError(
    `${adminPath} holds the administrator credential of ${origin ?? 'another server'}, not of ${target.origin}: refusing to send its secret there`,
    `pass --client-id/--client-secret (or set CONCLAVE_CLIENT_ID/CONCLAVE_CLIENT_SECRET) with a credential of ${target.origin}, or point --data-dir at that server's data directory`,
    2,
  );
}

/**
 * `<data-dir>/admin.json`, strictly: a JSON object whose clientId, clientSecret and tokenEndpoint are
 * strings where present, the tokenEndpoint an absolute http(s) URL. Anything else is a CliError naming
 * the file (exit 2), not a bare SyntaxError or TypeError.
 */
function readAdminFile(adminPath: string): AdminFile {
  const bad = (why: string): never => {
    throw new CliError(`${adminPath} is not a valid admin credential file: ${why}`, 'restore it from `conclave serve` (it rewrites the file on start), or pass --url and --client-id/--client-secret', 2);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(adminPath, 'utf8'));
  } catch {
    // Not the parser's message: it may quote the text around the fault, the client secret among it.
    return bad('it is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return bad('it is not a JSON object');
  const o = parsed as Record<string, unknown>;
  for (const field of ['clientId', 'clientSecret', 'tokenEndpoint'] as const) {
    if (o[field] !== undefined && typeof o[field] !== 'string') bad(`${field} is not a string`);
  }
  if (typeof o.tokenEndpoint === 'string') {
    let endpoint: URL | undefined;
    try {
      endpoint = new URL(o.tokenEndpoint);
    } catch {
      endpoint = undefined;
    }
    if (endpoint === undefined || (endpoint.protocol !== 'https:' && endpoint.protocol !== 'http:')) bad(`tokenEndpoint ${JSON.stringify(o.tokenEndpoint.slice(0, 200))} is not an absolute http(s) URL`);
  }
  return o as AdminFile;
}

export function createServerClient(flags: ClientFlags, environment: Record<string, string | undefined> = process.env): ServerClient {
  // An empty variable counts as unset.
  const env = Object.fromEntries(Object.entries(environment).filter(([, v]) => v !== undefined && v !== ''));
  const dataDir = resolve(flags.dataDir ?? env.CONCLAVE_DATA_DIR ?? './data');
  const adminPath = join(dataDir, 'admin.json');
  const admin = existsSync(adminPath) ? readAdminFile(adminPath) : {};
  const url = (flags.url ?? env.CONCLAVE_URL ?? (admin.tokenEndpoint ? new URL(admin.tokenEndpoint).origin : undefined))?.replace(/\/+$/, '');
  if (!url) throw new CliError('no server URL', 'pass --url, set CONCLAVE_URL, or point --data-dir at the server data directory', 2);
  let clientId = flags.clientId ?? env.CONCLAVE_CLIENT_ID;
  let clientSecret = flags.clientSecret ?? env.CONCLAVE_CLIENT_SECRET;
  if ((!clientId || !clientSecret) && (admin.clientId !== undefined || admin.clientSecret !== undefined)) {
    const own = adminCredentialFor(adminPath, admin, url);
    clientId ??= own.clientId;
    clientSecret ??= own.clientSecret;
  }
  if (!clientId || !clientSecret) throw new CliError('no client credential', 'pass --client-id/--client-secret, set CONCLAVE_CLIENT_ID/CONCLAVE_CLIENT_SECRET, or use --data-dir with admin.json', 2);
  const caFile = flags.ca ?? env.CONCLAVE_CA ?? (existsSync(join(dataDir, 'tls', 'ca.pem')) ? join(dataDir, 'tls', 'ca.pem') : undefined);
  const ca = [...rootCertificates, ...(caFile ? [readFileSync(caFile, 'utf8')] : [])];
  let token: string | undefined;

  async function bearer(): Promise<string> {
    if (token) return token;
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId!, client_secret: clientSecret! }).toString();
    const a = await send(new URL('/oauth2/token', url), 'POST', { 'content-type': 'application/x-www-form-urlencoded' }, form, ca);
    if (a.status !== 200) throw new CliError(`authentication failed: ${errorText(a)}`, 'check the client id and secret', 1);
    token = (JSON.parse(a.text) as { access_token: string }).access_token;
    return token;
  }

  return {
    url,
    caFile,
    async call(method, path, body) {
      // A path from a server's answer (a nextLink) must not carry the bearer token elsewhere: `//host/…` resolves to another origin.
      const target = new URL(path, url);
      if (target.origin !== new URL(url).origin) throw new CliError(`refusing to send the credential for ${new URL(url).origin} to ${target.origin}`, 'the server answered with a link outside itself', 1);
      const headers: Record<string, string> = { authorization: `Bearer ${await bearer()}`, accept: 'application/json' };
      const text = body === undefined ? undefined : JSON.stringify(body);
      if (text !== undefined) headers['content-type'] = 'application/json';
      const a = await send(target, method, headers, text, ca);
      if (a.status < 200 || a.status >= 300) throw new CliError(errorText(a), undefined, 1);
      return (a.text ? JSON.parse(a.text) : undefined) as any;
    },
  };
}
