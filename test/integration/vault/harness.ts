/**
 * Test harness for the vault: the real server, an OAuth token source for the Azure SDK, and a local
 * HTTPS OpenID stand-in for an attestation authority (serves /.well-known/openid-configuration and
 * /certs, signs MAA-shaped tokens).
 */
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { KeyClient, type KeyClientOptions } from '@azure/keyvault-keys';
import { createFakeAuthority, type FakeAuthority } from '../../../src/vault/release/testing.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { generateRsaKeyPair } from '../../../src/core/keygen.js';

export async function startVault(opts: { now?: () => Date; flags?: Record<string, unknown>; dataDir?: string } = {}): Promise<TestServer> {
  return startTestServer({ services: 'vault', ...opts.flags }, { ...(opts.now ? { now: opts.now } : {}), ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
}

/** A clock the test moves: starts at the real now. */
export function testClock(start = Date.now()): { now: () => Date; advance(seconds: number): void; set(ms: number): void } {
  let t = start;
  return {
    now: () => new Date(t),
    advance(seconds) {
      t += seconds * 1000;
    },
    set(ms) {
      t = ms;
    },
  };
}

/** A fresh administrator token (tests that move the clock outlive a cached one). */
export async function freshAdminToken(server: TestServer): Promise<string> {
  const r = await server.send('POST', '/oauth2/token', {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: server.admin.clientId, client_secret: server.admin.clientSecret }).toString(),
  });
  if (r.status !== 200) throw new Error(`admin token: ${r.status} ${r.text}`);
  return r.json().access_token as string;
}

/** Raw AKV call as the administrator, with the given api-version. */
export async function akvCall(server: TestServer, method: string, path: string, body?: unknown, apiVersion = '7.4'): Promise<{ status: number; json: any }> {
  const r = await server.send(method, `${path}${path.includes('?') ? '&' : '?'}api-version=${apiVersion}`, {
    headers: { authorization: `Bearer ${await freshAdminToken(server)}` },
    ...(body !== undefined ? { body: body as object } : {}),
  });
  return { status: r.status, json: r.text ? JSON.parse(r.text) : undefined };
}

/** Client credentials → bearer token from our /oauth2/token. */
export function credentialFor(server: TestServer, clientId: string, clientSecret: string): TokenCredential {
  return {
    async getToken(): Promise<AccessToken> {
      const r = await server.send('POST', '/oauth2/token', {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString(),
      });
      if (r.status !== 200) throw new Error(`token: ${r.status} ${r.text}`);
      return { token: r.json().access_token, expiresOnTimestamp: Date.now() + 3_000_000 };
    },
  };
}

/**
 * The SDK unchanged: the private CA goes in through `tlsOptions` (core-rest-pipeline creates its https
 * Agent with these settings), so no NODE_EXTRA_CA_CERTS is needed; the vault runs on 127.0.0.1, so the
 * challenge resource check is disabled as for Managed HSM samples (docs/vault.md).
 */
export function sdkOptions(server: TestServer): KeyClientOptions {
  return {
    tlsOptions: { ca: readFileSync(server.caPath, 'utf8') },
    disableChallengeResourceVerification: true,
    retryOptions: { maxRetries: 0 },
  };
}

export function adminKeyClient(server: TestServer): KeyClient {
  return new KeyClient(server.url, credentialFor(server, server.admin.clientId, server.admin.clientSecret), sdkOptions(server));
}

export async function adminJson(server: TestServer, method: string, path: string, body?: object): Promise<{ status: number; json: any }> {
  const r = await server.send(method, path, { headers: { authorization: `Bearer ${await freshAdminToken(server)}` }, ...(body ? { body } : {}) });
  return { status: r.status, json: r.text ? JSON.parse(r.text) : undefined };
}

