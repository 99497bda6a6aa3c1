import assert from 'node:assert/strict';
import { constants, createHash, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import { readFixture, skipWithoutFixtures } from '../../../test/fixtures.js';
import { isConclaveError } from '../../core/errors.js';
import { checkEventLog, parseTcgEventLog, readBootConfiguration } from '../tpm/eventlog.js';
import { verifyTpmQuote } from '../tpm/quote.js';
import { encodeTpmsAttest, encodeTpmtPublic, objectName, TPM_ALG } from '../tpm/structures.js';
import { FakeTpm } from '../tpm/testing.js';
import { TPMA_OBJECT } from '../tpm/structures.js';
import { generateRsaKeyPair, type KeyPair } from '../../core/keygen.js';
import { type AzureVtpmEvidence, parseAzureVtpmEvidence } from './evidence.js';
import { parseHclReport, parseHclRuntimeClaims } from './hcl.js';
import { verifyVtpmEvidence } from './vtpm.js';

const skip = skipWithoutFixtures();

const REAL: readonly [string, () => Buffer][] = [
  ['SNP Milan v0', () => readFixture('amd', 'azure-cvm-hcl-milan-trustee', 'evidence-v0.json')],
  ['SNP Genoa v0', () => readFixture('amd', 'azure-cvm-hcl-genoa-trustee', 'evidence-genoa.json')],
  ['SNP v1', () => readFixture('azure-vtpm-trustee', 'az-snp-vtpm-evidence-v1.json')],
  ['SNP v2', () => readFixture('azure-vtpm-trustee', 'az-snp-vtpm-evidence-v2.json')],
  ['TDX v0', () => readFixture('azure-vtpm-trustee', 'az-tdx-vtpm-evidence-v0.json')],
  ['TDX v1', () => readFixture('intel', 'tdx-v4-azure-trustee', 'evidence-v1.json')],
];

function akOf(e: AzureVtpmEvidence): Record<string, unknown> | undefined {
  return parseHclRuntimeClaims(parseHclReport(e.hclReport).runtimeData).hclAkPub;
}

function verify(e: AzureVtpmEvidence, over: Partial<Parameters<typeof verifyVtpmEvidence>[0]> = {}) {
  return verifyVtpmEvidence({ hclAkPub: akOf(e), quote: e.tpmQuote, ...over });
}

function code(c: string) {
  return (e: unknown) => isConclaveError(e) && e.code === c;
}

describe('Azure vTPM evidence (trustee forms) on real Azure CVMs', { skip }, () => {
  test('every published form parses and its quote verifies with HCLAkPub', () => {
    for (const [name, load] of REAL) {
      const e = parseAzureVtpmEvidence(load());
      assert.ok(e, name);
      const r = verify(e);
      assert.equal(r.quote.pcrs.length, 24, name);
      assert.equal(e.form, name.startsWith('TDX') ? 'trustee-az-tdx-vtpm' : 'trustee-az-snp-vtpm');
    }
  });

  test('v2: the quote nonce is the report data the HCL user-data carries', () => {
    const e = parseAzureVtpmEvidence(readFixture('azure-vtpm-trustee', 'az-snp-vtpm-evidence-v2.json'))!;
    assert.equal(e.version, 2);
    const claims = parseHclRuntimeClaims(parseHclReport(e.hclReport).runtimeData);
    const nonce = Buffer.from(claims.userData!, 'hex').subarray(0, 48);
    assert.equal(verify(e, { expectedNonce: nonce }).quote.extraData.byteLength, 48);
    assert.throws(() => verify(e, { expectedNonce: Buffer.from('challenge') }), code('tpm.nonce_mismatch'));
  });

  test('a byte flip in the quote, a PCR value, the AK or the signature fails with its own code', () => {
    const e = parseAzureVtpmEvidence(readFixture('amd', 'azure-cvm-hcl-milan-trustee', 'evidence-v0.json'))!;
    // Any byte of the signed TPMS_ATTEST: the signature no longer verifies (or the structure no longer parses).
    for (let i = 0; i < e.tpmQuote.message.byteLength; i += 7) {
      const message = Uint8Array.from(e.tpmQuote.message);
      message[i]! ^= 0x01;
      assert.throws(
        () => verify(e, { quote: { ...e.tpmQuote, message } }),
        (err: unknown) => isConclaveError(err) && ['tpm.quote_signature_invalid', 'tpm.malformed', 'tpm.truncated', 'tpm.unsupported'].includes(err.code),
        `message byte ${i}`,
      );
    }
    const pcrs = e.tpmQuote.pcrs.map((p) => ({ ...p, value: Uint8Array.from(p.value) }));
    pcrs[7]!.value[0]! ^= 0x80;
    assert.throws(() => verify(e, { quote: { ...e.tpmQuote, pcrs } }), code('tpm.pcr_digest_mismatch'));
    const signature = Uint8Array.from(e.tpmQuote.signature);
    signature[100]! ^= 0x01;
    assert.throws(() => verify(e, { quote: { ...e.tpmQuote, signature } }), code('tpm.quote_signature_invalid'));
    const ak = { ...akOf(e)! };
    const n = Buffer.from(ak.n as string, 'base64url');
    n[10]! ^= 0x01;
    assert.throws(() => verify(e, { hclAkPub: { ...ak, n: n.toString('base64url') } }), code('tpm.quote_signature_invalid'));
    assert.throws(() => verify(e, { hclAkPub: undefined }), code('tpm.ak_mismatch'));
    // Another vTPM's AK (the Genoa VM's) cannot vouch for the Milan quote.
    const genoa = parseAzureVtpmEvidence(readFixture('amd', 'azure-cvm-hcl-genoa-trustee', 'evidence-genoa.json'))!;
    assert.throws(() => verify(e, { hclAkPub: akOf(genoa) }), code('tpm.quote_signature_invalid'));
  });

  test('az-tdx-vtpm version 2 (v1 fields, HCL user-data bound) is read like version 1', () => {
    // trustee publishes no TDX v2 vector; its compat layer reads any versioned document with v1's fields.
    const v1 = JSON.parse(readFixture('intel', 'tdx-v4-azure-trustee', 'evidence-v1.json').toString('utf8'));
    const e = parseAzureVtpmEvidence(Buffer.from(JSON.stringify({ ...v1, version: 2 })))!;
    assert.equal(e.form, 'trustee-az-tdx-vtpm');
    assert.equal(e.version, 2);
    assert.ok(e.tdQuote && e.tdQuote.byteLength > 1000);
    assert.equal(verify(e).quote.pcrs.length, 24);
  });

  test('malformed documents are typed errors, other JSON is not claimed', () => {
    const doc = JSON.parse(readFixture('azure-vtpm-trustee', 'az-snp-vtpm-evidence-v1.json').toString('utf8'));
    assert.equal(parseAzureVtpmEvidence(Buffer.from('{"report":"x"}')), undefined);
    assert.equal(parseAzureVtpmEvidence(Buffer.from('not json')), undefined);
    assert.throws(() => parseAzureVtpmEvidence(Buffer.from(JSON.stringify({ ...doc, version: 3 }))), code('tpm.unsupported'));
    assert.throws(() => parseAzureVtpmEvidence(Buffer.from(JSON.stringify({ ...doc, tpm_quote: { ...doc.tpm_quote, pcrs: doc.tpm_quote.pcrs.slice(1) } }))), code('tpm.pcr_digest_mismatch'));
    assert.throws(() => parseAzureVtpmEvidence(Buffer.from(JSON.stringify({ ...doc, tpm_quote: { ...doc.tpm_quote, message: 'zz' } }))), code('tpm.malformed'));
    assert.throws(() => parseAzureVtpmEvidence(Buffer.from(JSON.stringify({ ...doc, tpm_quote: { ...doc.tpm_quote, message: doc.tpm_quote.message.slice(0, 40) } }))), code('tpm.truncated'));
  });
});

describe('vTPM evidence with a boot event log (fake TPM)', () => {
  // One AK (RSA-2048, about 0.15 s of CPU to make) for the TPMs of this describe; each has its own PCRs and
  // log. The test that needs another TPM's AK makes one.
  let ak: KeyPair | undefined;
  const fakeTpm = () => new FakeTpm({ ak: (ak ??= generateRsaKeyPair(2048)) });

  test('the log replays to the quote; secure boot read from PCR 7', () => {
    const tpm = fakeTpm().bootLinux(true);
    const q = tpm.quote([0, 1, 2, 3, 4, 5, 6, 7], Buffer.from('nonce'));
    const r = verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), akPublicArea: tpm.akPublicArea(), quote: q, eventLog: tpm.eventLog(), expectedNonce: Buffer.from('nonce') });
    assert.deepEqual(r.replay?.replayedPcrs, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(r.boot?.secureBoot, true);
    assert.equal(r.boot?.complete, true);
    assert.equal(r.boot?.kernelDebugging, false);

    const off = fakeTpm().bootLinux(false);
    const q2 = off.quote([0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(verifyVtpmEvidence({ hclAkPub: off.akJwk(), quote: q2, eventLog: off.eventLog() }).boot?.secureBoot, false);
  });

  test('a byte flip in the event log, a hidden extend or another VM\'s log fails with tpm.eventlog_mismatch', () => {
    const tpm = fakeTpm().bootLinux(true);
    const q = tpm.quote([0, 1, 2, 3, 4, 5, 6, 7]);
    const log = tpm.eventLog();
    // Flip a digest byte of the last event (PCR 4): replay differs from the quote.
    const flipped = Uint8Array.from(log);
    flipped[flipped.byteLength - 11 - 4 - 32 + 5]! ^= 0x01;
    assert.throws(() => verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), quote: q, eventLog: flipped }), code('tpm.eventlog_mismatch'));
    // The SecureBoot event data changed to "off" while its digest still says "on": its content is not trusted.
    const sb = Buffer.from(log);
    const at = sb.indexOf(Buffer.from('SecureBoot', 'utf16le'));
    sb[at + 20]! ^= 0x01;
    assert.throws(() => verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), quote: q, eventLog: sb }), code('tpm.eventlog_mismatch'));
    // Extends the log does not show.
    tpm.extend(0, new Uint8Array(32).fill(7));
    const q2 = tpm.quote([0, 1, 2, 3, 4, 5, 6, 7]);
    assert.throws(() => verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), quote: q2, eventLog: log }), code('tpm.eventlog_mismatch'));
    // Garbage and the old SHA-1 log format are refused with their own codes.
    assert.throws(() => verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), quote: q2, eventLog: Uint8Array.of(1, 2, 3) }), code('tpm.truncated'));
    const sha1Log = Buffer.alloc(48);
    sha1Log.writeUInt32LE(16, 28);
    assert.throws(() => verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), quote: q2, eventLog: sha1Log }), code('tpm.unsupported'));
  });

  test('Windows boot configuration events set the debug flags; unreplayed ones make the set incomplete', () => {
    const tpm = fakeTpm().bootLinux(true);
    tpm.measureSipa([
      { type: 0x00050001, value: Uint8Array.of(1) }, // OSKERNELDEBUG on
      { type: 0x00050002, value: Uint8Array.of(1) }, // CODEINTEGRITY on
    ]);
    const q = tpm.quote([0, 1, 2, 3, 4, 5, 6, 7, 12]);
    const r = verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), quote: q, eventLog: tpm.eventLog() });
    assert.equal(r.boot?.windowsEvents, true);
    assert.equal(r.boot?.kernelDebugging, true);
    assert.equal(r.boot?.codeIntegrity, true);
    const q2 = tpm.quote([0, 1, 2, 3, 4, 5, 6, 7]);
    const r2 = verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), quote: q2, eventLog: tpm.eventLog() });
    assert.equal(r2.boot?.complete, false, 'PCR 12 was not quoted: the debug flags cannot vouch');
  });

  /** A SIPA event turning the kernel debugger on (OSKERNELDEBUG, 4-byte size 1, value 1), as Windows measures it into PCR 12. */
  const sipa = Buffer.concat([Buffer.from([0x01, 0x00, 0x05, 0x00]), Buffer.from([1, 0, 0, 0]), Buffer.from([1])]);

  test('attack: a quoted PCR whose boot configuration events were left out of the log does not yield "no debugger"', () => {
    // A Windows VM boots with the kernel debugger on (a SIPA OSKERNELDEBUG event in PCR 12) and sends a log
    // without PCR 12's events: PCR 12 is quoted but does not replay, and the log shows no debugger.
    const tpm = fakeTpm().bootLinux(true);
    tpm.extend(12, new Uint8Array(createHash('sha256').update(sipa).digest()));
    const q = tpm.quote([0, 1, 2, 3, 4, 5, 6, 7, 12]);
    const r = verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), quote: q, eventLog: tpm.eventLog() });
    assert.deepEqual(r.replay?.replayedPcrs, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(r.boot?.complete, false, 'PCR 12 is quoted but its events are not in the log: the debug flags cannot vouch');
    // PCRs the OS extends after the firmware log ends (PCR 10 of IMA, 16–23) carry no boot configuration.
    const ima = fakeTpm().bootLinux(true);
    ima.extend(10, new Uint8Array(32).fill(10));
    const q2 = ima.quote([0, 1, 2, 3, 4, 5, 6, 7, 10]);
    const r2 = verifyVtpmEvidence({ hclAkPub: ima.akJwk(), quote: q2, eventLog: ima.eventLog() });
    assert.deepEqual(r2.replay?.unreplayedPcrs, [10]);
    assert.equal(r2.boot?.complete, true);
    // Each boot configuration PCR on its own (11 BitLocker, 13 boot modules, 14 boot authorities, as 12 above):
    // quoted, extended outside the log, the set is incomplete.
    for (const pcr of [11, 13, 14]) {
      const w = fakeTpm().bootLinux(true);
      w.extend(pcr, new Uint8Array(createHash('sha256').update(sipa).digest()));
      const qp = w.quote([0, 1, 2, 3, 4, 5, 6, 7, pcr]);
      const rp = verifyVtpmEvidence({ hclAkPub: w.akJwk(), quote: qp, eventLog: w.eventLog() });
      assert.deepEqual(rp.replay?.unreplayedPcrs, [pcr]);
      assert.equal(rp.boot?.complete, false, `PCR ${pcr} is quoted but its events are not in the log: the debug flags cannot vouch`);
    }
  });

  test('attack: a PCR quoted only in another bank than the one the log is replayed in does not yield "no debugger" either', () => {
    // /attest/Tpm takes PCR banks of the client's choosing and its required_pcr_mask counts PCR indexes: a
    // Windows machine booted with the kernel debugger on quotes PCRs 0-7 in SHA-256 and PCR 12 in SHA-1 only,
    // and sends a log without PCR 12's events. The log is replayed in SHA-256, where PCR 12 is not quoted.
    const tpm = fakeTpm().bootLinux(true);
    tpm.extend(12, new Uint8Array(createHash('sha256').update(sipa).digest()));
    const sha1Pcr12 = new Uint8Array(createHash('sha1').update(Buffer.alloc(20)).update(createHash('sha1').update(sipa).digest()).digest());
    const boot = [0, 1, 2, 3, 4, 5, 6, 7];
    const pcrs = [...boot.map((index) => ({ hashAlg: TPM_ALG.SHA256, index, value: tpm.pcr(index) })), { hashAlg: TPM_ALG.SHA1, index: 12, value: sha1Pcr12 }];
    const attest = encodeTpmsAttest({
      type: 'quote',
      qualifiedSigner: objectName(encodeTpmtPublic(tpm.akArea), TPM_ALG.SHA256),
      extraData: new Uint8Array(0),
      clockInfo: { clock: 1n, resetCount: 1, restartCount: 0, safe: true },
      firmwareVersion: 1n,
      pcrSelect: [
        { hashAlg: TPM_ALG.SHA256, pcrs: boot },
        { hashAlg: TPM_ALG.SHA1, pcrs: [12] },
      ],
      pcrDigest: new Uint8Array(createHash('sha256').update(Buffer.concat(pcrs.map((p) => p.value))).digest()),
    });
    const signature = new Uint8Array(sign('sha256', attest, { key: tpm.akPrivate, padding: constants.RSA_PKCS1_PADDING }));
    // What /attest/Tpm does with a request's quote and TCG log (src/attestation/tpm-protocol.ts).
    const quote = verifyTpmQuote({ attest, signature: { format: 'rsassa-sha256', bytes: signature }, ak: tpm.akPublic, pcrs });
    assert.deepEqual(
      quote.pcrs.map((p) => p.index),
      [...boot, 12],
      'PCR 12 is quoted (required_pcr_mask counts it as covered)',
    );
    const config = readBootConfiguration(checkEventLog(parseTcgEventLog(tpm.eventLog()), quote));
    assert.equal(config.complete, false, 'PCR 12 is quoted (SHA-1) but the log does not reproduce it: the debug flags cannot vouch');
  });

  test('the AK sent must be HCLAkPub; the certified encryption key must be PolicyPCR-bound', () => {
    const tpm = fakeTpm().bootLinux(true);
    const other = new FakeTpm();
    const pcrs = [0, 1, 2, 3, 4, 5, 6, 7];
    const q = tpm.quote(pcrs);
    assert.throws(() => verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), akPublicArea: other.akPublicArea(), quote: q }), code('tpm.ak_mismatch'));
    const key = tpm.ephemeralKey(pcrs);
    const r = verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), quote: q, encryptionKey: key });
    assert.equal(r.encryptionKey?.jwk.kty, 'RSA');
    // Certified by another TPM's AK.
    const foreign = other.ephemeralKey(pcrs);
    assert.throws(() => verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), quote: q, encryptionKey: foreign }), code('tpm.key_certification_invalid'));
    // A key bound to other PCR values (created before a PCR changed).
    const stale = tpm.ephemeralKey(pcrs);
    tpm.measure(5, 4, Buffer.from('late'));
    const q2 = tpm.quote(pcrs);
    assert.throws(() => verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), quote: q2, encryptionKey: stale }), code('tpm.key_certification_invalid'));
    // attack: a key whose authPolicy is the PolicyPCR digest but with userWithAuth set, which lets the TPM use
    // it with its (empty) password instead of the policy (Part 1 §19.7.1): usable in any PCR state.
    const password = tpm.ephemeralKey(pcrs, undefined, TPMA_OBJECT.decrypt | TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.userWithAuth);
    assert.throws(() => verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), quote: q2, encryptionKey: password }), code('tpm.key_certification_invalid'), 'userWithAuth: the PolicyPCR binding can be bypassed');
    // The public area swapped for another key under the same certification.
    assert.throws(() => verifyVtpmEvidence({ hclAkPub: tpm.akJwk(), quote: q2, encryptionKey: { ...tpm.ephemeralKey(pcrs), publicArea: foreign.publicArea } }), code('tpm.key_certification_invalid'));
  });
});
