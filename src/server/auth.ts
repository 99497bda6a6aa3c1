import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constantTimeEqual } from '../core/bytes.js';
import { fail } from '../core/errors.js';
import { decodeJws, jwksCandidates, type JwtUse, signJws, verifyJwt } from '../core/jwt.js';
import type { ClientStore } from '../storage/client-store.js';
import { type GetJwks, TARGET_TOKEN_ALGORITHMS } from '../vault/release/index.js';
import type { Principal } from '../vault/roles.js';
import type { ServiceKey } from '../hsm/service-keys.js';
import type { SessionPrincipal } from '../storage/console-store.js';

export type { Principal } from '../vault/roles.js';

export interface AdminCredential {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly tokenEndpoint: string;
}

const ACCESS_TOKEN_SECONDS = 3600;
/** Verified access tokens remembered at most (a few MB of token text); the map starts over when full. */
const VERIFIED_TOKENS_MAX = 4096;
export const TOKEN_PATH = '/oauth2/token';

function secretHash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Registers a new OAuth client; the secret is returned once and stored only as a hash. */
export async function createClient(clients: ClientStore, displayName: string, nowSeconds: number): Promise<{ clientId: string; clientSecret: string }> {
  const clientId = randomUUID();
  const clientSecret = randomBytes(32).toString('base64url');
  await clients.add({ clientId, secretSha256: secretHash(clientSecret), displayName, createdAt: nowSeconds });
  return { clientId, clientSecret };
}

/**
 * The bootstrap administrator: created once and written to `<data-dir>/admin.json` (mode 0600). A restart
 * keeps it; a data dir whose admin.json predates the store (a new database) re-registers the same client.
 */
