/**
 * The release domain's GetJwks port over HTTPS: `{authority}/.well-known/openid-configuration` →
 * `jwks_uri` → JWKS (skr-maa-protocol.md §1.5). Trusts the system CAs plus the local CA. Caches per
 * authority; a forced refresh (token with an unknown kid) is honoured at most once per
 * `minRefreshSeconds`, so unknown-kid tokens cannot turn the vault into a request amplifier.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { rootCertificates } from 'node:tls';
import { fail } from '../../core/errors.js';
import type { GetJwks, JsonWebKeySet } from '../../vault/release/index.js';
import { normalizeAuthority } from '../../vault/release/index.js';

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

function getJson(url: string, ca: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(fail('upstream.unavailable', `invalid URL ${url}`));
      return;
    }
    if (u.protocol !== 'https:') {
      reject(fail('upstream.unavailable', `attestation authority metadata must be served over https: ${url}`));
      return;
    }
    const req = request(u, { method: 'GET', ca, headers: { accept: 'application/json' }, timeout: TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BYTES) req.destroy(new Error('response too large'));
        else chunks.push(c);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(fail('upstream.unavailable', `${url} answered ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reject(fail('upstream.unavailable', `${url} did not return JSON`));
        }
      });
      res.on('error', (e) => reject(fail('upstream.unavailable', `cannot read ${url}`, undefined, e)));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => reject(fail('upstream.unavailable', `cannot reach ${url}: ${(e as Error).message}`, undefined, e)));
    req.end();
  });
}

export function createJwksFetcher(opts: JwksFetcherOptions): GetJwks {
  const ca = [...rootCertificates, ...(opts.caPath ? [readFileSync(opts.caPath, 'utf8')] : [])];
  const ttl = (opts.ttlSeconds ?? 3600) * 1000;
  const minRefresh = (opts.minRefreshSeconds ?? 10) * 1000;
  const cache = new Map<string, { at: number; jwks: Promise<JsonWebKeySet> }>();

  async function jwksUriOf(authority: string): Promise<string> {
    if (opts.jwksUri !== undefined) return opts.jwksUri;
    const meta = (await getJson(`${authority.replace(/\/+$/, '')}/.well-known/openid-configuration`, ca)) as { jwks_uri?: unknown };
    if (typeof meta?.jwks_uri !== 'string') throw fail('upstream.unavailable', `the OpenID metadata of ${authority} has no jwks_uri`);
    return meta.jwks_uri;
  }

  async function load(authority: string): Promise<JsonWebKeySet> {
    const jwks = (await getJson(await jwksUriOf(authority), ca)) as { keys?: unknown };
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
