/**
 * A SoftHSM2 token in a temporary directory (toolchain.md §6): a softhsm2.conf whose token directory
 * is private to the test, SOFTHSM2_CONF set for this process and its children (SoftHSM reads it at
 * C_Initialize), and `softhsm2-util --init-token --free`. The user PIN travels by environment
 * variable, so specs built here use `pin-source=env:…`.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lib } from '../../src/hsm/pkcs11-common.js';

export const SOFTHSM_MODULE = process.env.CONCLAVE_TEST_PKCS11_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';
export const SOFTHSM_PIN_ENV = 'CONCLAVE_TEST_HSM_PIN';

export interface SoftHsmToken {
  readonly dir: string;
  readonly module: string;
  readonly label: string;
  readonly pin: string;
  /** `pkcs11:module=…;token=…;pin-source=env:CONCLAVE_TEST_HSM_PIN` (the variable is set by initSoftHsm). */
  readonly spec: string;
  remove(): void;
}

/** Why SoftHSM cannot be used here, or undefined when it can. */
export function softHsmUnavailable(): string | undefined {
  if (!existsSync(SOFTHSM_MODULE)) return `PKCS#11 module ${SOFTHSM_MODULE} is not installed (apt-get install softhsm2)`;
  const r = spawnSync('softhsm2-util', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return 'softhsm2-util is not on PATH (apt-get install softhsm2)';
  return undefined;
}

/**
 * For `test(..., { skip: skipWithoutSoftHsm() })`: a message outside CI, and a thrown error under
 * CI=true, where a missing module must fail the run rather than pass it silently.
 */
export function skipWithoutSoftHsm(): string | false {
  const why = softHsmUnavailable();
  if (why === undefined) return false;
  if (process.env.CI === 'true') throw new Error(`CI=true and SoftHSM is unavailable: ${why}`);
  return `skipped: ${why}`;
}

/**
 * Initialises a fresh token. Sets SOFTHSM2_CONF and the PIN variable in process.env, so call it before
 * the first C_Initialize of the process; every token of a process must share one tokendir, which is
 * why a second call reuses the configured directory.
 */
export function initSoftHsm(opts: { label?: string; pin?: string } = {}): SoftHsmToken {
  const why = softHsmUnavailable();
  if (why) throw new Error(why);
  const label = opts.label ?? `conclave-${randomBytes(4).toString('hex')}`;
  const pin = opts.pin ?? randomBytes(6).toString('hex');
  let dir = process.env.CONCLAVE_TEST_SOFTHSM_DIR;
  const owned = dir === undefined;
  if (dir === undefined) {
    dir = mkdtempSync(join(tmpdir(), 'conclave-softhsm-'));
    mkdirSync(join(dir, 'tokens'));
    writeFileSync(
      join(dir, 'softhsm2.conf'),
      `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\nslots.mechanisms = ALL\nlibrary.reset_on_fork = false\n`,
    );
    process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
    process.env.CONCLAVE_TEST_SOFTHSM_DIR = dir;
  }
  const r = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', randomBytes(6).toString('hex')], {
    encoding: 'utf8',
    env: process.env,
  });
  if (r.status !== 0) throw new Error(`softhsm2-util --init-token failed: ${r.stderr || r.stdout}`);
  process.env[SOFTHSM_PIN_ENV] = pin;
  const tokenDir = dir;
  return {
    dir: tokenDir,
    module: SOFTHSM_MODULE,
    label,
    pin,
    spec: `pkcs11:module=${SOFTHSM_MODULE};token=${label};pin-source=env:${SOFTHSM_PIN_ENV}`,
    remove() {
      if (owned) rmSync(tokenDir, { recursive: true, force: true });
    },
  };
}

let shared: SoftHsmToken | undefined;

/** One token per process (startTestServer with CONCLAVE_TEST_HSM=softhsm), removed at exit. */
export function sharedSoftHsm(): SoftHsmToken {
  if (shared) return shared;
  const token = initSoftHsm();
  shared = token;
  process.once('exit', () => token.remove());
  return token;
}

/**
 * A `wrapLibrary` for createPkcs11KeyProtector that sees every call of the PKCS#11 library: `intercept` gets
 * the call's name and arguments and `call`, which makes the real call; what it returns (or throws) is the
 * call's answer.
 */
export function interceptedLibrary(intercept: (name: string, args: unknown[], call: () => unknown) => unknown): (lib: Lib) => Lib {
  return (lib) =>
    new Proxy(lib, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => intercept(String(prop), args, () => v.apply(target, args));
      },
    });
}

/**
 * A `wrapLibrary` that injects faults: a call fails with the error `fault` returns for its name (an `…Async`
 * call by rejecting, as a token answers one), and goes through when it returns nothing.
 */
export function faultingLibrary(fault: (prop: string) => Error | undefined): (lib: Lib) => Lib {
  return interceptedLibrary((name, _args, call) => {
    const e = fault(name);
    if (!e) return call();
    if (name.endsWith('Async')) return Promise.reject(e);
    throw e;
  });
}
