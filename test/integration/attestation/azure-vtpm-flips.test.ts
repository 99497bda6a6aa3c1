/**
 * A byte flip in each region of Azure CVM vTPM evidence, sent through the attestation routes, is refused
 * (400, never 500, no token) with the code of that region: the quote (`tpm.quote_signature_invalid`), a PCR
 * value (`tpm.pcr_digest_mismatch`), the attestation key (`tpm.ak_mismatch` where the client sends it; in
 * the HCL report the hardware report's REPORT_DATA no longer binds it: `snp.runtime_data_mismatch`) and
 * the boot event log (`tpm.eventlog_mismatch`).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { b64url } from '../../../src/core/bytes.js';
import { simulateAzureCvm } from '../../../src/evidence/azure-vtpm/testing.js';
import { TPM_ALG, encodeTpm2bPublic } from '../../../src/evidence/tpm/structures.js';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { readFixture, skipWithoutFixtures } from '../../fixtures.js';
import { startTestServer } from '../../helpers/server.js';
import { guestInfoFrom } from '../../helpers/azure-guest.js';

const skip = skipWithoutFixtures();

type Doc = Record<string, any>;
const milan = (): Doc => JSON.parse(readFixture('amd', 'azure-cvm-hcl-milan-trustee', 'evidence-v0.json').toString('utf8'));

/** Flips one byte of the HCLAkPub modulus inside the HCL report's runtime data JSON (trustee v0 byte array). */
function flipAkInReport(doc: Doc): Doc {
  const report = Buffer.from(doc.report as number[]);
  const at = report.indexOf(Buffer.from('"HCLAkPub"'));
  assert.ok(at > 0, 'the HCL runtime data names HCLAkPub');
  const n = report.indexOf(Buffer.from('"n":"'), at) + 5;
  report[n + 10] = report[n + 10] === 0x41 ? 0x42 : 0x41; // another base64url character
  return { ...doc, report: [...report] };
}

function editGuest(info: string, edit: (d: Doc) => void): string {
  const d = JSON.parse(Buffer.from(info, 'base64url').toString('utf8'));
  edit(d);
  return b64url(JSON.stringify(d));
}

function flipB64(s: string, at: (b: Buffer) => number): string {
  const b = Buffer.from(s, 'base64');
  b[at(b)]! ^= 0x01;
  return b.toString('base64');
}

