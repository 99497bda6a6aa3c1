/**
 * An OpenID Connect provider stand-in for the console's sign-in tests: discovery, JWKS, an authorization
 * endpoint that signs in a chosen subject at once (no login page) and answers with a code, and a token
 * endpoint that redeems a code once, checking the client, the redirect URI and the PKCE verifier (S256).
 * HTTPS on 127.0.0.1 with the TLS material of a server data dir, so that server (and a browser trusting
 * its key) trust it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { signJws } from '../../src/core/jwt.js';
import { loadOrCreateTls } from '../../src/server/tls.js';
import { generateRsaKeyPair } from '../../src/core/keygen.js';

export interface OidcProvider {
  readonly url: string;
  /** An access token of this provider for `sub`. */
  token(sub: string, claims?: Record<string, unknown>): string;
  /** Who the authorization endpoint signs in next. */
  signInAs(sub: string): void;
  /** Every request as `METHOD path` (no query). */
  readonly requests: string[];
  close(): Promise<void>;
}

export async function startOidcProvider(dataDir: string, opts: { audience: string; clientId: string; now?: () => Date }): Promise<OidcProvider> {
  const tls = await loadOrCreateTls(dataDir, '127.0.0.1');
  const key = generateRsaKeyPair(2048);
  const now = opts.now ?? (() => new Date());
  const codes = new Map<string, { challenge: string; redirectUri: string; sub: string }>();
  const requests: string[] = [];
  let subject = 'ops-admin';
  let url = '';
  const token = (sub: string, claims: Record<string, unknown> = {}) => {
    const t = Math.floor(now().getTime() / 1000);
    return signJws({ alg: 'RS256', typ: 'at+jwt', kid: 'k1' }, { iss: url, aud: opts.audience, sub, name: `User ${sub}`, iat: t, nbf: t, exp: t + 1800, ...claims }, key.privateKey);
  };
  const srv: Server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const u = new URL(req.url ?? '/', url);
    requests.push(`${req.method} ${u.pathname}`);
    const json = (status: number, body: unknown) => {
      res.statusCode = status;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    };
    if (u.pathname === '/.well-known/openid-configuration') {
      return json(200, { issuer: url, jwks_uri: `${url}/keys`, authorization_endpoint: `${url}/authorize`, token_endpoint: `${url}/token`, code_challenge_methods_supported: ['S256'] });
    }
    if (u.pathname === '/keys') return json(200, { keys: [{ ...key.publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'RS256' }] });
    if (u.pathname === '/authorize') {
      const q = u.searchParams;
      const redirectUri = q.get('redirect_uri') ?? '';
      if (q.get('response_type') !== 'code' || q.get('client_id') !== opts.clientId || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge') || !redirectUri) return json(400, { error: 'invalid_request' });
      const code = randomBytes(16).toString('base64url');
      codes.set(code, { challenge: q.get('code_challenge')!, redirectUri, sub: subject });
      const back = new URL(redirectUri);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state') ?? '');
      res.statusCode = 302;
      res.setHeader('location', back.toString());
      return res.end();
    }
    if (u.pathname === '/token' && req.method === 'POST') {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString('utf8');
      });
      req.on('end', () => {
        const f = new URLSearchParams(body);
        const pending = codes.get(f.get('code') ?? '');
        codes.delete(f.get('code') ?? '');
        const verifier = f.get('code_verifier') ?? '';
        const ok =
          pending &&
          f.get('grant_type') === 'authorization_code' &&
          f.get('client_id') === opts.clientId &&
          f.get('redirect_uri') === pending.redirectUri &&
          createHash('sha256').update(verifier).digest('base64url') === pending.challenge;
        if (!ok) return json(400, { error: 'invalid_grant' });
        return json(200, { access_token: token(pending.sub), token_type: 'Bearer', expires_in: 1800 });
      });
      return;
    }
    json(404, {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return {
    url,
    token,
    signInAs: (sub) => {
      subject = sub;
    },
    requests,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}
