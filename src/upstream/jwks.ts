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
  /** Extra PEM CA for this fetcher only (`--oidc-ca`: the OIDC issuer's private CA, never the release authorities'). */
  readonly extraCaPath?: string;
  /** Total deadline of one fetch, connect to last byte (ms); default 5000. */
  readonly timeoutMs?: number;
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
  const cas = [opts.caPath, opts.extraCaPath]
    .filter((p): p is string => p !== undefined)
    .map((p) => {
      try {
        return readFileSync(p, 'utf8');
      } catch (e) {
        throw fail('config.invalid', `cannot read the CA file ${p}`, { option: p === opts.extraCaPath ? 'oidc-ca' : 'ca' }, e);
      }
    });
  const http = createHttpClient({ ca: cas.length > 0 ? cas.join('\n') : undefined, timeoutMs: opts.timeoutMs ?? TIMEOUT_MS, maxBytes: MAX_BYTES, retries: 0 });
  const ttl = (opts.ttlSeconds ?? 3600) * 1000;
  const minRefresh = (opts.minRefreshSeconds ?? 10) * 1000;
  /** `jwks` answers now; `good` is the last set that loaded, from `goodAt`. */
  const cache = new Map<string, { at: number; jwks: Promise<JsonWebKeySet>; good: Promise<JsonWebKeySet> | undefined; goodAt: number }>();

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
    // A refresh that fails (issuer outage) keeps the last good key set: one token with an unknown kid
    // during an outage must not cost every valid token its keys. Only a set past its TTL is dropped.
    const previous = hit?.good;
    const stillValid = hit !== undefined && previous !== undefined && now - hit.goodAt < ttl;
    const loading = load(issuer);
    // While a refresh is in flight (a hanging issuer holds it until the deadline), other requests keep
    // the last good set: they never wait on, or fail with, a refresh one unknown-kid token caused.
    const entry = { at: now, jwks: stillValid ? previous : loading, good: previous, goodAt: hit?.goodAt ?? now };
    cache.set(id, entry);
    loading.then(
      () => {
        if (cache.get(id) === entry) cache.set(id, { at: entry.at, jwks: loading, good: loading, goodAt: now });
      },
      () => {
        if (cache.get(id) === entry && !stillValid) cache.delete(id);
      },
    );
    return stillValid ? loading.catch(() => previous) : loading;
  };
}
