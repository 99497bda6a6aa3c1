/**
 * PKCS#11 provider recovery (issue #23 item 8): after a device error the provider backs off instead of
 * logging in on every health check, never retries a refused PIN, and finds a token that was
 * re-initialised while it ran. Its own file: re-initialisation finalises the shared module.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { initSoftHsm, interceptedLibrary, type SoftHsmToken, skipWithoutSoftHsm } from '../../test/helpers/softhsm.js';
import { createPkcs11KeyProtector } from './pkcs11.js';
import { parsePkcs11Spec } from './pkcs11-spec.js';

const skip = skipWithoutSoftHsm();

/** A module wrapper that counts logins and fails chosen calls. */
function faulty(failing: (name: string) => string | undefined) {
  const calls = { login: 0 };
  const wrap = interceptedLibrary((name, _args, call) => {
    if (name === 'C_Login') calls.login++;
    const rv = failing(name);
    if (rv) throw new Error(`${name}:${rv}:1`);
    return call();
  });
  return { calls, wrap };
}

const isUnavailable = (e: { code?: string; status?: number }) => e.code === 'hsm.unavailable' && e.status === 503;

describe('PKCS#11 provider recovery (SoftHSM2)', { skip }, () => {
  let token: SoftHsmToken;
  before(() => {
    token = initSoftHsm();
  });
  after(() => token?.remove());

  test('after a device error, health checks back off instead of logging in on every call', async () => {
    let broken = false;
    let t = 1_000_000;
    // Login works, every session operation fails: the pattern that made each check log in again.
    const session = new Set(['C_GetSessionInfo', 'C_GenerateKeyPair', 'C_GenerateKeyPairAsync', 'C_FindObjectsInit', 'C_SignInit']);
    const f = faulty((name) => (broken && session.has(name) ? 'CKR_DEVICE_ERROR' : undefined));
    const hsm = await createPkcs11KeyProtector(parsePkcs11Spec(token.spec), { wrapLibrary: f.wrap, now: () => t, reconnectBackoff: { initialMs: 1_000, maxMs: 8_000 } });
    try {
      await hsm.check();
      const before = f.calls.login;
      broken = true;
      for (let i = 0; i < 20; i++) await assert.rejects(hsm.check(), isUnavailable);
      assert.ok(f.calls.login - before <= 1, `${f.calls.login - before} logins during 20 failing checks`);
      t += 1_000;
      for (let i = 0; i < 5; i++) await assert.rejects(hsm.check(), isUnavailable);
      assert.ok(f.calls.login - before <= 2, `${f.calls.login - before} logins after the first backoff`);
      broken = false;
      await assert.rejects(hsm.check(), (e: { detail?: { reason?: string } }) => e.detail?.reason === 'backoff', 'still waiting: no login yet');
      t += 2_000;
      await hsm.check();
      await hsm.check();
      assert.ok(f.calls.login - before <= 3);
    } finally {
      await hsm.close();
    }
  });

  test('a PIN refused after start is never tried again (no PIN lockout)', async () => {
    let pinChanged = false;
    let t = 1_000_000;
    const f = faulty((name) => (pinChanged && name === 'C_Login' ? 'CKR_PIN_INCORRECT' : pinChanged && name === 'C_GetSessionInfo' ? 'CKR_DEVICE_REMOVED' : undefined));
    const hsm = await createPkcs11KeyProtector(parsePkcs11Spec(token.spec), { wrapLibrary: f.wrap, now: () => t });
    try {
      await hsm.check();
      const before = f.calls.login;
      pinChanged = true;
      for (let i = 0; i < 10; i++) {
        await assert.rejects(hsm.check(), isUnavailable);
        t += 120_000;
      }
      assert.equal(f.calls.login - before, 1, 'one failed login, then none');
      pinChanged = false;
      await assert.rejects(hsm.check(), (e: { detail?: { reason?: string } }) => e.detail?.reason === 'CKR_PIN_INCORRECT');
    } finally {
      await hsm.close();
    }
  });

  test('a token re-initialised while the provider runs is found again', async () => {
    let t = 1_000_000;
    const hsm = await createPkcs11KeyProtector(parsePkcs11Spec(token.spec), { now: () => t });
    try {
      const binding = 'vault-key:reinit/0123456789abcdef0123456789abcdef';
      await hsm.generate({ family: 'EC', crv: 'P-256' }, binding);
      const util = (args: string[]) => {
        const r = spawnSync('softhsm2-util', args, { encoding: 'utf8', env: process.env });
        assert.equal(r.status, 0, r.stderr || r.stdout);
      };
      util(['--delete-token', '--token', token.label]);
      util(['--init-token', '--free', '--label', token.label, '--pin', token.pin, '--so-pin', randomBytes(6).toString('hex')]);
      let recovered = false;
      for (let i = 0; i < 6 && !recovered; i++) {
        try {
          await hsm.check();
          recovered = true;
        } catch (e) {
          assert.equal((e as { code?: string }).code, 'hsm.unavailable');
          t += 60_000;
        }
      }
      assert.ok(recovered, 'the re-initialised token is found again');
      const pk = await hsm.generate({ family: 'EC', crv: 'P-256' }, 'vault-key:after/0123456789abcdef0123456789abcdef');
      assert.equal(pk.handle.byteLength > 0, true);
    } finally {
      await hsm.close();
    }
  });
});
