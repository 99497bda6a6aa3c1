/**
 * Bearer tokens from an external OpenID Connect issuer (`--oidc-issuer`): a local HTTPS stand-in on
 * 127.0.0.1 serves /.well-known/openid-configuration and its JWKS with the server's own TLS material
 * (created first with loadOrCreateTls, so the server trusts it through its local CA).
 */
import assert from 'node:assert/strict';
import { createHmac, type KeyObject, webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import 'reflect-metadata';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as x509 from '@peculiar/x509';
import { b64url } from '../../../src/core/bytes.js';
import { signJws } from '../../../src/core/jwt.js';
import { loadOrCreateTls } from '../../../src/server/tls.js';
import { startTestServer, type TestServer, tempDir } from '../../helpers/server.js';
import { adminJson, akvCall, assignRole, policyFor } from '../vault/harness.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../../../src/core/keygen.js';

const AUDIENCE = 'api://conclave-test';

interface Idp {
  readonly url: string;
  /** Signing keys by kid; the JWKS publishes exactly these. */
  readonly keys: Map<string, { privateKey: KeyObject; publicKey: KeyObject; alg: string }>;
  readonly hits: Map<string, number>;
  /** An outage: every request answers 503. */
  setDown(down: boolean): void;
  /** A hanging issuer: requests are held unanswered until this is turned off again. */
  setHang(hang: boolean): void;
  readonly caPath: string;
  close(): Promise<void>;
}

function rsaKey() {
  return { ...generateRsaKeyPair(2048), alg: 'RS256' };
}

/** TLS for 127.0.0.1 under a private CA of its own name (not the server's local CA), as PEM files in `dir`. */
async function privateCaTls(dir: string): Promise<{ key: string; cert: string; caPath: string }> {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const now = Date.now();
  const caKeys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Example Corp private OIDC CA',
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 86400_000),
    signingAlgorithm: alg,
    keys: caKeys,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: 'CN=idp.example',
    issuer: ca.subject,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 86400_000),
    signingAlgorithm: alg,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]), new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])],
  });
  const caPath = join(dir, 'oidc-ca.pem');
  writeFileSync(caPath, `${ca.toString('pem')}\n`);
  return { key: x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY'), cert: cert.toString('pem'), caPath };
}

/**
 * The first signing key of every issuer stand-in (each describe has its own stand-in, server and key map;
 * a key pair is about 0.15 s of CPU). The rogue keys of the forgery tests are fresh ones.
 */
let keyA: ReturnType<typeof rsaKey> | undefined;

async function startIdp(dataDir: string, jwksPath = '/certs', privateCa = false): Promise<Idp> {
  const tls = privateCa ? await privateCaTls(dataDir) : await loadOrCreateTls(dataDir, '127.0.0.1');
  const keys = new Map([['key-a', (keyA ??= rsaKey())]]);
  const hits = new Map<string, number>();
  let url = '';
  let down = false;
  let hang = false;
  const held: { end(): void }[] = [];
  const srv: Server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    res.setHeader('content-type', 'application/json');
    if (hang) {
      held.push({ end: () => res.destroy() });
    } else if (down) {
      res.statusCode = 503;
      res.end('{}');
    } else if (req.url === '/.well-known/openid-configuration') res.end(JSON.stringify({ issuer: url, jwks_uri: `${url}${jwksPath}` }));
    else if (req.url === jwksPath) res.end(JSON.stringify({ keys: [...keys].map(([kid, k]) => ({ ...k.publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: k.alg })) }));
    else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return {
    url,
    keys,
    hits,
    caPath: tls.caPath,
    setDown: (d) => {
      down = d;
    },
    setHang: (h) => {
      hang = h;
      if (!h) for (const r of held.splice(0)) r.end();
    },
    close: () => new Promise<void>((resolve) => srv.close(() => resolve())),
  };
}

