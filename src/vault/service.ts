/**
 * The vault service: every AKV / Managed HSM operation as one method taking the authenticated principal
 * and decoded parameters and returning wire objects, plus the scheduled work. Built from parts that share
 * one core (src/vault/core.ts): key lifecycle, key operations and release, maintenance, administration.
 * Every call (granted, denied or failed) leaves one audit record.
 */
import { fail } from '../core/errors.js';
import { createVaultCore, type VaultServiceDeps } from './core.js';
import { createKeyLifecycle } from './lifecycle.js';
import { createMaintenance } from './maintenance.js';
import { createKeyOperations } from './operations.js';
import { createAccessControl } from './access-control.js';
import { createFullBackup } from './full-backup.js';
import { createSettings } from './settings.js';
import type { Principal } from './roles.js';

export { MAINTENANCE_PRINCIPAL, type BackupSealer, type ReleaseKeySource, type SoftDeleteSettings, type VaultServiceDeps } from './core.js';

export function createVaultService(deps: VaultServiceDeps) {
  const core = createVaultCore(deps);
  const { store, nowSeconds } = core;
  const ctx = { now: deps.now, baseUrl: deps.baseUrl, config: { trustedAuthorities: deps.trustedAuthorities } };

  return {
    ...createKeyLifecycle(core),
    ...createKeyOperations(core),
    ...createMaintenance(core),
    ...createAccessControl(core),
    ...createFullBackup(core, deps.backupTarget),
    ...createSettings(core),

    // ── administration (bootstrap administrator only) ──
    async authorities() {
      return { authorities: await store.authorities(), builtin: [ctx.baseUrl(), ...ctx.config.trustedAuthorities] };
    },
    async setAuthorities(p: Principal, body: unknown) {
      const list = (body as { authorities?: unknown } | undefined)?.authorities;
      if (!Array.isArray(list)) throw fail('request.invalid', 'authorities must be an array of https URLs', { field: 'authorities' });
      for (const a of list) {
        let ok = false;
        try {
          ok = typeof a === 'string' && new URL(a).protocol === 'https:';
        } catch {
          ok = false;
        }
        if (!ok) throw fail('request.invalid', `authority ${JSON.stringify(a)} is not an https URL`, { field: 'authorities' });
      }
      const clean = (list as string[]).map((a) => a.replace(/\/+$/, ''));
      await store.setAuthorities(clean, nowSeconds(), { time: ctx.now().toISOString(), principal: p.id, operation: 'setAuthorities', result: 'success', status: 200, detail: { authorities: clean } });
      return this.authorities();
    },
  };
}

export type VaultService = ReturnType<typeof createVaultService>;
