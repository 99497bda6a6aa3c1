import { type KeyObject, sign as cryptoSign } from 'node:crypto';
import { SNP_SIGNED_SIZE, SNP_REPORT_SIZE, setSnpReportSignature } from './report.js';
import { fail } from '../../core/errors.js';

/**
 * Returns a copy of `report` with the ECDSA P-384/SHA-384
 * signature of bytes 0x000–0x29F written as little-endian r and s. For the simulated TEE and tests,
 * whose VCEK is their own.
 */
export function signSnpReport(report: Uint8Array, vekPrivateKey: KeyObject): Uint8Array {
  if (report.byteLength !== SNP_REPORT_SIZE) throw fail('snp.malformed', 'an SNP report to sign must be 1184 bytes', { length: report.byteLength });
  const out = new Uint8Array(report);
  const sig = cryptoSign('sha384', out.subarray(0, SNP_SIGNED_SIZE), { key: vekPrivateKey, dsaEncoding: 'ieee-p1363' });
  setSnpReportSignature(out, sig.subarray(0, 48), sig.subarray(48, 96));
  return out;
}
