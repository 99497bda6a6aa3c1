import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { loadConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'conclave-config-'));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('loadConfig', () => {
  test('defaults: ./data, 127.0.0.1:8443, sqlite in the data dir, all services', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.dataDir, resolve('./data'));
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, 8443);
    assert.equal(c.db, `sqlite:${resolve('./data/conclave.db')}`);
    assert.deepEqual(c.services, ['vault', 'attestation', 'collateral']);
    assert.equal(c.simulate, false);
    assert.equal(c.bodyLimit, 1024 * 1024);
    assert.equal(c.requestTimeoutMs, 300_000);
    assert.ok(Object.isFrozen(c));
  });

  test('precedence: flag > env > file > default', () => {
    const yaml = file('c.yaml', 'port: 9001\nhost: 0.0.0.0\nlog-level: debug\nservices: [vault]\n');
    const fromFile = loadConfig({ env: {}, configFile: yaml });
    assert.equal(fromFile.port, 9001);
    assert.equal(fromFile.host, '0.0.0.0');
    assert.equal(fromFile.logLevel, 'debug');
    assert.deepEqual(fromFile.services, ['vault']);
    const fromEnv = loadConfig({ env: { CONCLAVE_PORT: '9002', CONCLAVE_CONFIG: yaml } });
    assert.equal(fromEnv.port, 9002);
    assert.equal(fromEnv.host, '0.0.0.0', 'file still applies to keys env does not set');
    const fromFlag = loadConfig({ flags: { port: '9003', config: yaml }, env: { CONCLAVE_PORT: '9002' } });
    assert.equal(fromFlag.port, 9003);
  });

  test('JSON config files and comma-separated services', () => {
    const json = file('c.json', JSON.stringify({ services: 'attestation,collateral', simulate: true }));
    const c = loadConfig({ flags: { config: json }, env: {} });
    assert.deepEqual(c.services, ['attestation', 'collateral']);
    assert.equal(c.simulate, true);
  });

  test('the data dir moves the default database with it', () => {
    const c = loadConfig({ flags: { dataDir: '/tmp/x-data' }, env: {} });
    assert.equal(c.db, 'sqlite:/tmp/x-data/conclave.db');
  });

  const bad: [string, Parameters<typeof loadConfig>[0], RegExp][] = [
    ['port out of range', { flags: { port: '70000' }, env: {} }, /port \(flag --port\) must be an integer from 0 to 65535/],
    ['non-numeric port in env', { env: { CONCLAVE_PORT: 'abc' } }, /port \(env CONCLAVE_PORT\)/],
    ['unknown service', { flags: { services: 'vault,teapot' }, env: {} }, /services .* must be one of/],
    ['bad db url', { flags: { db: 'mysql://x' }, env: {} }, /db .* must be sqlite:PATH or postgres/],
    ['bad log level', { env: { CONCLAVE_LOG_LEVEL: 'loud' } }, /log-level/],
    ['bad collateral mode', { flags: { collateralMode: 'eager' }, env: {} }, /collateral-mode/],
    ['bad upstream url', { flags: { upstreamIntel: 'not a url' }, env: {} }, /upstream-intel .* must be a URL/],
    ['bad hsm spec', { flags: { hsm: 'softhsm' }, env: {} }, /pkcs11:module=PATH/],
    ['a PCCS token instead of its hash', { env: { CONCLAVE_PCCS_USER_TOKEN_HASH: 'hunter2' } }, /pccs-user-token-hash .* SHA-512 of the token/],
    ['a short PCCS admin hash', { flags: { pccsAdminTokenHash: 'ab'.repeat(32) }, env: {} }, /pccs-admin-token-hash/],
  ];
  test('PCCS token hashes are kept lower-case, as PCCS config carries them', () => {
    const c = loadConfig({ flags: { pccsAdminTokenHash: 'AB'.repeat(64) }, env: {} });
    assert.equal(c.pccsAdminTokenHash, 'ab'.repeat(64));
    assert.equal(c.pccsUserTokenHash, undefined);
  });
  for (const [name, sources, message] of bad) {
    test(`rejects ${name} with config.invalid`, () => {
      assert.throws(() => loadConfig(sources), (e: unknown) => isConclaveError(e, 'config.invalid') && message.test((e as Error).message));
    });
  }

  test('rejects unknown keys and unreadable or invalid files, naming the file', () => {
    assert.throws(() => loadConfig({ env: {}, configFile: file('u.yaml', 'prot: 1\n') }), (e: unknown) => isConclaveError(e, 'config.invalid') && /unknown key "prot"/.test((e as Error).message));
    assert.throws(() => loadConfig({ env: {}, configFile: join(dir, 'missing.yaml') }), (e: unknown) => isConclaveError(e, 'config.invalid') && /cannot read config file/.test((e as Error).message));
    assert.throws(() => loadConfig({ env: {}, configFile: file('b.json', '{nope') }), (e: unknown) => isConclaveError(e, 'config.invalid') && /not valid JSON/.test((e as Error).message));
    assert.throws(() => loadConfig({ env: {}, configFile: file('l.yaml', '- a\n- b\n') }), (e: unknown) => isConclaveError(e, 'config.invalid'));
  });
});