describe('external OIDC bearer tokens (discovered JWKS)', async () => {
  const dataDir = tempDir();
  const idp = await startIdp(dataDir);
  let clock = new Date();
  const nowS = () => Math.floor(clock.getTime() / 1000);
  const server: TestServer = await startTestServer(
    { services: 'vault', oidcIssuer: idp.url, oidcAudience: AUDIENCE, oidcAdminSubject: ['ops-admin'] },
    { dataDir, now: () => clock },
  );
  after(async () => {
    await server.stop();
    await idp.close();
  });

  function token(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, kid = 'key-a'): string {
    const k = idp.keys.get(kid)!;
    const t = nowS();
    return signJws({ alg: k.alg, typ: 'JWT', kid, ...header }, { iss: idp.url, aud: AUDIENCE, sub: 'user-1', name: 'User One', iat: t, nbf: t, exp: t + 3600, ...claims }, k.privateKey);
  }
  const listKeys = (bearer: string) => server.send('GET', '/keys?api-version=7.4', { headers: { authorization: `Bearer ${bearer}` } });
  const assign = async (bearer: string, principalId: string) =>
    server.send('PUT', '/admin/vault/roleAssignments', { headers: { authorization: `Bearer ${bearer}` }, body: { principalId, role: 'Key Vault Reader', scope: '/' } });

  test('a valid external token authenticates: 403 without a role, 200 once <issuer>#<sub> holds Key Vault Reader', async () => {
    const before = await listKeys(token());
    assert.equal(before.status, 403, before.text);
    assert.match(before.text, new RegExp(`${idp.url}#user-1`));
    assert.equal((await assign(await server.adminToken(), `${idp.url}#user-1`)).status, 200);
    const r = await listKeys(token());
    assert.equal(r.status, 200, r.text);
    assert.ok(Array.isArray(r.json().value));
  });

  test('aud may be an array holding our audience; iss may carry one trailing slash', async () => {
    assert.equal((await listKeys(token({ aud: ['other', AUDIENCE] }))).status, 200);
    assert.equal((await listKeys(token({ iss: `${idp.url}/` }))).status, 200);
  });

  test('our own tokens still work', async () => {
    assert.equal((await listKeys(await server.adminToken())).status, 200);
  });

  test('an admin subject may use the administration API; another subject may not', async () => {
    const admin = token({ sub: 'ops-admin' });
    assert.equal((await assign(admin, `${idp.url}#user-2`)).status, 200);
    assert.equal((await assign(token({ sub: 'user-2' }), `${idp.url}#user-3`)).status, 403);
  });

  const rejected: [string, () => string][] = [
    ['a wrong audience', () => token({ aud: 'api://someone-else' })],
    ['no audience', () => token({ aud: undefined })],
    ['an expired token (beyond 60 s skew)', () => token({ exp: nowS() - 120 })],
    ['a token not yet valid (beyond 60 s skew)', () => token({ nbf: nowS() + 300 })],
    ['a token without exp', () => token({ exp: undefined })],
    ['a token without sub', () => token({ sub: undefined })],
    [
      'a wrong signature (another key under the published kid)',
      () => signJws({ alg: 'RS256', kid: 'key-a' }, { iss: idp.url, aud: AUDIENCE, sub: 'user-1', exp: nowS() + 3600 }, rsaKey().privateKey),
    ],
    [
      'alg none',
      () => `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ iss: idp.url, aud: AUDIENCE, sub: 'user-1', exp: nowS() + 3600 }))}.`,
    ],
    [
      'HS256 keyed with the public key',
      () => {
        const input = `${b64url(JSON.stringify({ alg: 'HS256', kid: 'key-a' }))}.${b64url(JSON.stringify({ iss: idp.url, aud: AUDIENCE, sub: 'user-1', exp: nowS() + 3600 }))}`;
        const secret = idp.keys.get('key-a')!.publicKey.export({ type: 'spki', format: 'pem' });
        return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      },
    ],
    ['an unknown issuer', () => token({ iss: 'https://idp.elsewhere.example' })],
    ['an issuer that only resembles ours', () => token({ iss: `${idp.url}//` })],
    [
      'a key named by the token itself (jku, jwk) rather than the JWKS',
      () => {
        const rogue = rsaKey();
        return signJws(
          { alg: 'RS256', kid: 'rogue', jku: `${idp.url}/certs`, jwk: rogue.publicKey.export({ format: 'jwk' }) },
          { iss: idp.url, aud: AUDIENCE, sub: 'user-1', exp: nowS() + 3600 },
          rogue.privateKey,
        );
      },
    ],
  ];
  for (const [name, make] of rejected) {
    test(`401 auth.unauthenticated for ${name}, without echoing the token`, async () => {
      const t = make();
      const r = await listKeys(t);
      assert.equal(r.status, 401, r.text);
      assert.equal(r.json().error.innererror.code, 'auth.unauthenticated');
      assert.ok(r.headers['www-authenticate']);
      assert.ok(!r.text.includes(t.split('.')[2] || t));
      assert.ok(!r.text.includes(t.split('.')[1]!));
    });
  }

  test('within the 60 s skew an expired token still passes', async () => {
    assert.equal((await listKeys(token({ exp: nowS() - 30 }))).status, 200);
  });

  test('a rotated key (unknown kid) is found by one forced JWKS refresh', async () => {
    idp.keys.set('key-b', { ...generateEcKeyPair('P-256'), alg: 'ES256' });
    clock = new Date(clock.getTime() + 30_000);
    const fetched = idp.hits.get('/certs') ?? 0;
    const r = await listKeys(token({}, {}, 'key-b'));
    assert.equal(r.status, 200, r.text);
    assert.equal(idp.hits.get('/certs'), fetched + 1);
    // Cached now: no further fetch.
    assert.equal((await listKeys(token({}, {}, 'key-b'))).status, 200);
    assert.equal(idp.hits.get('/certs'), fetched + 1);
  });

  test('one unknown-kid token during an issuer outage does not wipe the cached JWKS', async () => {
    idp.setDown(true);
    try {
      clock = new Date(clock.getTime() + 30_000);
      const tries = () => (idp.hits.get('/certs') ?? 0) + (idp.hits.get('/.well-known/openid-configuration') ?? 0);
      const before = tries();
      assert.equal((await listKeys(token({}, { kid: 'key-unknown' }))).status, 401);
      assert.equal(tries(), before + 1, 'the forced refresh was tried');
      assert.equal((await listKeys(token({}, {}, 'key-a'))).status, 200, 'a valid token still verifies with the cached keys');
      assert.equal((await listKeys(token({}, {}, 'key-b'))).status, 200);
    } finally {
      idp.setDown(false);
    }
  });

  test('valid tokens that arrive while an unknown-kid refresh hangs on the issuer still verify with the cached keys', { timeout: 30_000 }, async () => {
    idp.setHang(true);
    try {
      clock = new Date(clock.getTime() + 30_000);
      const tries = () => (idp.hits.get('/certs') ?? 0) + (idp.hits.get('/.well-known/openid-configuration') ?? 0);
      const before = tries();
      const unknown = listKeys(token({}, { kid: 'key-unknown-2' }));
      // Wait until the forced refresh is on the wire (and held there), then send valid tokens.
      while (tries() === before) await new Promise((r) => setTimeout(r, 20));
      const valid = await Promise.all([listKeys(token({}, {}, 'key-a')), listKeys(token({}, {}, 'key-b'))]);
      assert.deepEqual(
        valid.map((r) => r.status),
        [200, 200],
        valid.map((r) => r.text).join(' '),
      );
      assert.equal((await unknown).status, 401);
    } finally {
      idp.setHang(false);
    }
  });
});

