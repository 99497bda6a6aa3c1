/**
 * The release domain's GetJwks port over HTTPS: `{authority}/.well-known/openid-configuration` →
 * `jwks_uri` → JWKS (skr-maa-protocol.md §1.5). Trusts the system CAs plus the local CA. Caches per
 * authority; a forced refresh (token with an unknown kid) is honoured at most once per
 * `minRefreshSeconds`, so unknown-kid tokens cannot turn the vault into a request amplifier.
 */
import { readFileSync } from 'node:fs';
import { fail } from '../core/errors.js';
import type { GetJwks, JsonWebKeySet } from '../vault/release/index.js';
import { normalizeAuthority } from '../vault/release/index.js';
import { type HttpClient, createHttpClient } from './http.js';

const MAX_BYTES = 1024 * 1024;
const TIMEOUT_MS = 5000;

export interface JwksFetcherOptions {
  readonly caPath?: string;
  readonly now: () => Date;
  readonly ttlSeconds?: number;
  readonly minRefreshSeconds?: number;
  /** A JWKS URL the operator configured (`--oidc-jwks-uri`): fetched directly, without OpenID discovery. */
  readonly jwksUri?: string;
}

async function getJson(url: string, http: HttpClient): Promise<unknown> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw fail('upstream.unavailable', `invalid URL ${url}`);
  }
  if (u.protocol !== 'https:') throw fail('upstream.unavailable', `attestation authority metadata must be served over https: ${url}`);
  const res = await http.get(url, { accept: 'application/json' });
  if (res.status !== 200) throw fail('upstream.unavailable', `${url} answered ${res.status}`);
  try {
    return JSON.parse(res.body.toString('utf8'));
  } catch {
    throw fail('upstream.unavailable', `${url} did not return JSON`);
  }
}

export function createJwksFetcher(opts: JwksFetcherOptions): GetJwks {
  // The shared upstream client: system roots plus the local CA, no retries on the release path.
  const ca = opts.caPath ? readFileSync(opts.caPath, 'utf8') : undefined;
  const http = createHttpClient({ ca, timeoutMs: TIMEOUT_MS, maxBytes: MAX_BYTES, retries: 0 });
  const ttl = (opts.ttlSeconds ?? 3600) * 1000;
  const minRefresh = (opts.minRefreshSeconds ?? 10) * 1000;
  const cache = new Map<string, { at: number; jwks: Promise<JsonWebKeySet> }>();

  async function jwksUriOf(authority: string): Promise<string> {
    if (opts.jwksUri !== undefined) return opts.jwksUri;
    const meta = (await getJson(`${authority.replace(/\/+$/, '')}/.well-known/openid-configuration`, http)) as { jwks_uri?: unknown };
    if (typeof meta?.jwks_uri !== 'string') throw fail('upstream.unavailable', `the OpenID metadata of ${authority} has no jwks_uri`);
    return meta.jwks_uri;
  }

  async function load(authority: string): Promise<JsonWebKeySet> {
    const jwks = (await getJson(await jwksUriOf(authority), http)) as { keys?: unknown };
    if (!Array.isArray(jwks?.keys)) throw fail('upstream.unavailable', `the JWKS of ${authority} has no keys array`);
    return { keys: jwks.keys };
  }

  return async (issuer, { forceRefresh }) => {
    const id = normalizeAuthority(issuer);
    const now = opts.now().getTime();
    const hit = cache.get(id);
    const fresh = hit && now - hit.at < ttl && !(forceRefresh && now - hit.at >= minRefresh);
    if (fresh) return hit.jwks;
    const jwks = load(issuer);
    cache.set(id, { at: now, jwks });
    jwks.catch(() => {
      if (cache.get(id)?.jwks === jwks) cache.delete(id);
    });
    return jwks;
  };
}
