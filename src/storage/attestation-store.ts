import { createHash } from 'node:crypto';
import type { PolicyStore, StoredPolicy } from '../attestation/ports.js';
import type { Database } from './database.js';

/**
 * Attestation policies in the store. Every change bumps one version row in the same transaction, so
 * replicas that cache compiled policies notice a change with one cheap read.
 */
export function createPolicyStore(db: Database, now: () => Date): PolicyStore {
  const bump = 'UPDATE attestation_policy_version SET version = version + 1 WHERE id = 1';
  const seconds = () => Math.floor(now().getTime() / 1000);
  return {
    async getPolicy(type) {
      const row = await db.get<{ policy_text: string; policy_jws: string; signer_cert: Uint8Array | null }>(
        'SELECT policy_text, policy_jws, signer_cert FROM attestation_policies WHERE attestation_type = ?',
        [type],
      );
      if (!row) return undefined;
      const p: StoredPolicy = { text: row.policy_text, jws: row.policy_jws, signerCertDer: row.signer_cert ? new Uint8Array(row.signer_cert) : undefined };
      return p;
    },
    async setPolicy(type, p) {
      await db.transaction(async (tx) => {
        await tx.run(
          `INSERT INTO attestation_policies (attestation_type, policy_text, policy_jws, signer_cert, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (attestation_type) DO UPDATE SET policy_text = excluded.policy_text, policy_jws = excluded.policy_jws, signer_cert = excluded.signer_cert, updated_at = excluded.updated_at`,
          [type, p.text, p.jws, p.signerCertDer ? Buffer.from(p.signerCertDer) : null, seconds()],
        );
        await tx.run(bump);
      });
    },
    async resetPolicy(type) {
      await db.transaction(async (tx) => {
        await tx.run('DELETE FROM attestation_policies WHERE attestation_type = ?', [type]);
        await tx.run(bump);
      });
    },
    async listCertificates() {
      const rows = await db.all<{ cert_der: Uint8Array }>('SELECT cert_der FROM attestation_policy_certificates ORDER BY added_at, thumbprint');
      return rows.map((r) => new Uint8Array(r.cert_der));
    },
    async addCertificate(der) {
      const thumb = createHash('sha1').update(der).digest('hex');
      const r = await db.run('INSERT INTO attestation_policy_certificates (thumbprint, cert_der, added_at) VALUES (?, ?, ?) ON CONFLICT (thumbprint) DO NOTHING', [thumb, Buffer.from(der), seconds()]);
      return r.changes > 0;
    },
    async removeCertificate(der) {
      const thumb = createHash('sha1').update(der).digest('hex');
      return (await db.run('DELETE FROM attestation_policy_certificates WHERE thumbprint = ?', [thumb])).changes > 0;
    },
    async version() {
      const row = await db.get<{ version: number }>('SELECT version FROM attestation_policy_version WHERE id = 1');
      return Number(row?.version ?? 0);
    },
  };
}