describe('loadConfig: external OIDC issuer', () => {
  test('issuer, audience, JWKS URI and admin subjects from flags, env and file', () => {
    const c = loadConfig({ flags: { oidcIssuer: 'https://login.example/tenant/v2.0/', oidcAudience: 'api://conclave', oidcAdminSubject: ['alice', 'bob'] }, env: {} });
    assert.equal(c.oidcIssuer, 'https://login.example/tenant/v2.0');
    assert.equal(c.oidcAudience, 'api://conclave');
    assert.equal(c.oidcJwksUri, undefined);
    assert.deepEqual(c.oidcAdminSubjects, ['alice', 'bob']);
    const e = loadConfig({ env: { CONCLAVE_OIDC_ISSUER: 'https://idp.example', CONCLAVE_OIDC_AUDIENCE: 'conclave', CONCLAVE_OIDC_JWKS_URI: 'https://idp.example/keys', CONCLAVE_OIDC_ADMIN_SUBJECTS: 'carol, dave' } });
    assert.equal(e.oidcJwksUri, 'https://idp.example/keys');
    assert.deepEqual(e.oidcAdminSubjects, ['carol', 'dave']);
    const f = loadConfig({ env: {}, configFile: file('oidc.yaml', 'oidc-issuer: https://idp.example\noidcAudience: conclave\n') });
    assert.equal(f.oidcIssuer, 'https://idp.example');
    assert.equal(f.oidcAudience, 'conclave');
  });

  test('without an issuer nothing external is configured', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.oidcIssuer, undefined);
    assert.deepEqual(c.oidcAdminSubjects, []);
  });

  const bad: [string, Parameters<typeof loadConfig>[0], RegExp][] = [
    ['an issuer without an audience', { flags: { oidcIssuer: 'https://idp.example' }, env: {} }, /oidc-audience is required/],
    ['an http issuer', { flags: { oidcIssuer: 'http://idp.example', oidcAudience: 'a' }, env: {} }, /oidc-issuer .* must use https:/],
    ['an issuer that is not a URL', { env: { CONCLAVE_OIDC_ISSUER: 'idp', CONCLAVE_OIDC_AUDIENCE: 'a' } }, /oidc-issuer \(env CONCLAVE_OIDC_ISSUER\) must be a URL/],
    ['an http JWKS URI', { flags: { oidcIssuer: 'https://idp.example', oidcAudience: 'a', oidcJwksUri: 'http://idp.example/keys' }, env: {} }, /oidc-jwks-uri/],
    ['an empty audience', { flags: { oidcIssuer: 'https://idp.example', oidcAudience: '' }, env: {} }, /oidc-audience .* non-empty/],
    ['an audience without an issuer', { flags: { oidcAudience: 'a' }, env: {} }, /need oidc-issuer/],
    ['admin subjects without an issuer', { env: { CONCLAVE_OIDC_ADMIN_SUBJECTS: 'alice' } }, /need oidc-issuer/],
    ['a console client id without an issuer', { flags: { oidcConsoleClientId: 'c' }, env: {} }, /need oidc-issuer/],
  ];
  for (const [name, sources, message] of bad) {
    test(`rejects ${name} with config.invalid`, () => {
      assert.throws(() => loadConfig(sources), (e: unknown) => isConclaveError(e, 'config.invalid') && message.test((e as Error).message));
    });
  }
});
