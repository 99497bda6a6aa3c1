import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
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
  /** Opens what `seal` made with the same `aad`; anything else is `store.integrity`, naming `aad`. */
  open(sealed: Uint8Array, aad: string): Uint8Array;
  /**
   * HMAC-SHA256 (hex) of `text` for `purpose` under a key derived from the master key: binds plain
   * store rows (a key's attributes and release policy, role assignments, trusted authorities) to the
   * master key, so a row changed by someone with store access alone is detected (#14 item 4).
   */
  mac(purpose: string, text: string): string;
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

/** What a sealed blob's AAD says about the object it belongs to, for messages (`vault-key:k/v1` → `vault key k/v1`). */
function objectOf(aad: string): string {
  const i = aad.indexOf(':');
  return i < 0 ? aad : `${aad.slice(0, i).replace(/-/g, ' ')} ${aad.slice(i + 1)}`;
}

export function createSealer(masterKey: Uint8Array): Sealer {
  const macKey = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'conclave row integrity v1', 32));
  return {
    mac(purpose, text) {
      return createHmac('sha256', macKey).update(purpose).update('\0').update(text).digest('hex');
    },
    seal(plaintext, aad) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', masterKey, iv);
      c.setAAD(Buffer.from(aad));
      const body = Buffer.concat([c.update(plaintext), c.final()]);
      return new Uint8Array(Buffer.concat([Uint8Array.of(VERSION), iv, c.getAuthTag(), body]));
    },
    open(sealed, aad) {
      const corrupt = () =>
        fail('store.integrity', `the sealed data of ${objectOf(aad)} does not open under the master key: it was changed outside Conclave or is corrupt; restore it from a backup`, { object: objectOf(aad) });
      if (sealed.length < 29 || sealed[0] !== VERSION) throw corrupt();
      const d = createDecipheriv('aes-256-gcm', masterKey, sealed.subarray(1, 13));
      d.setAAD(Buffer.from(aad));
      d.setAuthTag(sealed.subarray(13, 29));
      try {
        return new Uint8Array(Buffer.concat([d.update(sealed.subarray(29)), d.final()]));
      } catch {
        throw corrupt();
      }
    },
  };
}
