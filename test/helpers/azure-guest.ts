/**
 * An AzureGuest `AttestationInfo` document built from trustee's Azure vTPM evidence, for tests of
 * `/attest/AzureGuest` on the real Azure CVM vectors.
 */
import { parseAzureVtpmEvidence } from '../../src/evidence/azure-vtpm/evidence.js';
import { encodeGuestAttestationInfo } from '../../src/evidence/azure-vtpm/guest.js';
import { parseHclReport, parseHclRuntimeClaims } from '../../src/evidence/azure-vtpm/hcl.js';
import { akPublicAreaFromJwk } from '../../src/evidence/tpm/testing.js';

/** An AzureGuest AttestationInfo built from trustee evidence (no event log, no ephemeral key: the fixtures carry none). */
export function guestInfoFrom(evidenceJson: Buffer): string {
  const ev = parseAzureVtpmEvidence(evidenceJson)!;
  const hcl = parseHclReport(ev.hclReport);
  const doc = JSON.parse(evidenceJson.toString('utf8'));
  const pem = typeof doc.vcek === 'string' ? doc.vcek : undefined;
  return encodeGuestAttestationInfo({
    protocolVersion: '2.0',
    os: { type: 'Linux', distro: 'Ubuntu', build: 'NotApplication', versionMajor: 22, versionMinor: 4 },
    tcgLog: new Uint8Array(0),
    clientPayload: { nonce: 'n-123' },
    tpm: { aikCert: new Uint8Array(0), aikPub: akPublicAreaFromJwk(parseHclRuntimeClaims(hcl.runtimeData).hclAkPub!), quote: ev.tpmQuote.message, signature: ev.tpmQuote.signature, pcrs: ev.tpmQuote.pcrs },
    isolation: ev.tdQuote
      ? { type: 'Tdx', tdQuote: ev.tdQuote, runtimeData: hcl.runtimeData }
      : { type: 'SevSnp', snpReport: hcl.hwReport, vcekCertChainPem: pem, runtimeData: hcl.runtimeData },
  });
}
