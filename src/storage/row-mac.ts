import { timingSafeEqual } from 'node:crypto';
import { BoundedMap } from '../core/bounded-map.js';
import { fail } from '../core/errors.js';

/**
 * Keyed MAC of a store row (HMAC under a key derived from the master key, src/hsm/master-key.ts): the
 * rows that decide who may do what (key versions, role assignments and definitions, trusted
 * authorities, OAuth clients, console sessions and sign-in codes) carry one in `integrity`, written with
 * the row and checked on every read, so a row written with store access alone is refused
 * (`store.integrity`, naming the object) instead of used (#14 items 4, 11).
 */
export type RowMac = (purpose: string, text: string) => string;

/** One text per row: its columns as stored, numbers as numbers, blobs as base64. */
export function rowText(fields: readonly unknown[]): string {
  return JSON.stringify(
    fields.map((v) => (v === null || v === undefined ? null : typeof v === 'bigint' ? Number(v) : v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)),
  );
}

/** Rows remembered as verified, per MAC function: the rows a hot path reads again and again (a key, a role, an authority). */
const VERIFIED_ROWS_LIMIT = 1024;

/**
 * Computes and checks row MACs; without a MAC function (unit tests of the SQL alone) rows carry none and
 * none is checked.
 *
 * A row that passed its check is remembered by its purpose and stored MAC together with its exact text:
 * the same row read again (the same MAC over the same text) passes without another HMAC, and any other
 * text under that MAC (a column changed, the MAC copied to another row) is not the remembered one and
 * is checked in full, so it is refused as before. The MAC is a function of the text alone, so the
 * outcome is the one a fresh HMAC would give; only the HMAC's cost (a keyed hash object per row read,
 * three per key release) is saved.
 */
export function integrityOf(mac: RowMac | undefined) {
  const compute = (purpose: string, fields: readonly unknown[]) => (mac ? mac(purpose, rowText(fields)) : null);
  const verified = new BoundedMap<string, string>(VERIFIED_ROWS_LIMIT);
  return {
    compute,
    check(purpose: string, fields: readonly unknown[], stored: string | null, object: string): void {
      if (!mac) return;
      const text = rowText(fields);
      const id = stored === null ? undefined : `${purpose}\0${stored}`;
      if (id !== undefined && verified.get(id) === text) return;
      const expected = mac(purpose, text);
      if (stored === null || stored.length !== expected.length || !timingSafeEqual(Buffer.from(stored), Buffer.from(expected))) {
        throw fail('store.integrity', `${object} failed its integrity check: the stored row was changed outside Conclave or is corrupt, so it is refused; restore it from a backup`, { object });
      }
      verified.set(id!, text);
    },
  };
}