export async function ensureAdminCredential(clients: ClientStore, dataDir: string, baseUrl: string, nowSeconds: number): Promise<{ path: string; credential: AdminCredential; created: boolean }> {
  const path = join(dataDir, 'admin.json');
  if (existsSync(path)) {
    const credential = JSON.parse(readFileSync(path, 'utf8')) as AdminCredential;
    const row = await clients.get(credential.clientId);
    if (!row) {
      await clients.add({ clientId: credential.clientId, secretSha256: secretHash(credential.clientSecret), displayName: 'admin', createdAt: nowSeconds }, { ifAbsent: true });
    }
    const expected = `${baseUrl}${TOKEN_PATH}`;
    if (credential.tokenEndpoint !== expected) {
      const updated = { ...credential, tokenEndpoint: expected };
      writeFileSync(path, `${JSON.stringify(updated, null, 2)}\n`, { mode: 0o600 });
      return { path, credential: updated, created: false };
    }
    return { path, credential, created: false };
  }
  const { clientId, clientSecret } = await createClient(clients, 'admin', nowSeconds);
  const credential: AdminCredential = { clientId, clientSecret, tokenEndpoint: `${baseUrl}${TOKEN_PATH}` };
  try {
    writeFileSync(path, `${JSON.stringify(credential, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    // A replica sharing the data dir wrote it first: drop our client and adopt theirs.
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    await clients.remove(clientId);
    return ensureAdminCredential(clients, dataDir, baseUrl, nowSeconds);
  }
  return { path, credential, created: true };
}

export interface Authenticator {
  /** OAuth2 client-credentials grant: returns the token response or throws auth.unauthenticated. */
  issueToken(form: Record<string, string | undefined>, nowSeconds: number): Promise<{ access_token: string; token_type: 'Bearer'; expires_in: number }>;
  /** The public JWK of the access-token signing key (published at the MSAL authority's jwks_uri). */
  accessTokenJwk(): Record<string, unknown>;
  /** Resolves a bearer token to a principal or throws auth.unauthenticated. */
  authenticate(authorization: string | undefined, nowSeconds: number): Promise<Principal>;
  /** Registers a new OAuth client; its secret is returned once. */
  registerClient(displayName: string, nowSeconds: number): Promise<{ clientId: string; clientSecret: string }>;
  /** What a console session stores of an authenticated principal (its privileges are looked up anew on each request). */
  sessionPrincipalOf(p: Principal): SessionPrincipal;
}

/**
 * The authorization scheme of a console session. Only the console's cookie hook (server/console/csrf.ts)
 * writes it, after its CSRF checks; the same scheme arriving from a client is refused there.
 */
export const SESSION_SCHEME = 'ConclaveSession';
const SESSION_AUTHORIZATION = /^ConclaveSession (\S+)$/;

/** Resolves a console session id to the principal it was opened for, or undefined when it has ended. */
export type SessionLookup = (sessionId: string) => Promise<{ readonly principal: SessionPrincipal } | undefined>;

/** An operator-configured external OpenID Connect issuer (`--oidc-issuer`, `--oidc-audience`, …). */
export interface ExternalIssuer {
  /** As configured, without a trailing slash; the prefix of the principal ids it yields. */
  readonly issuer: string;
  readonly audience: string;
  readonly adminSubjects: readonly string[];
  readonly getJwks: GetJwks;
}

/** The audience of the access tokens this server issues (`aud`), checked on every bearer token. */
export const ACCESS_TOKEN_AUDIENCE = 'conclave';

/** Algorithms an external issuer may sign bearer tokens with: the release target-token list. */
const EXTERNAL_ALGORITHMS = TARGET_TOKEN_ALGORITHMS;

/** OpenID Connect Core §3.1.3.7 compares issuers exactly; one trailing slash is forgiven. */
function sameIssuer(iss: string, configured: string): boolean {
  return iss.replace(/\/$/, '') === configured.replace(/\/$/, '');
}

/**
 * The bearer-token use of the one token verifier (core/jwt.ts). Our own access tokens: ES256 with the
 * access-token key, `typ` JWT, `aud` {@link ACCESS_TOKEN_AUDIENCE}. An external issuer's (RFC 9068 shape):
 * the release target-token algorithms, the key looked up by `kid` in the issuer's JWKS (one forced
 * refresh on an unknown kid; never the token's own `jku`/`x5c`/`jwk`), `typ` JWT, at+jwt or absent, `aud`
 * the configured audience (RFC 7519 §4.1.3: a string or an array). Both: `exp` required, 60 s skew,
 * `crit` refused.
 */
function ownUse(key: ServiceKey, issuer: string): JwtUse {
  return {
    what: 'the bearer token',
    errorCode: 'auth.unauthenticated',
    algorithms: ['ES256'],
    issuer: (iss) => (iss === issuer ? issuer : undefined),
    audience: ACCESS_TOKEN_AUDIENCE,
    types: ['JWT'],
    keys: ({ kid }) => (kid === undefined || kid === key.kid ? [key.publicKey] : []),
  };
}

function externalUse(ext: ExternalIssuer): JwtUse {
  return {
    what: `the bearer token from ${ext.issuer}`,
    errorCode: 'auth.unauthenticated',
    algorithms: EXTERNAL_ALGORITHMS,
    issuer: (iss) => (sameIssuer(iss, ext.issuer) ? ext.issuer : undefined),
    audience: ext.audience,
    types: [undefined, 'JWT', 'at+jwt'],
    keys: async ({ alg, kid, refresh }) => jwksCandidates((await ext.getJwks(ext.issuer, { forceRefresh: refresh })).keys, kid, alg, ext.issuer),
  };
}

/**
 * The principal of a verified external token: `<issuer>#<sub>`. `sub` is what OpenID Connect Core §2
 * makes unique per issuer; Azure AD's `oid` is not used, so one rule holds for every issuer (for Azure AD
 * app-only tokens `sub` equals `oid` anyway).
 */
function externalPrincipal(payload: Readonly<Record<string, unknown>>, ext: ExternalIssuer): Principal {
  const sub = payload.sub;
  if (typeof sub !== 'string' || sub.length === 0) throw fail('auth.unauthenticated', `the bearer token from ${ext.issuer} has no sub`, { reason: 'malformed' });
  const name = [payload.name, payload.preferred_username].find((v): v is string => typeof v === 'string' && v.length > 0) ?? sub;
  return { id: `${ext.issuer}#${sub}`, displayName: name, isAdmin: ext.adminSubjects.includes(sub) };
}

/** Compared against when the client id is unknown, so that path costs what a wrong secret costs. */
const UNKNOWN_CLIENT_HASH = secretHash(randomBytes(32).toString('base64url'));

export function createAuthenticator(
  clients: ClientStore,
  key: ServiceKey,
  issuer: () => string,
  adminClientId: () => string | undefined,
  external?: ExternalIssuer,
  sessions?: SessionLookup,
): Authenticator {
  const names = new Map<string, string>();
  /**
   * Access tokens this server issued and already verified, by their exact text: a client presents the
   * same token on every request for its hour, so its ES256 signature and claims are checked once. A hit
   * still has to be unexpired (`exp`, without the clock skew a full verification allows) and to come from
   * the issuer name the server has now; only verified tokens enter, and the map is bounded.
   */
  const verified = new Map<string, { sub: string; iss: string; exp: number }>();

  async function clientPrincipal(sub: string): Promise<Principal> {
    let name = names.get(sub);
    if (name === undefined) {
      const row = await clients.get(sub);
      if (!row) throw fail('auth.unauthenticated', 'the bearer token names an unknown client');
      name = row.displayName;
      names.set(sub, name);
    }
    return { id: sub, displayName: name, isAdmin: sub === adminClientId() };
  }

  /** A console session acts as its principal with the privileges that principal has now. */
  async function sessionPrincipal(sessionId: string): Promise<Principal> {
    const p = (await sessions?.(sessionId))?.principal;
    if (p?.kind === 'client') {
      const row = await clients.get(p.id);
      if (row) return { id: p.id, displayName: row.displayName, isAdmin: p.id === adminClientId() };
    } else if (p?.kind === 'external' && external && sameIssuer(p.issuer, external.issuer)) {
      return { id: `${external.issuer}#${p.sub}`, displayName: p.name, isAdmin: external.adminSubjects.includes(p.sub) };
    }
    throw fail('auth.unauthenticated', 'the console session has ended; sign in again', { reason: 'session_ended' });
  }

  return {
    accessTokenJwk() {
      return { ...(key.publicKey.export({ format: 'jwk' }) as Record<string, unknown>), kid: key.kid, use: 'sig', alg: 'ES256' };
    },
    async issueToken(form, now) {
      if (form.grant_type !== 'client_credentials') throw fail('request.invalid', 'grant_type must be client_credentials', { error: 'unsupported_grant_type' });
      const id = form.client_id ?? '';
      const secret = form.client_secret ?? '';
      const row = id ? await clients.get(id) : undefined;
      // One answer, and the same work, for an unknown client and a wrong secret, so the endpoint reveals
      // neither which ids exist nor (by timing) how much of a stored hash a guess matched.
      const matches = constantTimeEqual(row?.secretSha256 ?? UNKNOWN_CLIENT_HASH, secretHash(secret));
      if (!row || !matches) throw fail('auth.unauthenticated', 'invalid client credentials', { error: 'invalid_client' });
      names.set(id, row.displayName);
      const payload = { iss: issuer(), sub: id, appid: id, aud: ACCESS_TOKEN_AUDIENCE, scope: form.scope ?? '', iat: now, nbf: now, exp: now + ACCESS_TOKEN_SECONDS, jti: randomUUID() };
      return { access_token: signJws({ alg: 'ES256', typ: 'JWT', kid: key.kid }, payload, key.privateKey), token_type: 'Bearer', expires_in: ACCESS_TOKEN_SECONDS };
    },
    async authenticate(authorization, now) {
      const session = SESSION_AUTHORIZATION.exec(authorization ?? '');
      if (session) return sessionPrincipal(session[1]!);
      const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
      if (!m) throw fail('auth.unauthenticated', 'Request is missing a Bearer or PoP token.');
      const token = m[1]!;
      const known = verified.get(token);
      if (known !== undefined) {
        if (now < known.exp && known.iss === issuer()) return clientPrincipal(known.sub);
        verified.delete(token);
      }
      let iss: unknown;
      try {
        iss = decodeJws(token).payload.iss;
      } catch {
        throw fail('auth.unauthenticated', 'the bearer token is malformed', { reason: 'malformed' });
      }
      const at = new Date(now * 1000);
      if (iss !== issuer() && external && typeof iss === 'string' && sameIssuer(iss, external.issuer)) {
        return externalPrincipal((await verifyJwt(token, externalUse(external), at)).claims, external);
      }
      const ownIssuer = issuer();
      const p = (await verifyJwt(token, ownUse(key, ownIssuer), at)).claims;
      const sub = String(p.sub);
      const principal = await clientPrincipal(sub);
      if (typeof p.exp === 'number') {
        if (verified.size >= VERIFIED_TOKENS_MAX) verified.clear();
        verified.set(token, { sub, iss: ownIssuer, exp: p.exp });
      }
      return principal;
    },
    registerClient: (displayName, now) => createClient(clients, displayName, now),
    sessionPrincipalOf(p) {
      const prefix = external ? `${external.issuer}#` : undefined;
      if (prefix && p.id.startsWith(prefix)) return { kind: 'external', issuer: external!.issuer, sub: p.id.slice(prefix.length), name: p.displayName };
      return { kind: 'client', id: p.id };
    },
  };
}
