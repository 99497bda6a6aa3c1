import { createHash } from 'node:crypto';
import type { PolicyAuthorization, PolicyStore, StoredPolicy } from '../attestation/ports.js';
import type { Database, SqlExecutor, Transaction } from './database.js';
import { type RowMac, integrityOf } from './row-mac.js';

const POLICY = 'attestation-policy';
const CERTIFICATE = 'attestation-policy-certificate';
/**
 * The lock every policy and certificate change takes first (PostgreSQL: a transaction-scoped advisory lock
 * of this database, so of this instance on every replica; SQLite: its writers are serialised already).
 */
const MANAGEMENT_LOCK = 'attestation-policy-management';

/**
 * Attestation policies in the store. Every change bumps one version row in the same transaction, so
 * replicas that cache compiled policies notice a change with one cheap read. With `mac` (the server's),
 * policies and policy-management certificates carry a MAC under the master key: a policy or a
 * certificate written with store access alone is refused (store.integrity), so it neither changes the
 * claims of tokens nor lifts isolated mode.
 */
export function createPolicyStore(db: Database, now: () => Date, mac?: RowMac): PolicyStore {
  const integrity = integrityOf(mac);
  const bump = 'UPDATE attestation_policy_version SET version = version + 1 WHERE id = 1';
  const seconds = () => Math.floor(now().getTime() / 1000);
  const certificates = async (q: SqlExecutor): Promise<Uint8Array[]> => {
    const rows = await q.all<{ thumbprint: string; cert_der: Uint8Array; integrity: string | null }>('SELECT thumbprint, cert_der, integrity FROM attestation_policy_certificates ORDER BY added_at, thumbprint');
    return rows.map((r) => {
      integrity.check(CERTIFICATE, [r.thumbprint, r.cert_der], r.integrity, `policy management certificate ${r.thumbprint}`);
      return new Uint8Array(r.cert_der);
    });
  };
  /**
   * A policy or certificate change: the management lock, then `authorize` over the certificates registered
   * now (read after the lock, so after every earlier change committed), then the write, in one transaction.
   * A change signed by a certificate whose removal committed first is refused; one that was authorised
   * commits before any later removal reads the certificates (the removal is answered after it).
   */
  const change = <T>(authorize: PolicyAuthorization | undefined, write: (tx: Transaction) => Promise<T>): Promise<T> =>
    db.transaction(
      async (tx) => {
        await tx.lock(MANAGEMENT_LOCK);
        if (authorize) authorize(await certificates(tx));
        return write(tx);
      },
      { joinable: false },
    );
  return {
    async getPolicy(type) {
      const row = await db.get<{ policy_text: string; policy_jws: string; signer_cert: Uint8Array | null; integrity: string | null }>(
        'SELECT policy_text, policy_jws, signer_cert, integrity FROM attestation_policies WHERE attestation_type = ?',
        [type],
      );
      if (!row) return undefined;
      integrity.check(POLICY, [type, row.policy_text, row.policy_jws, row.signer_cert], row.integrity, `attestation policy ${type}`);
      const p: StoredPolicy = { text: row.policy_text, jws: row.policy_jws, signerCertDer: row.signer_cert ? new Uint8Array(row.signer_cert) : undefined };
      return p;
    },
    async setPolicy(type, p, authorize) {
      await change(authorize, async (tx) => {
        await tx.run(
          `INSERT INTO attestation_policies (attestation_type, policy_text, policy_jws, signer_cert, updated_at, integrity) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (attestation_type) DO UPDATE SET policy_text = excluded.policy_text, policy_jws = excluded.policy_jws, signer_cert = excluded.signer_cert, updated_at = excluded.updated_at, integrity = excluded.integrity`,
          [type, p.text, p.jws, p.signerCertDer ? Buffer.from(p.signerCertDer) : null, seconds(), integrity.compute(POLICY, [type, p.text, p.jws, p.signerCertDer ?? null])],
        );
        await tx.run(bump);
      });
    },
    async resetPolicy(type, authorize) {
      await change(authorize, async (tx) => {
        await tx.run('DELETE FROM attestation_policies WHERE attestation_type = ?', [type]);
        await tx.run(bump);
      });
    },
    async listCertificates() {
      return certificates(db);
    },
    // A transaction, so answered once it is on the disk (SQLite): a signer's removal is not answered while a
    // power loss could bring it back.
    async addCertificate(der, authorize) {
      const thumb = createHash('sha1').update(der).digest('hex');
      const r = await change(authorize, (tx) =>
        tx.run('INSERT INTO attestation_policy_certificates (thumbprint, cert_der, added_at, integrity) VALUES (?, ?, ?, ?) ON CONFLICT (thumbprint) DO NOTHING', [
          thumb,
          Buffer.from(der),
          seconds(),
          integrity.compute(CERTIFICATE, [thumb, der]),
        ]),
      );
      return r.changes > 0;
    },
    async removeCertificate(der, authorize) {
      const thumb = createHash('sha1').update(der).digest('hex');
      const r = await change(authorize, (tx) => tx.run('DELETE FROM attestation_policy_certificates WHERE thumbprint = ?', [thumb]));
      return r.changes > 0;
    },
    async version() {
      const row = await db.get<{ version: number }>('SELECT version FROM attestation_policy_version WHERE id = 1');
      return Number(row?.version ?? 0);
    },
  };
}

/** Gives every policy and certificate row without a MAC one (once, for a store made before row MACs; see adoptVaultRows). */
export async function adoptPolicyRows(db: Database, mac: RowMac): Promise<number> {
  const integrity = integrityOf(mac);
  let n = 0;
  for (const r of await db.all<{ attestation_type: string; policy_text: string; policy_jws: string; signer_cert: Uint8Array | null }>('SELECT attestation_type, policy_text, policy_jws, signer_cert FROM attestation_policies WHERE integrity IS NULL')) {
    n += (await db.run('UPDATE attestation_policies SET integrity = ? WHERE attestation_type = ? AND integrity IS NULL', [integrity.compute(POLICY, [r.attestation_type, r.policy_text, r.policy_jws, r.signer_cert]), r.attestation_type])).changes;
  }
  for (const r of await db.all<{ thumbprint: string; cert_der: Uint8Array }>('SELECT thumbprint, cert_der FROM attestation_policy_certificates WHERE integrity IS NULL')) {
    n += (await db.run('UPDATE attestation_policy_certificates SET integrity = ? WHERE thumbprint = ? AND integrity IS NULL', [integrity.compute(CERTIFICATE, [r.thumbprint, r.cert_der]), r.thumbprint])).changes;
  }
  return n;
}
