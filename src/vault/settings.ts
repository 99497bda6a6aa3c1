/**
 * Managed HSM's account settings (`GET /settings`, `GET`/`PATCH /settings/{name}`, 7.4-preview.1 and
 * later; KeyVaultSettingsClient). Managed HSM has one: `AllowKeyManagementOperationsThroughARM`, whether
 * Azure Resource Manager may manage keys. Conclave has no ARM control plane, so it reads `false` and a
 * PATCH may only keep it so (docs/vault.md).
 */
import { fail } from '../core/errors.js';
import { type ApiVersion, requireFeature } from './api-version.js';
import type { VaultCore } from './core.js';
import type { Principal } from './roles.js';

const ARM = 'AllowKeyManagementOperationsThroughARM';

interface Setting {
  readonly name: string;
  readonly value: string;
  readonly type: 'boolean';
}

const SETTINGS: readonly Setting[] = [{ name: ARM, value: 'false', type: 'boolean' }];

function find(name: string): Setting {
  const s = SETTINGS.find((x) => x.name.toLowerCase() === name.toLowerCase());
  if (!s) throw fail('request.not_found', `No setting ${JSON.stringify(name)}: this vault has ${SETTINGS.map((x) => x.name).join(', ')}.`, { setting: name });
  return s;
}

export function createSettings(core: VaultCore) {
  const { perform } = core;
  return {
    async listSettings(p: Principal, api: ApiVersion) {
      requireFeature(api, 'settings', 'getSettings');
      return perform(p, 'getSettings', undefined, {}, async () => ({ settings: SETTINGS.map((s) => ({ ...s })) }));
    },

    async getSetting(p: Principal, api: ApiVersion, name: string) {
      requireFeature(api, 'settings', 'getSetting');
      return perform(p, 'getSetting', undefined, {}, async () => ({ ...find(name) }));
    },

    async updateSetting(p: Principal, api: ApiVersion, name: string, body: unknown) {
      requireFeature(api, 'settings', 'updateSetting');
      return perform(p, 'updateSetting', undefined, {}, async (draft) => {
        const s = find(name);
        const value = typeof body === 'object' && body !== null ? (body as { value?: unknown }).value : undefined;
        if (typeof value !== 'string' || !/^(true|false)$/i.test(value)) throw fail('request.invalid', `value must be "true" or "false" for the boolean setting ${s.name}`, { field: 'value' });
        draft.detail.setting = s.name;
        draft.detail.value = value.toLowerCase();
        if (value.toLowerCase() !== s.value) {
          throw fail('request.invalid', `${s.name} stays ${s.value}: there is no Azure Resource Manager control plane in front of this vault (docs/vault.md).`, { field: 'value' });
        }
        return { ...s };
      });
    },
  };
}
