/**
 * The PKCS#11 module (the vendor's shared library), loaded and C_Initialize'd once per process and
 * shared by every provider that names it; C_Finalize when the last one closes.
 */
import { fail } from '../core/errors.js';
import { type Lib, P, pkcs11ReturnValue } from './pkcs11-common.js';

// ── the module, once per process ─────────────────────────────────────────────────────────────────
// C_Initialize/C_Finalize are per process (PKCS#11 v2.40 §5.4), while several servers may run in one
// process (tests): loaded modules are shared by path and finalised when their last user closes.
const modules = new Map<string, { lib: Lib; users: number }>();

export function initialize(lib: Lib): void {
  try {
    // Async variants call the module from worker threads: the module must lock (CKF_OS_LOCKING_OK).
    lib.C_Initialize({ flags: P.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (pkcs11ReturnValue(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw e;
  }
}

export function acquireModule(path: string): Lib {
  const hit = modules.get(path);
  if (hit) {
    hit.users++;
    return hit.lib;
  }
  const lib = new P.PKCS11();
  try {
    lib.load(path);
    initialize(lib);
  } catch (e) {
    throw fail('config.invalid', `cannot load PKCS#11 module ${path}`, { option: 'hsm', module: path, reason: pkcs11ReturnValue(e) ?? String((e as Error).message).slice(0, 200) }, e);
  }
  modules.set(path, { lib, users: 1 });
  return lib;
}

/** C_Finalize and C_Initialize again: other users of the module reconnect on their next call. */
export function reinitializeModule(lib: Lib): void {
  try {
    lib.C_Finalize();
  } catch {
    // not initialised: nothing to finalise
  }
  initialize(lib);
}

export function releaseModule(path: string): void {
  const m = modules.get(path);
  if (!m || --m.users > 0) return;
  modules.delete(path);
  try {
    m.lib.C_Finalize();
  } catch {
    // already finalised or the token is gone: nothing to release
  }
  try {
    m.lib.close();
  } catch {
    // the library handle is released when the process exits anyway
  }
}