describe('external OIDC issuer behind a private CA (--oidc-ca)', async () => {
  // The issuer's TLS comes from another data dir: its CA is not the server's local CA.
  const idp = await startIdp(tempDir(), '/certs', true);
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
    await idp.close();
  });
  const call = async (server: TestServer) => {
    const t = Math.floor(Date.now() / 1000);
    const jwt = signJws({ alg: 'RS256', kid: 'key-a' }, { iss: idp.url, aud: AUDIENCE, sub: 'ops-admin', exp: t + 600 }, idp.keys.get('key-a')!.privateKey);
    return server.send('GET', '/keys?api-version=7.4', { headers: { authorization: `Bearer ${jwt}` } });
  };

  test('without --oidc-ca the issuer is not trusted; with it, its tokens verify', async () => {
    const plain = await startTestServer({ services: 'vault', oidcIssuer: idp.url, oidcAudience: AUDIENCE, oidcAdminSubject: ['ops-admin'] });
    servers.push(plain);
    const refused = await call(plain);
    assert.equal(refused.status, 503, 'the issuer cannot be reached over a TLS chain the server does not trust');
    const trusting = await startTestServer({ services: 'vault', oidcIssuer: idp.url, oidcAudience: AUDIENCE, oidcAdminSubject: ['ops-admin'], oidcCa: idp.caPath });
    servers.push(trusting);
    const r = await call(trusting);
    assert.equal(r.status, 200, r.text);
  });

  test('release authorities never trust --oidc-ca: the same issuer named as a release authority is not reached', async () => {
    const server = await startTestServer({ services: 'vault', oidcIssuer: idp.url, oidcAudience: AUDIENCE, oidcAdminSubject: ['ops-admin'], oidcCa: idp.caPath });
    servers.push(server);
    assert.equal((await call(server)).status, 200, 'the issuer is trusted for bearer tokens');
    assert.equal((await adminJson(server, 'PUT', '/admin/vault/authorities', { authorities: [idp.url] })).status, 200);
    await assignRole(server, server.admin.clientId, 'Key Vault Crypto Service Release User');
    const created = await akvCall(server, 'POST', '/keys/oidc-ca-release/create', { kty: 'EC-HSM', crv: 'P-256', attributes: { exportable: true }, release_policy: { data: Buffer.from(policyFor(idp.url)).toString('base64url') } });
    assert.equal(created.status, 200, JSON.stringify(created.json));
    const workload = generateRsaKeyPair(2048).publicKey.export({ format: 'jwk' });
    const t = Math.floor(Date.now() / 1000);
    const target = signJws(
      { alg: 'RS256', kid: 'key-a', typ: 'JWT' },
      { iss: idp.url, iat: t, nbf: t, exp: t + 600, 'x-ms-attestation-type': 'sevsnpvm', 'x-ms-compliance-status': 'azure-compliant-uvm', 'x-ms-sevsnpvm-is-debuggable': false, 'x-ms-sevsnpvm-guestsvn': 3, 'x-ms-runtime': { keys: [{ ...workload, kid: 'workload-key', key_ops: ['encrypt'] }] } },
      idp.keys.get('key-a')!.privateKey,
    );
    const before = idp.hits.get('/certs') ?? 0;
    const released = await akvCall(server, 'POST', '/keys/oidc-ca-release/release', { target });
    // The authority's JWKS cannot be fetched: its TLS chain is one only the OIDC client trusts.
    assert.equal(released.status, 503, JSON.stringify(released.json));
    assert.equal(released.json?.error?.innererror?.code, 'upstream.unavailable');
    assert.equal(released.json?.value, undefined, 'no key left the vault');
    assert.equal(idp.hits.get('/certs') ?? 0, before, 'the release path never fetched the JWKS over a chain only --oidc-ca trusts');
  });

  test('--oidc-ca is refused without --oidc-issuer', async () => {
    await assert.rejects(startTestServer({ services: 'vault', oidcCa: idp.caPath }), (e: { code?: string }) => e.code === 'config.invalid');
  });
});

describe('external OIDC bearer tokens (configured JWKS URI)', async () => {
  const dataDir = tempDir();
  const idp = await startIdp(dataDir, '/direct-keys');
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ services: 'vault', oidcIssuer: idp.url, oidcAudience: AUDIENCE, oidcJwksUri: `${idp.url}/direct-keys` }, { dataDir });
  });
  after(async () => {
    await server.stop();
    await idp.close();
  });

  test('the configured JWKS is fetched without OpenID discovery', async () => {
    const k = idp.keys.get('key-a')!;
    const t = Math.floor(Date.now() / 1000);
    const jwt = signJws({ alg: 'RS256', kid: 'key-a' }, { iss: idp.url, aud: AUDIENCE, sub: 'svc', exp: t + 600 }, k.privateKey);
    const r = await server.send('GET', '/keys?api-version=7.4', { headers: { authorization: `Bearer ${jwt}` } });
    assert.equal(r.status, 403, r.text);
    assert.equal(idp.hits.get('/direct-keys'), 1);
    assert.equal(idp.hits.get('/.well-known/openid-configuration'), undefined);
  });
});
