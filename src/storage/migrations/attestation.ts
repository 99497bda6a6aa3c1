import type { Migration } from '../database.js';

/** Attestation policies and policy-management certificates. Ids 300–399. */
export const ATTESTATION_MIGRATIONS: readonly Migration[] = [
  {
    id: 300,
    name: 'attestation policies',
    sql: `
CREATE TABLE IF NOT EXISTS attestation_policies (
  attestation_type TEXT PRIMARY KEY,
  policy_text TEXT NOT NULL,
  policy_jws TEXT NOT NULL,
  signer_cert {{blob}},
  updated_at {{bigint}} NOT NULL
);
CREATE TABLE IF NOT EXISTS attestation_policy_certificates (
  thumbprint TEXT PRIMARY KEY,
  cert_der {{blob}} NOT NULL,
  added_at {{bigint}} NOT NULL
);
CREATE TABLE IF NOT EXISTS attestation_policy_version (
  id INTEGER PRIMARY KEY,
  version {{bigint}} NOT NULL
);
INSERT INTO attestation_policy_version (id, version) VALUES (1, 0);`,
  },
  {
    id: 305,
    name: 'attestation policies and policy-management certificates carry a MAC under the master key (#14 item 4)',
    sql: `
ALTER TABLE attestation_policies ADD COLUMN integrity TEXT;
ALTER TABLE attestation_policy_certificates ADD COLUMN integrity TEXT;`,
  },
];
