import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fail } from '../core/errors.js';

/**
 * Software key protection: secrets at rest are sealed with AES-256-GCM under a 256-bit master key kept
 * in `<data-dir>/master.key` (mode 0600). The associated data binds each sealed blob to its purpose
 * (for example a key id), so a blob moved to another row does not open.
 */
export interface Sealer {
  seal(plaintext: Uint8Array, aad: string): Uint8Array;
  open(sealed: Uint8Array, aad: string): Uint8Array;
}

const VERSION = 1;

/** The master key in `path`, or undefined when there is no such file. */
export function readMasterKey(path: string): Uint8Array | undefined {
  if (!existsSync(path)) return undefined;
  const k = readFileSync(path);
  if (k.length !== 32) throw fail('config.invalid', `master key ${path} must hold 32 bytes`);
  return new Uint8Array(k);
}

/**
 * The master key in `path`, created (0600, race-safe between replicas sharing the data dir) when there is
 * none. Only for a store without sealed data: the composition root decides that (src/main.ts).
 */
export function loadOrCreateMasterKey(path: string): Uint8Array {
  const existing = readMasterKey(path);
  if (existing) return existing;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const k = randomBytes(32);
  try {
    writeFileSync(path, k, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    // Another replica sharing the data dir created it first: use theirs.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateMasterKey(path);
    throw e;
  }
  return new Uint8Array(k);
}

export function createSealer(masterKey: Uint8Array): Sealer {
  return {
    seal(plaintext, aad) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', masterKey, iv);
      c.setAAD(Buffer.from(aad));
      const body = Buffer.concat([c.update(plaintext), c.final()]);
      return new Uint8Array(Buffer.concat([Uint8Array.of(VERSION), iv, c.getAuthTag(), body]));
    },
    open(sealed, aad) {
      if (sealed.length < 29 || sealed[0] !== VERSION) throw fail('internal', 'sealed blob has an unknown format');
      const d = createDecipheriv('aes-256-gcm', masterKey, sealed.subarray(1, 13));
      d.setAAD(Buffer.from(aad));
      d.setAuthTag(sealed.subarray(13, 29));
      try {
        return new Uint8Array(Buffer.concat([d.update(sealed.subarray(29)), d.final()]));
      } catch {
        throw fail('internal', 'sealed blob does not open under the master key');
      }
    },
  };
}
