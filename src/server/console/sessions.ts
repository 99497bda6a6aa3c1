/**
 * Console sign-in codes and sessions (docs/console.md). A code is a one-time, five-minute credential that
 * `conclave console` obtains for its own principal and prints as a link; the console exchanges it for a
 * session. A session is a random id in an HttpOnly cookie; the store keeps only the SHA-256 of codes and
 * session ids, so reading the store yields nothing that signs anyone in. A session names a principal and
 * holds no privileges: every request is authorised as that principal, with its roles as they are then.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fail } from '../../core/errors.js';
import type { ConsoleStore, SessionPrincipal, SignInMethod, StoredSession } from '../../storage/console-store.js';

export type { SessionPrincipal, SignInMethod } from '../../storage/console-store.js';

/** A sign-in code lives five minutes and signs in once. */
export const SIGN_IN_CODE_SECONDS = 300;
/** A session ends eight hours after sign-in (an MAA token's lifetime), or after an hour unused. */
export const SESSION_SECONDS = 8 * 3600;
export const SESSION_IDLE_SECONDS = 3600;
/** The last-seen time is written at most this often, so a busy console costs no write per request. */
const TOUCH_EVERY_MS = 60_000;

/** 256-bit secrets, base64url without padding: exactly 43 characters. */
const SECRET = /^[A-Za-z0-9_-]{43}$/;

export interface OpenedSession {
  /** The cookie value: shown once, never stored. */
  readonly sessionId: string;
  readonly csrfToken: string;
  readonly principal: SessionPrincipal;
  readonly expiresAt: Date;
}

export interface ConsoleSessions {
  /**
   * A one-time sign-in code for `principal` (returned once; stored hashed). `notAfter`: when the credential
   * that asks for it ends; the session the code opens ends no later (a session cannot renew itself).
   */
  issueCode(principal: SessionPrincipal, notAfter?: Date): Promise<{ code: string; expiresAt: Date }>;
  /** Spends a code and opens a session for its principal; a reused, expired or unknown code is refused (401). */
  redeemCode(code: string): Promise<OpenedSession>;
  /** Opens a session for a principal the caller has just authenticated; `notAfter` caps its lifetime. */
  open(principal: SessionPrincipal, method: SignInMethod, notAfter?: Date): Promise<OpenedSession>;
  /** The live session of a cookie value, or undefined (unknown, ended, idle too long). */
  resolve(sessionId: string): Promise<(StoredSession & { readonly csrfToken: string }) | undefined>;
  close(sessionId: string): Promise<void>;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The CSRF token of a session: derived from the session id under its own label, so it needs no storage,
 * and neither it nor the stored hash reveals the other or the id.
 */
export function csrfTokenOf(sessionId: string): string {
  return createHash('sha256').update('conclave console csrf\0').update(sessionId).digest('base64url');
}

export function createConsoleSessions(deps: { store: ConsoleStore; now: () => Date }): ConsoleSessions {
  const { store } = deps;
  const nowMs = () => deps.now().getTime();

  async function open(principal: SessionPrincipal, method: SignInMethod, notAfter?: Date): Promise<OpenedSession> {
    const t = nowMs();
    const expiresMs = Math.min(t + SESSION_SECONDS * 1000, notAfter?.getTime() ?? Number.POSITIVE_INFINITY);
    const sessionId = randomBytes(32).toString('base64url');
    await store.purge(t);
    await store.addSession(sha256(sessionId), { principal, method, createdMs: t, expiresMs, seenMs: t });
    return { sessionId, csrfToken: csrfTokenOf(sessionId), principal, expiresAt: new Date(expiresMs) };
  }

  return {
    async issueCode(principal, notAfter) {
      const t = nowMs();
      const code = randomBytes(32).toString('base64url');
      await store.purge(t);
      await store.addCode(sha256(code), principal, t, t + SIGN_IN_CODE_SECONDS * 1000, notAfter?.getTime());
      return { code, expiresAt: new Date(t + SIGN_IN_CODE_SECONDS * 1000) };
    },

    async redeemCode(code) {
      if (typeof code !== 'string' || !SECRET.test(code)) throw fail('auth.unauthenticated', 'the sign-in code is malformed', { reason: 'code_unknown' });
      const r = await store.redeemCode(sha256(code), nowMs());
      switch (r.status) {
        case 'ok':
          return open(r.principal, 'code', r.notAfterMs !== undefined ? new Date(r.notAfterMs) : undefined);
        case 'used':
          throw fail('auth.unauthenticated', 'this sign-in link was already used; run `conclave console` for a new one', { reason: 'code_used' });
        case 'expired':
          throw fail('auth.unauthenticated', `this sign-in link has expired (links last ${SIGN_IN_CODE_SECONDS / 60} minutes); run \`conclave console\` for a new one`, { reason: 'code_expired' });
        default:
          throw fail('auth.unauthenticated', 'this sign-in link is not valid; run `conclave console` for a new one', { reason: 'code_unknown' });
      }
    },

    open,

    async resolve(sessionId) {
      if (!SECRET.test(sessionId)) return undefined;
      const key = sha256(sessionId);
      const s = await store.getSession(key);
      const t = nowMs();
      if (!s || s.expiresMs <= t || s.seenMs + SESSION_IDLE_SECONDS * 1000 <= t) return undefined;
      if (t - s.seenMs >= TOUCH_EVERY_MS) await store.touchSession(key, t);
      return { ...s, csrfToken: csrfTokenOf(sessionId) };
    },

    async close(sessionId) {
      if (SECRET.test(sessionId)) await store.removeSession(sha256(sessionId));
    },
  };
}
