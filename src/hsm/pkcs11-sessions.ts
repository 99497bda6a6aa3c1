/**
 * The session pool of a PKCS#11 token: one login, a fixed set of R/W sessions handed out in turn, and the
 * failure policy: device-level failures drop the connection (503 `hsm.unavailable`), the next request
 * reconnects, later ones back off (1 s doubling to 60 s), a refused PIN is never tried again, and a token
 * re-initialised meanwhile is found again. Other return values become typed errors; an error that names
 * none, while the session still answers, is the server's own and fails its call alone.
 */
import { fail, isConclaveError } from '../core/errors.js';
import { type Connection, DATA_FAILURES, DEVICE_FAILURES, type Handle, type Lib, MECHANISM_FAILURES, P, PIN_FAILURES, type Pkcs11Options, pkcs11ReturnValue } from './pkcs11-common.js';
import { initialize, reinitializeModule, releaseModule } from './pkcs11-module.js';
import { describePkcs11Spec, type Pkcs11Spec } from './pkcs11-spec.js';

export interface SessionPool {
  /** The open connection, opening (or reopening) it as the failure policy allows. */
  connection(): Promise<Connection>;
  /** Runs fn on a pooled session; device failures drop the connection and become `hsm.unavailable`. */
  withSession<T>(fn: (s: Handle, c: Connection) => Promise<T> | T): Promise<T>;
  /** Whether the session and its token still answer (a CKR_GENERAL_ERROR may be either). */
  sessionAlive(s: Handle, c: Connection): boolean;
  /** Closes the sessions and releases the module; later calls fail with `hsm.unavailable`. */
  close(): Promise<void>;
}

