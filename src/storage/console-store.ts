import type { Database } from './database.js';
import { type RowMac, integrityOf } from './row-mac.js';

/**
 * Who a console session acts as: an OAuth client of this server, or a subject of the configured
 * external OpenID Connect issuer. Stored as JSON; privileges are looked up anew on every request.
 */
export type SessionPrincipal =
  | { readonly kind: 'client'; readonly id: string }
  | { readonly kind: 'external'; readonly issuer: string; readonly sub: string; readonly name: string };

/** How a session was opened. */
export type SignInMethod = 'code' | 'client' | 'oidc';

export interface StoredSession {
  readonly principal: SessionPrincipal;
  readonly method: SignInMethod;
  readonly createdMs: number;
  readonly expiresMs: number;
  readonly seenMs: number;
}

/** The outcome of redeeming a sign-in code. */
export type Redemption = { readonly status: 'ok'; readonly principal: SessionPrincipal; readonly notAfterMs?: number } | { readonly status: 'unknown' | 'used' | 'expired' };

/** Tables `console_sign_in_codes` and `console_sessions`, keyed by the SHA-256 (hex) of their secret. */
export interface ConsoleStore {
  /** `notAfterMs`: the session the code opens ends by then (the end of the credential that asked for the code). */
  addCode(codeSha256: string, principal: SessionPrincipal, createdMs: number, expiresMs: number, notAfterMs?: number): Promise<void>;
  /** Marks the code used, once: of two concurrent redemptions exactly one gets `ok`. */
  redeemCode(codeSha256: string, nowMs: number): Promise<Redemption>;
  addSession(idSha256: string, s: StoredSession): Promise<void>;
  getSession(idSha256: string): Promise<StoredSession | undefined>;
  touchSession(idSha256: string, seenMs: number): Promise<void>;
  removeSession(idSha256: string): Promise<void>;
  /** Drops expired codes and sessions. */
  purge(nowMs: number): Promise<void>;
}

function parsePrincipal(text: string): SessionPrincipal | undefined {
  try {
    const p = JSON.parse(text) as Record<string, unknown>;
    if (p.kind === 'client' && typeof p.id === 'string') return { kind: 'client', id: p.id };
    if (p.kind === 'external' && typeof p.issuer === 'string' && typeof p.sub === 'string' && typeof p.name === 'string') return { kind: 'external', issuer: p.issuer, sub: p.sub, name: p.name };
  } catch {
    // fall through: an unreadable row authenticates nobody
  }
  return undefined;
}

const METHODS: readonly SignInMethod[] = ['code', 'client', 'oidc'];

const CODE = 'console-sign-in-code';
const SESSION = 'console-session';

/**
 * With `mac` (the server's), codes and sessions carry a MAC under the master key over their key, the
 * principal and the expiry: a session or code written with store access alone (an administrator's, say)
 * authenticates nobody.
 */
export function createConsoleStore(db: Database, mac?: RowMac): ConsoleStore {
  const integrity = integrityOf(mac);
  /** A row that fails its check is, like an unreadable one, no session and no code. */
  const intact = (purpose: string, fields: readonly unknown[], stored: string | null, object: string) => {
    try {
      integrity.check(purpose, fields, stored, object);
      return true;
    } catch {
      return false;
    }
  };
  return {
    async addCode(codeSha256, principal, createdMs, expiresMs, notAfterMs) {
      // The cap rides in the principal's JSON, under the row's MAC with it.
      const p = JSON.stringify(notAfterMs === undefined ? principal : { ...principal, notAfterMs });
      await db.run('INSERT INTO console_sign_in_codes (code_sha256, principal, created_ms, expires_ms, integrity) VALUES (?, ?, ?, ?, ?)', [codeSha256, p, createdMs, expiresMs, integrity.compute(CODE, [codeSha256, p, expiresMs])]);
    },
    async redeemCode(codeSha256, nowMs) {
      const row = await db.get<{ principal: string; expires_ms: number | string; integrity: string | null }>(
        'UPDATE console_sign_in_codes SET used_ms = ? WHERE code_sha256 = ? AND used_ms IS NULL RETURNING principal, expires_ms, integrity',
        [nowMs, codeSha256],
      );
      if (!row) {
        const known = await db.get('SELECT 1 AS one FROM console_sign_in_codes WHERE code_sha256 = ?', [codeSha256]);
        return { status: known ? 'used' : 'unknown' };
      }
      // Spent on the disk before it opens a session: a power loss must not make the code good again.
      await db.durable?.();
      if (!intact(CODE, [codeSha256, row.principal, Number(row.expires_ms)], row.integrity, 'console sign-in code')) return { status: 'unknown' };
      // Checked after the update, so an expired code is spent too and never tried twice.
      if (Number(row.expires_ms) <= nowMs) return { status: 'expired' };
      const principal = parsePrincipal(row.principal);
      const notAfterMs = (JSON.parse(row.principal) as { notAfterMs?: unknown }).notAfterMs;
      if (!principal || (notAfterMs !== undefined && typeof notAfterMs !== 'number')) return { status: 'unknown' };
      return { status: 'ok', principal, ...(typeof notAfterMs === 'number' ? { notAfterMs } : {}) };
    },
    async addSession(idSha256, s) {
      const p = JSON.stringify(s.principal);
      await db.run('INSERT INTO console_sessions (id_sha256, principal, method, created_ms, expires_ms, seen_ms, integrity) VALUES (?, ?, ?, ?, ?, ?, ?)', [
        idSha256,
        p,
        s.method,
        s.createdMs,
        s.expiresMs,
        s.seenMs,
        integrity.compute(SESSION, [idSha256, p, s.method, s.createdMs, s.expiresMs]),
      ]);
    },
    async getSession(idSha256) {
      const row = await db.get<{ principal: string; method: string; created_ms: number | string; expires_ms: number | string; seen_ms: number | string; integrity: string | null }>(
        'SELECT principal, method, created_ms, expires_ms, seen_ms, integrity FROM console_sessions WHERE id_sha256 = ?',
        [idSha256],
      );
      if (!row) return undefined;
      if (!intact(SESSION, [idSha256, row.principal, row.method, Number(row.created_ms), Number(row.expires_ms)], row.integrity, 'console session')) return undefined;
      const principal = parsePrincipal(row.principal);
      const method = METHODS.find((m) => m === row.method);
      if (!principal || !method) return undefined;
      return { principal, method, createdMs: Number(row.created_ms), expiresMs: Number(row.expires_ms), seenMs: Number(row.seen_ms) };
    },
    async touchSession(idSha256, seenMs) {
      await db.run('UPDATE console_sessions SET seen_ms = ? WHERE id_sha256 = ?', [seenMs, idSha256]);
    },
    async removeSession(idSha256) {
      await db.run('DELETE FROM console_sessions WHERE id_sha256 = ?', [idSha256]);
      // A sign-out is answered once it is on the disk: a power loss must not bring the session back.
      await db.durable?.();
    },
    async purge(nowMs) {
      await db.run('DELETE FROM console_sign_in_codes WHERE expires_ms <= ?', [nowMs]);
      await db.run('DELETE FROM console_sessions WHERE expires_ms <= ?', [nowMs]);
    },
  };
}
