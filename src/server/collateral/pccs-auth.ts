/**
 * PCCS's two shared secrets, mapped onto Conclave's roles (docs/collateral.md "PCCS tokens"):
 *
 * - `admin-token` (PCCSAdminTool: GET platforms, PUT platformcollateral, refresh, PUT appraisalpolicy)
 *   acts as the collateral administrator, the role Conclave's bootstrap administrator holds;
 * - `user-token` (PCKIDRetrievalTool: POST platforms) may only register platforms.
 *
 * As in PCCS (middleware/auth.js), a token is accepted when the SHA-512 of its UTF-8 bytes equals the
 * configured hash; only the hashes are configured (`--pccs-admin-token-hash`, `--pccs-user-token-hash`),
 * and the comparison is constant-time. Conclave's own credential works on every one of these routes: a
 * bearer token of the administrator. The admin token also registers platforms.
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { constantTimeEqual } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import type { AppContext } from '../context.js';

export type PccsRole = 'admin' | 'user';

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** True when `token` hashes (SHA-512, hex) to `expectedHash`; false when no hash is configured. */
export function tokenMatches(token: string | undefined, expectedHash: string | undefined): boolean {
  if (token === undefined || expectedHash === undefined) return false;
  return constantTimeEqual(createHash('sha512').update(token, 'utf8').digest('hex'), expectedHash.toLowerCase());
}

export function createPccsAuth(ctx: AppContext): (request: FastifyRequest, role: PccsRole) => Promise<void> {
  return async (request, role) => {
    if (tokenMatches(header(request, 'admin-token'), ctx.config.pccsAdminTokenHash)) return;
    if (role === 'user' && tokenMatches(header(request, 'user-token'), ctx.config.pccsUserTokenHash)) return;
    if (request.headers.authorization !== undefined) {
      const p = await ctx.auth.authenticate(request.headers.authorization, Math.floor(ctx.now().getTime() / 1000));
      if (p.isAdmin) return;
      throw fail('auth.forbidden', 'this PCCS route is for the collateral administrator');
    }
    throw fail('auth.unauthenticated', `Authentication failed: send the PCCS ${role === 'admin' ? 'admin-token' : 'user-token'} header (or an administrator's bearer token)`);
  };
}