export function createSessionPool(spec: Pkcs11Spec, lib: Lib, pin: string, opts: Pkcs11Options): SessionPool {
  let conn: Promise<Connection> | undefined;
  let closed = false;
  const backoff = opts.reconnectBackoff ?? { initialMs: 1_000, maxMs: 60_000 };
  const clock = opts.now ?? Date.now;
  /** Consecutive failed connections (failed opens, or connections dropped before an operation succeeded). */
  let failures = 0;
  let retryAt = 0;
  /** A PIN the token refused after start: never tried again (a PIN lockout is worse than an outage). */
  let loginRefused: Error | undefined;
  let opened = false;
  /** Connections dropped (or closed): their sessions are closed, and no session is opened on them again. */
  const retired = new WeakSet<Connection>();

  function failed(): void {
    failures++;
    retryAt = failures <= 1 ? 0 : clock() + Math.min(backoff.maxMs, backoff.initialMs * 2 ** (failures - 2));
  }

  function unavailable(e: unknown, what: string): never {
    throw fail('hsm.unavailable', `the HSM token '${spec.token}' cannot be reached (${what})`, { token: spec.token, reason: pkcs11ReturnValue(e) ?? 'error' }, e);
  }

  /** The slot holding the token labelled as configured; a slot that errors is skipped. */
  function findSlot(): Handle | undefined {
    return lib.C_GetSlotList(true).find((s) => {
      try {
        return lib.C_GetTokenInfo(s).label.trim() === spec.token;
      } catch {
        return false;
      }
    });
  }

  async function open(): Promise<Connection> {
    initialize(lib);
    let slot = findSlot();
    if (!slot && opened) {
      // A token re-initialised (or re-inserted) while we run gets a new slot that the module only lists
      // after C_Finalize/C_Initialize (SoftHSM2 keeps its slot list from C_Initialize).
      reinitializeModule(lib);
      slot = findSlot();
    }
    if (!slot) throw fail('hsm.unavailable', `no token labelled '${spec.token}' is present`, { token: spec.token, reason: 'token_not_present' });
    const sessions: Handle[] = [];
    try {
      for (let i = 0; i < spec.sessions; i++) sessions.push(lib.C_OpenSession(slot, P.CKF_RW_SESSION | P.CKF_SERIAL_SESSION));
      try {
        // Login state is per application and token (PKCS#11 v2.40 §5.6): once for the whole pool.
        lib.C_Login(sessions[0]!, P.CKU_USER, pin);
      } catch (e) {
        if (pkcs11ReturnValue(e) !== 'CKR_USER_ALREADY_LOGGED_IN') throw e;
      }
    } catch (e) {
      for (const s of sessions) closeQuietly(s);
      const rv = pkcs11ReturnValue(e);
      if (rv !== undefined && PIN_FAILURES.has(rv)) {
        const refused = fail('hsm.unavailable', `login to the HSM token '${spec.token}' failed (${rv})${opened ? '; not retried until restart, to avoid locking the PIN' : ''}`, { token: spec.token, reason: rv });
        if (opened) loginRefused = refused;
        throw refused;
      }
      throw e;
    }
    opened = true;
    opts.logger?.info({ hsm: describePkcs11Spec(spec), sessions: spec.sessions }, 'PKCS#11 token opened');
    return { slot, sessions, free: [...sessions], waiters: [], mechanisms: new Set(lib.C_GetMechanismList(slot)), objects: new Map(), oaep: new Map([['sha1', true]]), services: new Map() };
  }

  function closeQuietly(s: Handle): void {
    try {
      lib.C_CloseSession(s);
    } catch {
      // the session died with the token
    }
  }

  async function connection(): Promise<Connection> {
    if (closed) throw fail('hsm.unavailable', 'the PKCS#11 provider is closed', { token: spec.token, reason: 'closed' });
    if (loginRefused) throw loginRefused;
    if (!conn) {
      // After repeated failures, wait before logging in again: health checks and requests in between
      // fail fast instead of hammering the token (and its PIN counter).
      const wait = retryAt - clock();
      if (wait > 0) throw fail('hsm.unavailable', `the HSM token '${spec.token}' failed; reconnecting in ${Math.ceil(wait / 1000)} s`, { token: spec.token, reason: 'backoff', retryInMs: wait });
      const attempt = open().catch((e: unknown) => {
        conn = undefined;
        failed();
        if (isConclaveError(e)) throw e;
        return unavailable(e, 'open');
      });
      conn = attempt;
    }
    return conn;
  }

  function drop(c: Connection): void {
    // At once, not when conn settles: a call failing meanwhile must not renew its session on c (see renewed).
    retired.add(c);
    void conn?.then((cur) => {
      if (cur !== c) return;
      conn = undefined;
      failed();
      for (const s of c.sessions) closeQuietly(s);
      opts.logger?.warn({ token: spec.token }, 'PKCS#11 token failed; reconnecting on the next request');
    }, () => undefined);
  }

  function sessionAlive(s: Handle, c: Connection): boolean {
    try {
      lib.C_GetSessionInfo(s);
      lib.C_GetTokenInfo(c.slot);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * A fresh session in place of one whose call failed. Some failures do not end the operation they hit
   * (CKR_BUFFER_TOO_SMALL, PKCS#11 v2.40 §5.2; a token that errors part-way), and a session with an active
   * operation refuses every later one (CKR_OPERATION_ACTIVE): one bad request would disable its pooled
   * session for good. The new session opens before the old one closes, so the login state (per
   * application, §5.6) stays; if it cannot open, the old session stays in the pool. On a connection
   * dropped meanwhile (another request's device failure) or closed, nothing is opened: its sessions are
   * closed already, and one opened now would never be.
   */
  function renewed(s: Handle, c: Connection): Handle {
    if (closed || retired.has(c)) return s;
    let fresh: Handle;
    try {
      fresh = lib.C_OpenSession(c.slot, P.CKF_RW_SESSION | P.CKF_SERIAL_SESSION);
    } catch {
      return s;
    }
    const i = c.sessions.indexOf(s);
    if (i >= 0) c.sessions[i] = fresh;
    closeQuietly(s);
    return fresh;
  }

  /** Runs fn on a pooled session; device failures drop the connection and become `hsm.unavailable`. */
  async function withSession<T>(fn: (s: Handle, c: Connection) => Promise<T> | T): Promise<T> {
    const c = await connection();
    let s = c.free.pop() ?? (await new Promise<Handle>((resolve) => c.waiters.push(resolve)));
    // Set when the call failed with the connection kept: an operation it began may still be active on the session.
    let replace = false;
    try {
      const out = await fn(s, c);
      failures = 0;
      return out;
    } catch (e) {
      replace = true;
      if (isConclaveError(e)) throw e;
      const rv = pkcs11ReturnValue(e);
      // An error naming no return value while the session still answers is ours (a TypeError), not the
      // device's: it fails this call alone, as an internal error, and the connection stays.
      if (rv === undefined && sessionAlive(s, c)) throw e;
      // SoftHSM answers CKR_GENERAL_ERROR to a bad GCM tag too: the token is gone only if the session is.
      if (rv === 'CKR_GENERAL_ERROR' && sessionAlive(s, c)) throw fail('key.crypto_failed', `the HSM operation failed (${rv})`, { reason: rv }, e);
      if (rv === undefined || DEVICE_FAILURES.has(rv)) {
        replace = false;
        drop(c);
        return unavailable(e, rv ?? 'error');
      }
      if (MECHANISM_FAILURES.has(rv)) throw fail('hsm.mechanism_unsupported', `the HSM token refused the operation (${rv})`, { reason: rv }, e);
      if (rv === 'CKR_KEY_UNEXTRACTABLE' || rv === 'CKR_KEY_NOT_WRAPPABLE') throw fail('key.operation_not_allowed', 'the key cannot leave the HSM', { reason: rv }, e);
      if (DATA_FAILURES.has(rv)) throw fail('key.crypto_failed', `the HSM operation failed (${rv})`, { reason: rv }, e);
      throw fail('key.crypto_failed', `the HSM operation failed (${rv})`, { reason: rv }, e);
    } finally {
      if (replace) s = renewed(s, c);
      const next = c.waiters.shift();
      if (next) next(s);
      else c.free.push(s);
    }
  }

  return {
    connection,
    withSession,
    sessionAlive,
    async close() {
      if (closed) return;
      closed = true;
      const c = await conn?.catch(() => undefined);
      conn = undefined;
      if (c) retired.add(c);
      if (c) for (const s of c.sessions) closeQuietly(s);
      releaseModule(spec.module);
    },
  };
}