describe('byte flips in Azure CVM vTPM evidence through the routes', { skip }, () => {
  test('SevSnpVm (real Milan CVM, trustee v0): quote, PCR value and AK each fail with their own code', async () => {
    const server = await startTestServer({}, { now: () => new Date('2025-06-01T00:00:00Z') });
    try {
      const send = async (doc: Doc) => server.send('POST', '/attest/SevSnpVm?api-version=2023-04-01-preview', { body: { report: b64url(JSON.stringify(doc)) } });
      assert.equal((await send(milan())).status, 200);

      const quote = milan();
      quote.quote.message[40] ^= 0x01;
      const pcr = milan();
      pcr.quote.pcrs[7][3] ^= 0x01;
      const sig = milan();
      sig.quote.signature[17] ^= 0x01;
      for (const [what, doc, code] of [
        ['quote', quote, 'tpm.quote_signature_invalid'],
        ['quote signature', sig, 'tpm.quote_signature_invalid'],
        ['PCR 7 value', pcr, 'tpm.pcr_digest_mismatch'],
        ['HCLAkPub in the HCL report', flipAkInReport(milan()), 'snp.runtime_data_mismatch'],
      ] as const) {
        const r = await send(doc);
        assert.equal(r.status, 400, `${what}: ${r.text}`);
        assert.equal(r.json().error.code, code, what);
        assert.equal(r.json().token, undefined);
      }
    } finally {
      await server.stop();
    }
  });

  test('AzureGuest (real Milan CVM): the AIK sent that is not HCLAkPub is tpm.ak_mismatch; a PCR value tpm.pcr_digest_mismatch', async () => {
    const server = await startTestServer({}, { now: () => new Date('2025-06-01T00:00:00Z') });
    try {
      const info = guestInfoFrom(readFixture('amd', 'azure-cvm-hcl-milan-trustee', 'evidence-v0.json'));
      const send = async (AttestationInfo: string) => server.send('POST', '/attest/AzureGuest?api-version=2020-10-01', { body: { AttestationInfo } });
      assert.equal((await send(info)).status, 200);
      // The modulus sits at the end of the TPM2B_PUBLIC.
      const ak = editGuest(info, (d) => {
        d.TpmInfo.AikPub = flipB64(d.TpmInfo.AikPub, (b) => b.length - 20);
      });
      const r = await send(ak);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json().error.code, 'tpm.ak_mismatch');
      const pcr = editGuest(info, (d) => {
        d.TpmInfo.PCRs[0].Digest = flipB64(d.TpmInfo.PCRs[0].Digest, () => 0);
      });
      const p = await send(pcr);
      assert.equal(p.status, 400, p.text);
      assert.equal(p.json().error.code, 'tpm.pcr_digest_mismatch');
    } finally {
      await server.stop();
    }
  });

  test('attack: AzureGuest with an AikPub that is no usable key (an ECC point off its curve, an empty RSA modulus) is a 400, not a 500', async () => {
    // The hardware evidence and runtime data are a real Azure CVM's (public data: anyone can replay them);
    // only the AikPub, a TPM2B_PUBLIC the caller writes, is replaced.
    const server = await startTestServer({}, { now: () => new Date('2025-06-01T00:00:00Z') });
    try {
      const info = guestInfoFrom(readFixture('amd', 'azure-cvm-hcl-milan-trustee', 'evidence-v0.json'));
      const send = async (AttestationInfo: string) => server.send('POST', '/attest/AzureGuest?api-version=2020-10-01', { body: { AttestationInfo } });
      const common = { nameAlg: TPM_ALG.SHA256, objectAttributes: 0, authPolicy: new Uint8Array(0), symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.NULL, hashAlg: TPM_ALG.NULL } };
      const offCurve = encodeTpm2bPublic({ ...common, type: 'ecc', curveId: 3, kdf: { scheme: TPM_ALG.NULL, hashAlg: TPM_ALG.NULL }, x: new Uint8Array(32).fill(1), y: new Uint8Array(32).fill(2) });
      const noModulus = encodeTpm2bPublic({ ...common, type: 'rsa', keyBits: 0, exponent: 0, modulus: new Uint8Array(0) });
      for (const [what, area] of [
        ['ECC point off P-256', offCurve],
        ['RSA key without a modulus', noModulus],
      ] as const) {
        const r = await send(editGuest(info, (d) => {
          d.TpmInfo.AikPub = Buffer.from(area).toString('base64');
        }));
        assert.equal(r.status, 400, `${what}: ${r.text}`);
        assert.match(r.json().error.code, /^tpm\./, what);
      }
    } finally {
      await server.stop();
    }
  });

  test('AzureGuest with a boot event log (simulated CVM): a flipped log byte is tpm.eventlog_mismatch', async () => {
    const server = await startTestServer({ simulate: true });
    try {
      const cvm = simulateAzureCvm(loadOrCreateSimulatedTee(server.dataDir).snp, { secureBoot: true });
      const guest = cvm.guestInfo({ clientPayload: { nonce: 'n' } });
      const send = async (AttestationInfo: string) => server.send('POST', '/attest/AzureGuest?api-version=2023-04-01-preview', { body: { AttestationInfo } });
      assert.equal((await send(guest.attestationInfo)).status, 200);
      const flipped = editGuest(guest.attestationInfo, (d) => {
        assert.ok(Buffer.from(d.TcgLogs, 'base64').length > 100, 'the simulated guest sends its event log');
        // A byte of the SHA-256 digest of the shim's event (digest, u32 event size, then "shimx64.efi").
        d.TcgLogs = flipB64(d.TcgLogs, (b) => b.indexOf(Buffer.from('shimx64.efi')) - 4 - 32 + 5);
      });
      const r = await send(flipped);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json().error.code, 'tpm.eventlog_mismatch');
    } finally {
      await server.stop();
    }
  });
});
