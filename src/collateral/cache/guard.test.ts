/**
 * Target and forward checks of upstream answers (issue #23 items 2 and 4) on real vendor-signed
 * collateral: each case is an answer Intel or AMD really signed, offered for the wrong target or in
 * place of a newer one.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readFixture, readFixtureJson, readFixtureText, skipWithoutFixtures } from '../../../test/fixtures.js';
import { pckCertAnswer } from '../../../test/helpers/pcs-standin.js';
import { certIdFor, verifyOcspResponse } from '../../core/ocsp.js';
import { crlBytes, parseCertificate, pemToDer } from '../../core/x509.js';
import { createFakeNvidiaHierarchy, makeFakeOcspResponse } from '../../evidence/nvidia/testing.js';
import { createFakeSnpHierarchy, makeFakeAmdCrl } from '../../evidence/snp/testing.js';
import { parseVekExtensions } from '../../evidence/snp/vek.js';
import { ocspScope } from '../nvidia.js';
import { checkCollateralForward, checkCollateralTarget } from './guard.js';
import { type CollateralItem, type CollateralKind, signedDatesOf } from './item.js';

const skip = skipWithoutFixtures();
type Item = Parameters<typeof checkCollateralTarget>[0];

function item(kind: CollateralKind, scope: string, body: Uint8Array | string, opts: { source?: string; meta?: Partial<CollateralItem['meta']> } = {}): Item {
  const bytes = typeof body === 'string' ? new Uint8Array(Buffer.from(body)) : body;
  const dates = signedDatesOf(kind, bytes);
  return {
    key: dates.evalNumber !== null ? `${scope}#${dates.evalNumber}` : scope,
    kind,
    scope,
    body: bytes,
    source: opts.source ?? `https://pcs.example/${scope}`,
    meta: { contentType: 'application/json', ...opts.meta },
    evalNumber: dates.evalNumber,
    issueDate: dates.issueDate,
  };
}

const teepot = (f: string) => readFixtureJson<Record<string, string>>('intel', 'pcs-responses-teepot', f);
const identity = (f: string) => teepot(f).enclave_identity_json!;
const crl = (...p: string[]) => new Uint8Array(crlBytes(new Uint8Array(readFixture(...p))));
const code = (c: string) => (e: { code?: string }) => e.code === c;

describe('checkCollateralTarget: an answer for another target is refused', { skip }, () => {
  test('TCB info: another FMSPC, the other TEE, another evaluation number than asked', () => {
    const tdx90 = readFixtureText('intel', 'tdx-v5-fmspc90C06F', 'tcb_info_response.json');
    assert.doesNotThrow(() => checkCollateralTarget(item('tcb', 'tdx/v4/tcb/90C06F000000', tdx90)));
    const other = readFixtureText('intel', 'tdx-v4-phala', 'tcb_info_response.json');
    assert.throws(() => checkCollateralTarget(item('tcb', 'tdx/v4/tcb/90C06F000000', other)), code('upstream.collateral_mismatch'));
    const sgx = teepot('sgx_tcb_info_00906ED50000.json').tcb_info_json!;
    assert.throws(() => checkCollateralTarget(item('tcb', 'tdx/v4/tcb/00906ED50000', sgx)), code('upstream.collateral_mismatch'), 'an SGX TCB info for a TDX scope');
    assert.throws(
      () => checkCollateralTarget(item('tcb', 'tdx/v4/tcb/90C06F000000', tdx90, { source: 'https://pcs.example/tdx/certification/v4/tcb?fmspc=90C06F000000&tcbEvaluationDataNumber=17' })),
      code('upstream.collateral_mismatch'),
    );
  });

  test('identities: the SGX QE identity as the TDX one, QVE as QE', () => {
    assert.doesNotThrow(() => checkCollateralTarget(item('qe_identity', 'tdx/v4/qe/identity', identity('tdx_qe_identity.json'))));
    assert.throws(() => checkCollateralTarget(item('qe_identity', 'tdx/v4/qe/identity', identity('sgx_qe_identity.json'))), code('upstream.collateral_mismatch'));
    assert.throws(() => checkCollateralTarget(item('qe_identity', 'sgx/v4/qe/identity', identity('sgx_qve_identity.json'))), code('upstream.collateral_mismatch'));
    assert.throws(() => checkCollateralTarget(item('tcb_eval_numbers', 'sgx/v4/tcbevaluationdatanumbers', teepot('tdx_tcb_eval_nums.json').tcb_evaluation_data_numbers_json!)), code('upstream.collateral_mismatch'));
  });

  test('PCK CRL: the Processor-CA CRL as the Platform CRL', () => {
    const processor = crl('intel', 'sgx-v3-phala', 'pck_crl.der');
    const platform = crl('intel', 'tdx-v5-fmspc90C06F', 'pck_crl.der');
    assert.doesNotThrow(() => checkCollateralTarget(item('pckcrl', 'sgx/pckcrl/platform', platform)));
    assert.throws(() => checkCollateralTarget(item('pckcrl', 'sgx/pckcrl/platform', processor)), code('upstream.collateral_mismatch'));
    assert.throws(() => checkCollateralTarget(item('rootcacrl', 'sgx/rootcacrl', platform)), code('upstream.collateral_mismatch'));
  });

  test("VCEK: chip B's certificate for chip A, or for another reported TCB", () => {
    const chipA = Buffer.from(pemToDer(readFixtureText('amd', 'azure-cvm-hcl-milan-trustee', 'vcek.pem'))[0]!);
    const chipB = readFixture('amd', 'snp-milan-virtee', 'vcek.der');
    const trustee = readFixture('amd', 'snp-milan-trustee', 'vcek.der');
    // snp-milan-trustee and snp-milan-virtee: two chips, the same TCB 3.0.8.115.
    const hwid = (der: Uint8Array) => Buffer.from(parseVekExtensions(parseCertificate(der)).hwId!).toString('hex');
    const scope = `amd/vcek/Milan/${hwid(trustee)}/3-0-8-115`;
    assert.doesNotThrow(() => checkCollateralTarget(item('vcek', scope, new Uint8Array(trustee))));
    assert.throws(() => checkCollateralTarget(item('vcek', scope, new Uint8Array(chipB))), code('upstream.collateral_mismatch'));
    assert.throws(() => checkCollateralTarget(item('vcek', `amd/vcek/Milan/${hwid(trustee)}/3-0-8-116`, new Uint8Array(trustee))), code('upstream.collateral_mismatch'));
    assert.throws(() => checkCollateralTarget(item('vcek', scope, new Uint8Array(chipA))), code('upstream.collateral_mismatch'));
  });

  test('PCK certificate: header and certificate agree, the PCE-ID asked for, one platform per id', () => {
    const a = pckCertAnswer(['intel', 'sgx-v3-phala', 'quote.bin']);
    const h = a.headers!;
    const meta = { fmspc: h['SGX-FMSPC'], tcbm: h['SGX-TCBm'], caType: h['SGX-PCK-Certificate-CA-Type'] };
    const tcbm = Buffer.from(h['SGX-TCBm']!, 'hex');
    const cpusvn = tcbm.subarray(0, 16).toString('hex');
    const pcesvn = tcbm.subarray(16).toString('hex').toUpperCase();
    const ok = item('pckcert', `sgx/pckcert/0000/qe:00/${cpusvn}/${pcesvn}`, String(a.body), { meta });
    const { ppid } = checkCollateralTarget(ok);
    assert.match(ppid ?? '', /^[0-9a-f]{32}$/);
    assert.throws(() => checkCollateralTarget(item('pckcert', `sgx/pckcert/0001/qe:00/${cpusvn}/${pcesvn}`, String(a.body), { meta })), code('upstream.collateral_mismatch'), 'PCE-ID');
    assert.throws(() => checkCollateralTarget(ok, 'ffffffffffffffffffffffffffffffff'), code('upstream.collateral_mismatch'), 'another platform');
    assert.throws(() => checkCollateralTarget(item('pckcert', ok.scope, String(a.body), { meta: { ...meta, fmspc: '00906ED50000' } })), code('upstream.collateral_mismatch'), 'FMSPC header');
    const lower = `${'00'.repeat(16)}`;
    assert.throws(() => checkCollateralTarget(item('pckcert', `sgx/pckcert/0000/qe:00/${lower}/${pcesvn}`, String(a.body), { meta })), code('upstream.collateral_mismatch'), 'TCB above the raw TCB');
  });

  test('attack: a PCK certificate set whose unsigned tcb / tcbm labels claim another TCB than the certificate it labels', () => {
    // The labels of a pckcerts entry are unsigned JSON beside the certificate; the cache selects a
    // certificate for a raw TCB by them (platforms.ts fromSet) and serves its label as SGX-TCBm. A set
    // labelling a certificate with a lower TCB than its own would be selected for raw TCBs below the
    // certificate's (what the single pckcert answer refuses as "above the raw TCB asked for").
    const a = pckCertAnswer(['intel', 'sgx-v3-phala', 'quote.bin']);
    const h = a.headers!;
    const meta = { fmspc: h['SGX-FMSPC'], caType: h['SGX-PCK-Certificate-CA-Type'], issuerChain: decodeURIComponent(h['SGX-PCK-Certificate-Issuer-Chain']!) };
    const entry = (tcbm: Buffer) => {
      const tcb: Record<string, number> = {};
      for (let i = 0; i < 16; i++) tcb[`sgxtcbcomp${String(i + 1).padStart(2, '0')}svn`] = tcbm[i]!;
      tcb.pcesvn = tcbm.readUInt16LE(16);
      return { tcb, tcbm: tcbm.toString('hex').toUpperCase(), cert: encodeURIComponent(String(a.body)) };
    };
    const real = Buffer.from(h['SGX-TCBm']!, 'hex');
    const scope = 'sgx/pckcerts/0000/qe:00';
    assert.doesNotThrow(() => checkCollateralTarget(item('pckcerts', scope, JSON.stringify([entry(real)]), { meta })), 'labels that are the certificate\'s own TCB');
    const lowered = Buffer.alloc(18);
    assert.throws(() => checkCollateralTarget(item('pckcerts', scope, JSON.stringify([entry(lowered)]), { meta })), code('upstream.collateral_mismatch'), 'tcb and tcbm labels below the certificate');
    const tcbmOnly = { ...entry(real), tcbm: lowered.toString('hex').toUpperCase() };
    assert.throws(() => checkCollateralTarget(item('pckcerts', scope, JSON.stringify([tcbmOnly]), { meta })), code('upstream.collateral_mismatch'), 'a tcbm label (SGX-TCBm) that is not the certificate\'s');
    // The tcb label alone, which is what PCK selection reads (intel/pck.ts selectPckCert), with tcbm the certificate's own.
    const tcbOnly = { ...entry(lowered), tcbm: real.toString('hex').toUpperCase() };
    assert.throws(() => checkCollateralTarget(item('pckcerts', scope, JSON.stringify([tcbOnly]), { meta })), code('upstream.collateral_mismatch'), 'a tcb label (what selection reads) that is not the certificate\'s');
    // An entry with an empty cert is no "Not available": selection takes it (intel/pck.ts), so its labels
    // would be served unchecked, with an empty certificate.
    const empty = { ...entry(Buffer.alloc(18, 0xff)), cert: '' };
    assert.throws(() => checkCollateralTarget(item('pckcerts', scope, JSON.stringify([entry(real), empty]), { meta })), code('collateral.malformed'), 'an entry with an empty cert');
  });
});

describe('checkCollateralForward: cached collateral only moves forward', { skip }, () => {
  test('a validly signed older PCK CRL (fewer revocations, expired) does not replace the newer one', () => {
    const newer = item('pckcrl', 'sgx/pckcrl/platform', crl('intel', 'tdx-v5-fmspc90C06F', 'pck_crl.der'));
    const older = item('pckcrl', 'sgx/pckcrl/platform', crl('intel', 'tdx-v4-azure-trustee', 'pck_crl.der'));
    assert.throws(() => checkCollateralForward(older, newer), code('upstream.collateral_rollback'));
    assert.doesNotThrow(() => checkCollateralForward(newer, older));
    assert.doesNotThrow(() => checkCollateralForward(newer, newer), 'the same CRL again');
  });

  test('TCB info and identities: a lower evaluation number, or an equal one with an older issueDate', () => {
    const n = (dir: string, f: string) => item('tcb', 'tdx/v4/tcb/00806F050000', readFixtureText('intel', dir, f));
    const oct = n('tdx-v4-azure-trustee', 'tcb_info.json');
    const jul = n('tdx-v4-automata', 'tcb_info_v3_with_tdx_module.json');
    assert.throws(() => checkCollateralForward(jul, oct), code('upstream.collateral_rollback'), 'equal number, older issueDate');
    assert.doesNotThrow(() => checkCollateralForward(oct, jul));
    const id18 = item('qe_identity', 'tdx/v4/qe/identity', readFixtureText('intel', 'tdx-v5-fmspc90C06F', 'qe_identity_response.json'));
    const id17 = item('qe_identity', 'tdx/v4/qe/identity', readFixtureText('intel', 'tdx-v4-azure-trustee', 'identity.json'));
    assert.throws(() => checkCollateralForward(id17, undefined, id18), code('upstream.collateral_rollback'), 'standard answer below the newest standard number');
    assert.doesNotThrow(() => checkCollateralForward(id18, undefined, id17));
  });
});

describe('checkCollateralForward: AMD CRLs of both key kinds only move forward (fake ARK: no AMD CRL is in the fixtures)', () => {
  test('attack: an older, validly signed VLEK CRL (before a revocation) does not replace the cached one, as for the VCEK CRL', () => {
    const h = createFakeSnpHierarchy();
    const older = makeFakeAmdCrl(h, [], new Date('2025-01-01T00:00:00Z'), new Date('2025-02-01T00:00:00Z'));
    const newer = makeFakeAmdCrl(h, ['10001'], new Date('2025-01-15T00:00:00Z'), new Date('2025-02-15T00:00:00Z'));
    for (const kind of ['vcek_crl', 'vlek_crl'] as const) {
      const scope = `amd/${kind}/Milan`;
      assert.throws(() => checkCollateralForward(item(kind, scope, older), item(kind, scope, newer)), code('upstream.collateral_rollback'), kind);
      assert.doesNotThrow(() => checkCollateralForward(item(kind, scope, newer), item(kind, scope, older)), kind);
      assert.doesNotThrow(() => checkCollateralForward(item(kind, scope, newer), item(kind, scope, newer)), `${kind}: the same CRL again`);
    }
  });
});

describe('checkCollateralForward: an NVIDIA OCSP answer moves forward by its response for the CertID it is stored under (fake NVIDIA PKI)', () => {
  test('attack: an answer whose first response is a later one for another certificate, and whose response for this one is an older "good", does not replace a cached "revoked"', () => {
    // A response may hold several single responses (one per CertID of the request). The guard compared the
    // first one's thisUpdate, verification reads the one for the item's CertID: a validly signed answer
    // listing another certificate first, with a later thisUpdate, undid a revocation.
    const h = createFakeNvidiaHierarchy();
    const id = certIdFor(h.brom.cert, h.archCa.cert, 'sha384');
    const scope = ocspScope(id);
    const target = { cert: h.brom.cert, issuer: h.archCa.cert };
    const revoked = makeFakeOcspResponse(h, { ...target, status: 'revoked', thisUpdate: new Date('2025-01-02T12:00:00Z') });
    const replay = makeFakeOcspResponse(h, { ...target, status: 'good', thisUpdate: new Date('2025-01-02T00:00:00Z'), others: [{ cert: h.archCa.cert, issuer: h.deviceRoot.cert, thisUpdate: new Date('2025-01-03T00:00:00Z') }] });
    // Verification of that answer for this CertID reads its older "good".
    const at = new Date('2025-01-03T06:00:00Z');
    assert.equal(verifyOcspResponse(replay, { target: { certId: id }, root: h.deviceRoot.cert, at }).status, 'good');
    assert.throws(() => checkCollateralForward(item('nvidia_ocsp', scope, replay), item('nvidia_ocsp', scope, revoked)), code('upstream.collateral_rollback'));
    // An answer whose response for this CertID is later still replaces it, wherever that response is listed.
    const later = makeFakeOcspResponse(h, { ...target, status: 'good', thisUpdate: new Date('2025-01-02T18:00:00Z'), others: [{ cert: h.archCa.cert, issuer: h.deviceRoot.cert, thisUpdate: new Date('2025-01-01T00:00:00Z') }] });
    assert.doesNotThrow(() => checkCollateralForward(item('nvidia_ocsp', scope, later), item('nvidia_ocsp', scope, revoked)));
    assert.doesNotThrow(() => checkCollateralForward(item('nvidia_ocsp', scope, revoked), item('nvidia_ocsp', scope, revoked)), 'the same answer again');
  });
});