export async function newClient(server: TestServer, displayName: string): Promise<{ clientId: string; clientSecret: string }> {
  const r = await adminJson(server, 'POST', '/admin/clients', { displayName });
  if (r.status !== 201) throw new Error(`create client: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

export async function assignRole(server: TestServer, principalId: string, role: string, scope = '/'): Promise<void> {
  const r = await adminJson(server, 'PUT', '/admin/vault/roleAssignments', { principalId, role, scope });
  if (r.status !== 200) throw new Error(`assign: ${r.status} ${JSON.stringify(r.json)}`);
}

export interface AuthorityStandIn {
  readonly url: string;
  readonly authority: FakeAuthority;
  /** The workload's RSA key pair, whose public half goes into `x-ms-runtime.keys`. */
  readonly workload: { privateKey: KeyObject; publicKey: KeyObject; jwk: Record<string, unknown> };
  /** A valid MAA-shaped token (claims merged over the defaults). */
  token(claims?: Record<string, unknown>, header?: Record<string, unknown>): string;
  close(): Promise<void>;
}

let workload: AuthorityStandIn['workload'] | undefined;
/**
 * The workload key of the stand-ins: one RSA-2048 pair per test process (a key generation is about 0.15 s of
 * CPU, and no test tells two stand-ins' workloads apart: each releases to the one its own stand-in names).
 */
function workloadKey(): AuthorityStandIn['workload'] {
  if (!workload) {
    const { privateKey, publicKey } = generateRsaKeyPair(2048);
    workload = { privateKey, publicKey, jwk: { ...(publicKey.export({ format: 'jwk' }) as Record<string, unknown>), kid: 'workload-key', key_ops: ['encrypt'] } };
  }
  return workload;
}

/** An HTTPS OpenID stand-in on 127.0.0.1 using the vault's own TLS identity (its local CA is trusted). */
export async function startAuthority(server: Pick<TestServer, 'dataDir'>, now: () => Date = () => new Date()): Promise<AuthorityStandIn> {
  const tls = { key: readFileSync(join(server.dataDir, 'tls', 'server.key')), cert: readFileSync(join(server.dataDir, 'tls', 'server.pem')) };
  let authority: FakeAuthority | undefined;
  let url = '';
  const srv: Server = createServer(tls, (req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') res.end(JSON.stringify({ issuer: url, jwks_uri: `${url}/certs` }));
    else if (req.url === '/certs') res.end(JSON.stringify({ keys: [authority!.jwk] }));
    else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  authority = await createFakeAuthority(url, { alg: 'RS256' });
  const { privateKey, publicKey, jwk } = workloadKey();
  const a = authority;
  return {
    url,
    authority: a,
    workload: { privateKey, publicKey, jwk },
    token(claims = {}, header = {}) {
      const t = Math.floor(now().getTime() / 1000);
      return a.token(
        {
          iat: t,
          nbf: t,
          exp: t + 8 * 3600,
          jti: `jti-${Math.random().toString(36).slice(2)}`,
          'x-ms-attestation-type': 'sevsnpvm',
          'x-ms-compliance-status': 'azure-compliant-uvm',
          'x-ms-sevsnpvm-is-debuggable': false,
          'x-ms-sevsnpvm-guestsvn': 3,
          'x-ms-runtime': { keys: [jwk] },
          ...claims,
        },
        header,
      );
    },
    close: () => new Promise<void>((resolve) => srv.close(() => resolve())),
  };
}

/** An SKR policy for the stand-in authority: SEV-SNP, compliant, not debuggable, guest SVN ≥ 2. */
export function policyFor(authority: string): Uint8Array {
  return Buffer.from(
    JSON.stringify({
      version: '1.0.0',
      anyOf: [
        {
          authority,
          allOf: [
            { claim: 'x-ms-attestation-type', equals: 'sevsnpvm' },
            { claim: 'x-ms-compliance-status', equals: 'azure-compliant-uvm' },
            { claim: 'x-ms-sevsnpvm-is-debuggable', equals: 'false' },
            { claim: 'x-ms-sevsnpvm-guestsvn', greaterOrEquals: 2 },
          ],
        },
      ],
    }),
  );
}
