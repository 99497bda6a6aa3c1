/**
 * Pins (defended on main) of the data-plane permission check: a per-key scope matches that key's name whole
 * (in any case) and never a name it prefixes, `/keys` covers keys but not vault-wide operations, a wildcard
 * grants what it prefixes but never release or export, and notDataActions subtract in either spelling.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BUILT_IN_ROLES, DataActions, isPermitted, parseRoleDefinition, parseScope, type RoleDefinition } from './roles.js';

const CRYPTO_USER = BUILT_IN_ROLES.find((r) => r.roleName === 'Managed HSM Crypto User')!;
const byId = (defs: readonly RoleDefinition[]) => (id: string) => defs.find((d) => d.name === id);
const at = (scope: string, def: RoleDefinition = CRYPTO_USER) => [{ roleDefinitionId: def.name, scope: parseScope(scope) }];

describe('isPermitted', () => {
  test('a per-key scope covers that key in any case, never a key whose name it prefixes or that prefixes it', () => {
    const defs = byId(BUILT_IN_ROLES);
    assert.equal(isPermitted(at('/keys/abc'), defs, 'sign', 'abc', false), true);
    assert.equal(isPermitted(at('/keys/abc'), defs, 'sign', 'ABC', false), true);
    assert.equal(isPermitted(at('keys/abc/'), defs, 'sign', 'abc', false), true);
    for (const other of ['abcdef', 'ab', 'abc-', 'xabc']) assert.equal(isPermitted(at('/keys/abc'), defs, 'sign', other, false), false, other);
    // Nor a vault-wide operation, or a listing.
    assert.equal(isPermitted(at('/keys/abc'), defs, 'read', undefined, false), false);
    assert.equal(isPermitted(at('/keys/abc'), defs, 'rng', undefined, false), false);
  });

  test('/keys covers every key and listing, not role management; / covers both', () => {
    const officer = BUILT_IN_ROLES.find((r) => r.roleName === 'Managed HSM Crypto Officer')!;
    const defs = byId(BUILT_IN_ROLES);
    assert.equal(isPermitted(at('/keys'), defs, 'sign', 'anything', false), true);
    assert.equal(isPermitted(at('/keys'), defs, 'read', undefined, false), true);
    assert.equal(isPermitted(at('/keys', officer), defs, 'writeAssignments', undefined, false), false);
    assert.equal(isPermitted(at('/', officer), defs, 'writeAssignments', undefined, false), true);
  });

  test('a wildcard never grants release or export; naming them does; notDataActions subtract in either spelling', () => {
    const parse = (name: string, dataActions: string[], notDataActions: string[] = []) =>
      parseRoleDefinition(name, { properties: { roleName: name, permissions: [{ dataActions, notDataActions }] } });
    const wild = parse('00000000-0000-0000-0000-000000000001', ['Microsoft.KeyVault/managedHsm/keys/*']);
    const all = parse('00000000-0000-0000-0000-000000000002', ['*']);
    const named = parse('00000000-0000-0000-0000-000000000003', [DataActions.release, DataActions.export, DataActions.decrypt], ['Microsoft.KeyVault/vaults/keys/decrypt/action']);
    const defs = byId([wild, all, named]);
    for (const def of [wild, all]) {
      assert.equal(isPermitted(at('/', def), defs, 'decrypt', 'k', false), true);
      assert.equal(isPermitted(at('/', def), defs, 'release', 'k', false), false);
      assert.equal(isPermitted(at('/', def), defs, 'export', 'k', false), false);
    }
    assert.equal(isPermitted(at('/', named), defs, 'release', 'k', false), true);
    assert.equal(isPermitted(at('/', named), defs, 'export', 'k', false), true);
    assert.equal(isPermitted(at('/', named), defs, 'decrypt', 'k', false), false, "the Key Vault spelling's deny takes decrypt away");
    // The bootstrap administrator holds neither release nor export.
    assert.equal(isPermitted([], defs, 'release', 'k', true), false);
    assert.equal(isPermitted([], defs, 'export', 'k', true), false);
  });

  test('a data action in another letter case, or with a wildcard inside it, is refused rather than read as something else', () => {
    for (const action of ['microsoft.keyvault/managedhsm/keys/decrypt/action', 'Microsoft.KeyVault/managedHsm/keys/*/action', 'Microsoft.KeyVault/managedHsm/keyz/*']) {
      for (const list of ['dataActions', 'notDataActions']) {
        assert.throws(() => parseRoleDefinition('00000000-0000-0000-0000-000000000004', { properties: { permissions: [{ dataActions: [DataActions.read], [list]: [action] }] } }), /unknown data action/, `${list} ${action}`);
      }
    }
  });
});
