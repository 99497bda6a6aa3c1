/**
 * The web console's sign-in at the external OpenID Connect issuer: the authorization code flow (RFC 6749
 * §4.1) with PKCE S256 (RFC 7636) for a public client registered there. Discovery (OpenID Connect
 * Discovery 1.0 §4) names the authorization and token endpoints; the access token the token endpoint
 * returns is then verified by the server's one bearer-token verifier, like any token of that issuer.
 */
import { fail } from '../core/errors.js';
import { createHttpClient, type HttpClient } from './http.js';

export interface OidcSignInOptions {
  /** The configured issuer (`--oidc-issuer`), https. */
  readonly issuer: string;
  readonly clientId: string;
  /** Space-separated scopes. */
  readonly scope: string;
  /** PEM of CAs trusted for the issuer's HTTPS besides the system roots. */
  readonly ca?: string | undefined;
  readonly http?: HttpClient;
  readonly nowMs?: () => number;
}

interface Endpoints {
  readonly authorization: string;
  readonly token: string;
}

const DISCOVERY_TTL_MS = 3600_000;
const MAX_TOKEN_CHARS = 16_384;

function httpsUrl(v: unknown, what: string, issuer: string): string {
  if (typeof v === 'string') {
    try {
      if (new URL(v).protocol === 'https:') return v;
    } catch {
      // fall through
    }
  }
  throw fail('upstream.unavailable', `the OpenID metadata of ${issuer} has no https ${what}`);
}

export function createOidcSignIn(opts: OidcSignInOptions) {
  const http = opts.http ?? createHttpClient({ ca: opts.ca, timeoutMs: 10_000, retries: 1, maxBytes: 1 << 20 });
  const nowMs = opts.nowMs ?? (() => Date.now());
  const issuer = opts.issuer.replace(/\/+$/, '');
  let cached: { at: number; endpoints: Promise<Endpoints> } | undefined;

  async function discover(): Promise<Endpoints> {
    const r = await http.get(`${issuer}/.well-known/openid-configuration`, { accept: 'application/json' });
    if (r.status !== 200) throw fail('upstream.unavailable', `the OpenID metadata of ${issuer} answered HTTP ${r.status}`);
    let meta: Record<string, unknown>;
    try {
      meta = JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw fail('upstream.unavailable', `the OpenID metadata of ${issuer} is not JSON`);
    }
    return { authorization: httpsUrl(meta.authorization_endpoint, 'authorization_endpoint', issuer), token: httpsUrl(meta.token_endpoint, 'token_endpoint', issuer) };
  }

  function endpoints(): Promise<Endpoints> {
    if (!cached || nowMs() - cached.at > DISCOVERY_TTL_MS) {
      const p = discover();
      cached = { at: nowMs(), endpoints: p };
      p.catch(() => {
        cached = undefined;
      });
    }
    return cached.endpoints;
  }

  return {
    issuer,

    /** Where to send the browser: the authorization request of RFC 6749 §4.1.1 with the PKCE challenge. */
    async authorizationUrl(p: { state: string; codeChallenge: string; redirectUri: string }): Promise<string> {
      const u = new URL((await endpoints()).authorization);
      for (const [k, v] of Object.entries({ response_type: 'code', client_id: opts.clientId, redirect_uri: p.redirectUri, scope: opts.scope, state: p.state, code_challenge: p.codeChallenge, code_challenge_method: 'S256' })) {
        u.searchParams.set(k, v);
      }
      return u.toString();
    },

    /** Redeems the code (RFC 6749 §4.1.3 with the PKCE verifier) for the access token. */
    async redeem(p: { code: string; codeVerifier: string; redirectUri: string }): Promise<string> {
      const body = new URLSearchParams({ grant_type: 'authorization_code', code: p.code, redirect_uri: p.redirectUri, client_id: opts.clientId, code_verifier: p.codeVerifier }).toString();
      const r = await http.request('POST', (await endpoints()).token, { headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body });
      let answer: Record<string, unknown> = {};
      try {
        answer = JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
      } catch {
        // judged by status below
      }
      if (r.status === 400 || r.status === 401) {
        throw fail('auth.unauthenticated', `${issuer} refused the authorization code${typeof answer.error === 'string' ? ` (${answer.error.slice(0, 64)})` : ''}`, { reason: 'oidc_code' });
      }
      if (r.status !== 200) throw fail('upstream.unavailable', `the token endpoint of ${issuer} answered HTTP ${r.status}`);
      const token = answer.access_token;
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_CHARS || String(answer.token_type).toLowerCase() !== 'bearer') {
        throw fail('upstream.unavailable', `the token endpoint of ${issuer} returned no bearer access token`);
      }
      return token;
    },

    close: () => http.close(),
  };
}

export type OidcSignIn = ReturnType<typeof createOidcSignIn>;
