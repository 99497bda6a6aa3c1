import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fixturePath, readFixtureJson, skipWithoutFixtures } from '../../test/fixtures.js';
import { policyCheckCommand } from './policy-check.js';

function capture(): { io: { stdout(t: string): void; stderr(t: string): void }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { stdout: (t) => (out += t), stderr: (t) => (err += t) }, out: () => out, err: () => err };
}

const dir = mkdtempSync(join(tmpdir(), 'policy-check-'));
function file(name: string, content: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

describe('policyCheckCommand', { skip: skipWithoutFixtures() }, () => {
  const datadisk = () => fixturePath('skr-policies', 'cvm-datadisk-skr-policy.json');
  const jwt = () => fixturePath('maa-claims', 'azurevm-sevsnp-sharedeus2-2024-12.jwt');

  test('a real token that satisfies the policy: exit 0, trace on stdout, dry-run notice', async () => {
    const c = capture();
    assert.equal(await policyCheckCommand({ policy: datadisk(), token: jwt() }, c.io), 0);
    const report = JSON.parse(c.out());
    assert.equal(report.released, true);
    assert.equal(report.issuer, 'https://sharedeus2.eus2.attest.azure.net');
    assert.match(report.notice, /NOT verified/);
    assert.equal(report.trace.kind, 'policy');
    assert.equal(c.err(), '');
  });

  test('an MAA response body {"token"} is accepted too', async () => {
    const token = file('resp.json', { token: (await import('node:fs')).readFileSync(jwt(), 'utf8').trim() });
    assert.equal(await policyCheckCommand({ policy: datadisk(), token }, capture().io), 0);
  });

  test('claims that fail: exit 1 with every failure', async () => {
    const claims = readFixtureJson<Record<string, Record<string, unknown>>>('maa-claims', 'azurevm-sevsnp-sharedeus2-2024-12.payload.json');
    (claims['x-ms-isolation-tee'] as Record<string, unknown>)['x-ms-attestation-type'] = 'sgx';
    const c = capture();
    assert.equal(await policyCheckCommand({ policy: datadisk(), claims: file('claims.json', claims) }, c.io), 1);
    const report = JSON.parse(c.out());
    assert.equal(report.released, false);
    assert.equal(report.failures.length, 2);
    assert.match(report.explanation, /x-ms-isolation-tee\.x-ms-attestation-type/);
  });

  test('--issuer overrides iss', async () => {
    const c = capture();
    assert.equal(await policyCheckCommand({ policy: datadisk(), token: jwt(), issuer: 'https://elsewhere.example' }, c.io), 1);
    assert.equal(JSON.parse(c.out()).failures[0].reason, 'authority');
  });

  test('usage, IO and malformed-policy errors exit 2 with a stderr message', async () => {
    const cases = [
      { policy: datadisk() },
      { policy: datadisk(), token: jwt(), claims: jwt() },
      { policy: join(dir, 'missing.json'), token: jwt() },
      { policy: file('bad.json', { version: '1.0.0', anyOf: [{ authority: 'x', allOf: [{ claim: 'a', like: 1 }] }] }), token: jwt() },
      { policy: datadisk(), token: file('garbage.jwt', 'not-a-jwt') },
      { policy: datadisk(), claims: file('noiss.json', { a: 1 }) },
    ];
    for (const opts of cases) {
      const c = capture();
      assert.equal(await policyCheckCommand(opts, c.io), 2, JSON.stringify(opts));
      assert.match(c.err(), /^error: /);
      assert.equal(c.out(), '');
    }
  });
});
