import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describePkcs11Spec, parsePkcs11Spec } from './pkcs11-spec.js';

describe('parsePkcs11Spec', () => {
  test('reads module, token, pin source and defaults', () => {
    const s = parsePkcs11Spec('pkcs11:module=/usr/lib/softhsm/libsofthsm2.so;token=kv-test;pin-source=env:HSM_PIN');
    assert.deepEqual(s, { module: '/usr/lib/softhsm/libsofthsm2.so', token: 'kv-test', pinSource: { kind: 'env', name: 'HSM_PIN' }, sessions: 4, releaseSha2: 'token' });
    const f = parsePkcs11Spec('pkcs11:module-path=/m.so;token=My%20Token;pin-source=file:/run/pin;sessions=2;release-sha2=hybrid');
    assert.equal(f.module, '/m.so');
    assert.equal(f.token, 'My Token');
    assert.deepEqual(f.pinSource, { kind: 'file', path: '/run/pin' });
    assert.equal(f.sessions, 2);
    assert.equal(f.releaseSha2, 'hybrid');
    assert.equal(describePkcs11Spec(f), 'pkcs11:module=/m.so;token=My Token;pin-source=file:/run/pin;sessions=2;release-sha2=hybrid');
  });

  for (const bad of [
    'softhsm:module=/m.so;token=t;pin-source=env:X',
    'pkcs11:token=t;pin-source=env:X',
    'pkcs11:module=/m.so;pin-source=env:X',
    'pkcs11:module=/m.so;token=t',
    'pkcs11:module=/m.so;token=t;pin-source=1234',
    'pkcs11:module=/m.so;token=t;pin-source=env:1X',
    'pkcs11:module=/m.so;token=t;pin-source=env:X;pin-value=1234',
    'pkcs11:module=/m.so;token=t;pin-source=env:X;sessions=0',
    'pkcs11:module=/m.so;token=t;pin-source=env:X;release-sha2=maybe',
    'pkcs11:module=/m.so;module=/n.so;token=t;pin-source=env:X',
    'pkcs11:module=/m.so;token=%zz;pin-source=env:X',
  ]) {
    test(`rejects ${bad}`, () => {
      assert.throws(() => parsePkcs11Spec(bad), (e: { code?: string }) => e.code === 'config.invalid');
    });
  }
});
