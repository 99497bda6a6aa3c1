import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { Database } from '../../../src/storage/database.js';
import { verifyLog } from '../../../src/log/verify.js';
import { createLogStore, storedLogKeys } from '../../../src/storage/log-store.js';
import type { HttpResponse } from '../../helpers/https.js';
import { BIN, type Replica } from './replica.js';

/** Vault calls against replicas over raw HTTPS (the AKV wire, api-version 7.4). */
export const API = 'api-version=7.4';
export const RELEASE_ROLE = 'Key Vault Crypto Service Release User';

export async function akv(r: Pick<Replica, 'send' | 'adminToken'>, method: string, path: string, body?: object): Promise<HttpResponse> {
  const token = await r.adminToken();
  return r.send(method, `${path}${path.includes('?') ? '&' : '?'}${API}`, { headers: { authorization: `Bearer ${token}` }, ...(body ? { body } : {}) });
}

/** A key release policy (skr-maa-protocol.md §2.3) that releases to any of the SGX MRENCLAVEs attested by `authority`. */
export function sgxReleasePolicy(authority: string, mrenclave: string | string[], immutable = false) {
  const enclaves = Array.isArray(mrenclave) ? mrenclave : [mrenclave];
  const policy = { version: '1.0.0', anyOf: enclaves.map((m) => ({ authority, allOf: [{ claim: 'x-ms-sgx-mrenclave', equals: m }] })) };
  return { contentType: 'application/json; charset=utf-8', data: Buffer.from(JSON.stringify(policy)).toString('base64url'), immutable };
}

/** An exportable EC-HSM key (cheap to generate, releasable) bound to `mrenclave`. */
export function exportableKeyBody(authority: string, mrenclave: string) {
  return { kty: 'EC-HSM', crv: 'P-256', attributes: { exportable: true }, release_policy: sgxReleasePolicy(authority, mrenclave) };
}

export async function assignReleaseRole(r: Replica, principalId: string): Promise<void> {
  const res = await r.send('PUT', '/admin/vault/roleAssignments', { headers: { authorization: `Bearer ${await r.adminToken()}` }, body: { principalId, role: RELEASE_ROLE, scope: '/' } });
  assert.equal(res.status, 200, res.text);
}

/** Every version id of a key as a replica lists them (following `nextLink`), in version order. */
export async function listVersionIds(r: Replica, name: string): Promise<string[]> {
  const ids: string[] = [];
  let path: string | undefined = `/keys/${name}/versions?maxresults=25`;
  while (path) {
    const res = await akv(r, 'GET', path);
    assert.equal(res.status, 200, res.text);
    const page = res.json<{ value: { kid: string }[]; nextLink?: string | null }>();
    ids.push(...page.value.map((v) => v.kid.split('/').at(-1)!));
    path = page.nextLink ? (() => {
      const u = new URL(page.nextLink);
      u.searchParams.delete('api-version');
      return `${u.pathname}?${u.searchParams.toString()}`;
    })() : undefined;
  }
  return ids;
}

export interface StoreCheck {
  /** Version count per key name. */
  readonly versions: Map<string, number>;
  /** Audit records stored: entries of the log, sequenced or waiting for the next batch. */
  readonly auditRecords: number;
}

/**
 * The store holds no half-written vault state: every version row has its sealed key material and a
 * parseable public JWK, each key's sequence numbers are 1..n without gaps, `latest_version` names the
 * highest sequence, and the transparency log verifies.
 */
export async function assertVaultStoreWhole(db: Database): Promise<StoreCheck> {
  const rows = await db.all<{ name: string; version: string; seq: number | string; public_jwk: string; protected_key: Uint8Array | null; kty: string }>(
    'SELECT name, version, seq, public_jwk, protected_key, kty FROM vault_key_versions ORDER BY name, seq',
  );
  const keys = await db.all<{ name: string; latest_version: string | null }>('SELECT name, latest_version FROM vault_keys');
  const byName = new Map<string, typeof rows>();
  for (const r of rows) {
    assert.ok(r.protected_key && r.protected_key.byteLength > 0, `${r.name}/${r.version} has no key material`);
    const jwk = JSON.parse(r.public_jwk) as Record<string, unknown>;
    const whole = r.kty.startsWith('RSA') ? typeof jwk.n === 'string' && typeof jwk.e === 'string' : r.kty.startsWith('EC') ? typeof jwk.x === 'string' && typeof jwk.y === 'string' : true;
    assert.ok(whole, `${r.name}/${r.version} (${r.kty}) has no public part`);
    byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
  }
  const versions = new Map<string, number>();
  for (const k of keys) {
    const vs = byName.get(k.name) ?? [];
    assert.ok(vs.length > 0, `key ${k.name} has a key row but no version`);
    assert.deepEqual(
      vs.map((v) => Number(v.seq)),
      vs.map((_, i) => i + 1),
      `key ${k.name} has gaps in its version sequence`,
    );
    assert.equal(k.latest_version, vs.at(-1)!.version, `key ${k.name}: latest is not the newest version`);
    versions.set(k.name, vs.length);
  }
  for (const name of byName.keys()) assert.ok(versions.has(name), `versions of ${name} have no key row`);
  const log = await verifyLog(createLogStore(db), await storedLogKeys(db));
  assert.ok(log.ok, `transparency log broken: ${JSON.stringify(log)}`);
  return { versions, auditRecords: log.records };
}

/** `conclave audit verify` over the store, as an operator would run it; returns the record count. */
export function cliAuditVerify(dbUrl: string, dataDir: string): number {
  const r = spawnSync(process.execPath, [BIN, 'audit', 'verify', '--db', dbUrl, '--data-dir', dataDir, '--output', 'json'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `conclave audit verify failed: ${r.stdout}\n${r.stderr}`);
  const out = JSON.parse(r.stdout) as { ok: boolean; records: number };
  assert.equal(typeof out.records, 'number');
  assert.equal(out.ok, true);
  return out.records;
}
