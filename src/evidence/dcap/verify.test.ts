import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { readFixture, readFixtureJson, readFixtureText, skipWithoutFixtures } from '../../../test/fixtures.js';
import { outcome } from '../../../test/helpers/verdict.js';
import { type QuoteCollateral, collateralFromPcsResponses, parseQuoteCollateral } from './collateral.js';
import { isConclaveError } from '../../core/errors.js';
import { VerifierCache } from './cache.js';
import { buildCollateral, buildSignedQuote, createDcapHierarchy, defaultQeIdentity, defaultTcbInfo, issueCertificate, issueCrl, signJson } from './testing.js';
import { derToPem, pemToDer } from '../../core/x509.js';
import { type QuoteVerificationResult, encodeQuote, parseQuote, pckChainDers, verifyQuote, verifyQuoteAsync } from './index.js';

const skip = skipWithoutFixtures();

function bytes(...p: string[]): Uint8Array {
  return new Uint8Array(readFixture('intel', ...p));
}

/** The collateral of each fixture folder: QvE JSON where present, else the raw PCS files. */
function collateralOf(folder: string): QuoteCollateral {
  switch (folder) {
    case 'sgx-v3-phala':
    case 'tdx-v4-phala':
    case 'tdx-v5-fmspc90C06F':
      return parseQuoteCollateral(readFixtureText('intel', folder, 'collateral.orig.json'));
    case 'sgx-v3-occlum-platformca':
      return collateralFromPcsResponses({
        tcbInfoResponse: bytes(folder, 'sgx_tcbinfov3_00606a000000.json'),
        tcbInfoIssuerChain: [bytes(folder, 'tcb_signing.der')],
        qeIdentityResponse: bytes(folder, 'sgx_qeidentity_v4.json'),
        qeIdentityIssuerChain: [bytes(folder, 'tcb_signing.der')],
        pckCrl: bytes(folder, 'platform_crl.der'),
        pckCrlIssuerChain: [bytes(folder, 'platform_ca.der')],
        rootCaCrl: bytes(folder, 'intel_root_ca_crl.der'),
      });
    case 'tdx-v4-automata':
      return collateralFromPcsResponses({
        tcbInfoResponse: readFixtureText('intel', folder, 'tcb_info_v3_with_tdx_module.json'),
        tcbInfoIssuerChain: [bytes(folder, 'signing.der'), bytes(folder, 'root.der')],
        qeIdentityResponse: readFixtureText('intel', folder, 'qe_identity.json'),
        qeIdentityIssuerChain: [bytes(folder, 'signing.der'), bytes(folder, 'root.der')],
        pckCrl: bytes(folder, 'pck_platform_crl.der'),
        pckCrlIssuerChain: [bytes(folder, 'platform.der'), bytes(folder, 'root.der')],
        rootCaCrl: bytes(folder, 'intel_root_ca_crl.der'),
      });
    case 'tdx-v4-azure-trustee':
      return collateralFromPcsResponses({
        tcbInfoResponse: bytes(folder, 'tcb_info.json'),
        tcbInfoIssuerChain: [bytes(folder, 'tcb_signing.der')],
        qeIdentityResponse: bytes(folder, 'identity.json'),
        qeIdentityIssuerChain: [bytes(folder, 'tcb_signing.der')],
        pckCrl: bytes(folder, 'pck_crl.der'),
        pckCrlIssuerChain: [bytes(folder, 'platform_ca.der')],
        rootCaCrl: bytes(folder, 'intel_root_ca_crl.der'),
      });
    default:
      throw new Error(`no collateral mapping for ${folder}`);
  }
}

interface Expected {
  readonly verify_at?: string;
  readonly status: string;
  readonly advisory_ids?: readonly string[];
  readonly fmspc?: string;
  readonly qe?: { readonly isvsvn: number; readonly status: string };
  readonly tdx_module?: { readonly id: string; readonly status: string; readonly isvsvn?: number; readonly advisory_ids?: readonly string[] };
  readonly quote_version?: number;
}

const FOLDERS = ['sgx-v3-phala', 'sgx-v3-occlum-platformca', 'tdx-v4-phala', 'tdx-v4-automata', 'tdx-v4-azure-trustee', 'tdx-v5-fmspc90C06F'];

function cases(): { folder: string; file: string; expected: Expected; at: Date }[] {
  const out = [];
  for (const folder of FOLDERS) {
    const all = readFixtureJson<Record<string, Expected & { verify_at?: string }>>('intel', folder, 'expected.json');
    const shared = (all as Record<string, unknown>)._collateral as string | undefined;
    const sharedAt = shared ? /verify_at (\S+)/.exec(shared)?.[1] : undefined;
    for (const [file, expected] of Object.entries(all)) {
      if (file.startsWith('_') || !file.endsWith('.bin') || file === 'hcl-report.bin') continue;
      out.push({ folder, file, expected, at: new Date(expected.verify_at ?? sharedAt ?? '') });
    }
  }
  return out;
}

describe('verifyQuote on the real Intel vectors (strict freshness)', { skip }, () => {
  if (skip) return;
  for (const c of cases()) {
    test(`${c.folder}/${c.file} → ${c.expected.status.slice(0, 40)}`, () => {
      const quote = bytes(c.folder, c.file);
      const collateral = collateralOf(c.folder);
      if (c.expected.status.startsWith('ERROR')) {
        assert.throws(() => verifyQuote(quote, collateral, { at: c.at }), (e) => isConclaveError(e, 'quote.tcb_level_not_found'));
        return;
      }
      const r = verifyQuote(quote, collateral, { at: c.at, freshness: 'strict' });
      assert.equal(r.verified, true);
      assert.equal(r.status, c.expected.status);
      assert.deepEqual([...r.advisoryIds].sort(), [...(c.expected.advisory_ids ?? [])].sort());
      if (c.expected.fmspc) assert.equal(r.fmspc, c.expected.fmspc.toLowerCase());
      if (c.expected.quote_version) assert.equal(r.quoteVersion, c.expected.quote_version);
      if (c.expected.qe) {
        assert.equal(r.qe.isvsvn, c.expected.qe.isvsvn);
        assert.equal(r.qe.status, c.expected.qe.status);
      }
      if (c.expected.tdx_module) {
        assert.equal(r.tee, 'tdx');
        const m = r.tcb.tdxModule;
        assert.equal(m?.id, c.expected.tdx_module.id);
        assert.equal(m?.status, c.expected.tdx_module.status);
        if (c.expected.tdx_module.isvsvn !== undefined) assert.equal(m?.isvsvn, c.expected.tdx_module.isvsvn);
        if (c.expected.tdx_module.advisory_ids) assert.deepEqual([...(m?.advisoryIds ?? [])].sort(), [...c.expected.tdx_module.advisory_ids].sort());
      }
      assert.deepEqual(r.collateral.expired, []);
    });
  }

  test('SGX result carries the report fields of expected.json', () => {
    const exp = readFixtureJson<Record<string, { report: Record<string, unknown>; pceid: string }>>('intel', 'sgx-v3-phala', 'expected.json')['quote.bin']!;
    const r = verifyQuote(bytes('sgx-v3-phala', 'quote.bin'), collateralOf('sgx-v3-phala'), { at: new Date('2025-06-20T00:00:00Z') });
    assert.equal(r.tee, 'sgx');
    if (r.tee !== 'sgx') return;
    assert.equal(r.report.mrenclave, exp.report.mrenclave);
    assert.equal(r.report.mrsigner, exp.report.mrsigner);
    assert.equal(r.report.isvprodid, exp.report.isvprodid);
    assert.equal(r.report.attributes, exp.report.attributes);
    assert.equal(r.report.debug, false);
    assert.equal(r.report.reportdata.length, 128);
    assert.ok(Buffer.from(r.report.reportdata, 'hex').toString('latin1').startsWith('Hello, world!'));
    assert.equal(r.pceId, exp.pceid);
    assert.equal(r.tcb.pckCa, 'processor');
    assert.deepEqual(r.tcb.sgxtcbcomponents, [11, 11, 2, 2, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(r.tcb.pcesvn, 13);
  });

  test('TDX result carries the TD fields of expected.json', () => {
    const exp = readFixtureJson<Record<string, Record<string, string>>>('intel', 'tdx-v4-phala', 'expected.json')['quote.bin']!;
    const r = verifyQuote(bytes('tdx-v4-phala', 'quote.bin'), collateralOf('tdx-v4-phala'), { at: new Date('2025-06-20T00:00:00Z') });
    assert.equal(r.tee, 'tdx');
    if (r.tee !== 'tdx') return;
    assert.equal(r.td.mrtd, exp.mrtd);
    assert.equal(r.td.rtmr0, exp.rtmr0);
    assert.equal(r.td.mrseam, exp.mrseam);
    assert.equal(r.td.teetcbsvn, exp.tee_tcb_svn);
    assert.equal(r.td.tdattributes, exp.td_attributes);
    assert.equal(r.td.xfam, exp.xfam);
    assert.equal(r.td.debug, false);
  });

  test('a debug enclave verifies and is reported as debug', () => {
    // quote2-automata.bin is a debug enclave (ATTRIBUTES.FLAGS bit 1).
    const r = verifyQuote(bytes('sgx-v3-phala', 'quote2-automata.bin'), collateralOf('sgx-v3-phala'), { at: new Date('2025-06-20T00:00:00Z') });
    assert.equal(r.tee === 'sgx' && r.report.debug, true);
    assert.ok(r.warnings.some((w) => w.includes('debug')));
  });

  test('warm cache gives the same verdict and still checks each quote', () => {
    const cache = new VerifierCache();
    const collateral = collateralOf('tdx-v4-phala');
    const quote = bytes('tdx-v4-phala', 'quote.bin');
    const at = new Date('2025-06-20T00:00:00Z');
    const cold = verifyQuote(quote, collateral, { at });
    const warm1 = verifyQuote(quote, collateral, { at, cache });
    const warm2 = verifyQuote(quote, collateral, { at, cache });
    assert.deepEqual(warm1, cold);
    assert.deepEqual(warm2, cold);
    assert.ok(cache.hits >= 3);
    const bad = quote.slice();
    bad[100]! ^= 1;
    assert.throws(() => verifyQuote(bad, collateral, { at, cache }), (e) => isConclaveError(e, 'quote.signature_invalid'));
    // expiry is evaluated per call even when the collateral is cached
    assert.throws(() => verifyQuote(quote, collateral, { at: new Date('2025-08-01T00:00:00Z'), cache }), (e) => isConclaveError(e, 'collateral.expired'));
    // an invalid time compares false with every window: refused, cold, warm and in either freshness policy
    for (const freshness of ['strict', 'azure'] as const) {
      for (const c of [undefined, cache]) assert.throws(() => verifyQuote(quote, collateral, { at: new Date(Number.NaN), cache: c, freshness }), (e) => isConclaveError(e, 'request.invalid'));
    }
  });
});

function expectCode(fn: () => unknown, code: string, label: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isConclaveError(e), `${label}: threw a non-ConclaveError ${String(e)}`);
    assert.equal(e.code, code, `${label}: ${e.message}`);
    return;
  }
  assert.fail(`${label}: verification unexpectedly succeeded`);
}

describe('verifyQuote rejects mutated real vectors', { skip }, () => {
  if (skip) return;
  const vectors = [
    { folder: 'sgx-v3-phala', file: 'quote.bin', at: new Date('2025-06-20T00:00:00Z') },
    { folder: 'tdx-v4-phala', file: 'quote.bin', at: new Date('2025-06-20T00:00:00Z') },
    { folder: 'tdx-v5-fmspc90C06F', file: 'quote-gotdxguest-uptodate.bin', at: new Date('2026-02-19T00:00:00Z') },
  ];
  for (const v of vectors) {
    test(`${v.folder}/${v.file}: single-byte flips fail with the code of their region`, () => {
      const original = bytes(v.folder, v.file);
      const collateral = collateralOf(v.folder);
      const cache = new VerifierCache();
      const q = parseQuote(original);
      const signedEnd = q.signedRegion.byteLength;
      const sigStart = signedEnd + 4;
      const v3 = q.header.version === 3;
      const qeStart = sigStart + 128 + (v3 ? 0 : 6);
      const authStart = qeStart + 384 + 64 + 2;
      const regions: { name: string; from: number; to: number; code: string }[] = [
        // version, key type and TEE type change how the quote parses; the rest is covered by the signature
        { name: 'header (after TEE type)', from: 8, to: 48, code: 'quote.signature_invalid' },
        // (v5: the 6-byte body descriptor at 48 decides the body layout, so it is a parse field too)
        { name: 'body', from: q.header.version === 5 ? 54 : 48, to: signedEnd, code: 'quote.signature_invalid' },
        { name: 'quote signature', from: sigStart, to: sigStart + 64, code: 'quote.signature_invalid' },
        { name: 'attestation key', from: sigStart + 64, to: sigStart + 128, code: 'quote.attestation_key_mismatch' },
        { name: 'QE report', from: qeStart, to: qeStart + 384, code: 'quote.qe_report_signature_invalid' },
        { name: 'QE report signature', from: qeStart + 384, to: qeStart + 448, code: 'quote.qe_report_signature_invalid' },
        { name: 'QE auth data', from: authStart, to: authStart + q.signatureData.qeAuthData.byteLength, code: 'quote.attestation_key_mismatch' },
      ];
      for (const region of regions) {
        // Every byte of small regions, a stride through the large ones (all bytes would take long).
        const step = region.to - region.from > 128 ? 7 : 1;
        for (let i = region.from; i < region.to; i += step) {
          const m = original.slice();
          m[i]! ^= 0x01;
          expectCode(() => verifyQuote(m, collateral, { at: v.at, cache }), region.code, `${region.name} byte ${i}`);
        }
      }
    });
  }

  test('header version / key type / TEE type flips are parse errors', () => {
    const original = bytes('sgx-v3-phala', 'quote.bin');
    for (const [i, codes] of [
      [0, ['quote.unsupported']],
      [2, ['quote.unsupported']],
      [4, ['quote.unsupported', 'quote.malformed']],
    ] as const) {
      const m = original.slice();
      m[i]! ^= 0x01;
      assert.throws(() => verifyQuote(m, collateralOf('sgx-v3-phala'), { at: new Date('2025-06-20T00:00:00Z') }), (e) => isConclaveError(e) && (codes as readonly string[]).includes(e.code));
    }
  });

  test('a tampered TCB info byte fails the collateral signature', () => {
    const c = collateralOf('sgx-v3-phala');
    const tcbInfo = c.tcbInfo.slice();
    const at = Buffer.from(tcbInfo).indexOf('"tcbEvaluationDataNumber":') + 26;
    tcbInfo[at] = tcbInfo[at] === 0x31 ? 0x32 : 0x31;
    expectCode(() => verifyQuote(bytes('sgx-v3-phala', 'quote.bin'), { ...c, tcbInfo }, { at: new Date('2025-06-20T00:00:00Z') }), 'collateral.signature_invalid', 'tcbInfo');
    const qeIdentity = c.qeIdentity.slice();
    qeIdentity[10]! ^= 0x01;
    expectCode(() => verifyQuote(bytes('sgx-v3-phala', 'quote.bin'), { ...c, qeIdentity }, { at: new Date('2025-06-20T00:00:00Z') }), 'collateral.signature_invalid', 'qeIdentity');
  });

  test('a TCB info for another FMSPC fails with quote.fmspc_mismatch', () => {
    // Real Intel-signed TCB info for FMSPC 00906ED50000 (captured 2025-05-27, valid until 2025-06-26).
    const wrapper = readFixtureJson<{ tcb_info_json: string; issuer_chain: string }>('intel', 'pcs-responses-teepot', 'sgx_tcb_info_00906ED50000.json');
    const other = collateralFromPcsResponses({
      tcbInfoResponse: wrapper.tcb_info_json,
      tcbInfoIssuerChain: wrapper.issuer_chain,
      qeIdentityResponse: readFixtureText('intel', 'sgx-v3-phala', 'qe_identity_response.json'),
      qeIdentityIssuerChain: readFixtureText('intel', 'sgx-v3-phala', 'qe_identity_issuer_chain.pem'),
      pckCrl: bytes('sgx-v3-phala', 'pck_crl.der'),
      pckCrlIssuerChain: readFixtureText('intel', 'sgx-v3-phala', 'pck_crl_issuer_chain.pem'),
      rootCaCrl: bytes('sgx-v3-phala', 'root_ca_crl.der'),
    });
    expectCode(() => verifyQuote(bytes('sgx-v3-phala', 'quote.bin'), other, { at: new Date('2025-06-20T00:00:00Z') }), 'quote.fmspc_mismatch', 'fmspc');
  });

  test('SGX collateral for a TDX quote fails with quote.collateral_mismatch', () => {
    const sgx = collateralOf('sgx-v3-phala');
    const mixed = { ...collateralOf('tdx-v4-phala'), tcbInfo: sgx.tcbInfo, tcbInfoSignature: sgx.tcbInfoSignature };
    expectCode(() => verifyQuote(bytes('tdx-v4-phala', 'quote.bin'), mixed, { at: new Date('2025-06-20T00:00:00Z') }), 'quote.collateral_mismatch', 'tcb info id');
    const mixedQe = { ...collateralOf('tdx-v4-phala'), qeIdentity: sgx.qeIdentity, qeIdentitySignature: sgx.qeIdentitySignature };
    expectCode(
      () => verifyQuote(bytes('tdx-v4-phala', 'quote.bin'), mixedQe, { at: new Date('2025-06-20T00:00:00Z') }),
      'quote.collateral_mismatch',
      'tee',
    );
  });

  test('expired collateral fails under strict and is reported under azure', () => {
    const quote = bytes('sgx-v3-phala', 'quote.bin');
    const c = collateralOf('sgx-v3-phala');
    const late = new Date('2025-08-01T00:00:00Z');
    expectCode(() => verifyQuote(quote, c, { at: late }), 'collateral.expired', 'strict');
    const r = verifyQuote(quote, c, { at: late, freshness: 'azure' });
    assert.equal(r.status, 'ConfigurationAndSWHardeningNeeded');
    assert.deepEqual(r.collateral.expired.map((x) => x.item).sort(), ['pckCrl', 'qeIdentity', 'tcbInfo']);
    assert.ok(r.warnings.length >= 3);
    // certificates are enforced under either policy (the PCK leaf of this quote expires in 2031)
    expectCode(() => verifyQuote(quote, c, { at: new Date('2040-01-01T00:00:00Z'), freshness: 'azure' }), 'cert.expired', 'azure certs');
  });

  test('the real quote against another trust anchor fails the PCK or collateral chain', () => {
    const h = createDcapHierarchy();
    assert.throws(
      () => verifyQuote(bytes('sgx-v3-phala', 'quote.bin'), collateralOf('sgx-v3-phala'), { at: new Date('2025-06-20T00:00:00Z'), trustAnchors: { intelRoot: h.root.certificate } }),
      (e) => isConclaveError(e) && ['crl.invalid', 'collateral.chain_invalid', 'quote.pck_chain_invalid'].includes(e.code),
    );
  });
});

describe('verifyQuote with a hierarchy of our own (testing.ts)', () => {
  const at = new Date('2025-01-01T00:00:00Z');

  for (const [tee, version] of [
    ['sgx', 3],
    ['sgx', 4],
    ['tdx', 4],
    ['tdx', 5],
  ] as const) {
    test(`a ${tee.toUpperCase()} v${version} quote verifies UpToDate under its own root`, () => {
      const h = createDcapHierarchy();
      const reportData = new Uint8Array(64).fill(0xab);
      const r: QuoteVerificationResult = verifyQuote(buildSignedQuote(h, { tee, version, reportData }), buildCollateral(h, { tee }), { at, trustAnchors: { intelRoot: h.root.certificate } });
      assert.equal(r.tee, tee);
      assert.equal(r.quoteVersion, version);
      assert.equal(r.status, 'UpToDate');
      assert.equal(r.fmspc, h.platform.fmspc);
      const rd = r.tee === 'sgx' ? r.report.reportdata : r.td.reportdata;
      assert.equal(rd, 'ab'.repeat(64));
    });
  }

  test('the PCK chain to a different root fails with quote.pck_chain_invalid', () => {
    const h = createDcapHierarchy();
    const other = createDcapHierarchy();
    // The collateral of `other` (its root) with a quote whose PCK chain ends in `h`'s root.
    expectCode(
      () => verifyQuote(buildSignedQuote(h, { tee: 'sgx' }), buildCollateral(other, { tee: 'sgx' }), { at, trustAnchors: { intelRoot: other.root.certificate } }),
      'quote.pck_chain_invalid',
      'other root',
    );
    // And against the default pinned Intel root.
    assert.throws(
      () => verifyQuote(buildSignedQuote(h, { tee: 'sgx' }), buildCollateral(h, { tee: 'sgx' }), { at }),
      (e) => isConclaveError(e) && ['crl.invalid', 'collateral.chain_invalid', 'quote.pck_chain_invalid'].includes(e.code),
    );
  });

  test('attack: TCB info or QE identity signed by a PCK certificate’s key (chained to the same root) fails with collateral.chain_invalid', () => {
    // A PCK key lives in a platform; one extracted from a compromised platform signed a TCB info and QE
    // identity of its choosing, which verified because any certificate under the root was taken as the signer.
    const h = createDcapHierarchy();
    const good = buildCollateral(h, { tee: 'sgx' });
    const forged = (value: Uint8Array) => signJson(JSON.parse(Buffer.from(value).toString('utf8')), h.pck.privateKey);
    const tcb = forged(good.tcbInfo);
    const qe = forged(good.qeIdentity);
    const pckChain = [h.pck.der, h.pckCa.der, h.root.der];
    for (const [what, c] of [
      ['tcbInfo', { ...good, tcbInfo: tcb.body, tcbInfoSignature: tcb.signature, tcbInfoIssuerChain: pckChain }],
      ['qeIdentity', { ...good, qeIdentity: qe.body, qeIdentitySignature: qe.signature, qeIdentityIssuerChain: pckChain }],
    ] as const) {
      expectCode(() => verifyQuote(buildSignedQuote(h, { tee: 'sgx' }), c, { at, trustAnchors: { intelRoot: h.root.certificate } }), 'collateral.chain_invalid', what);
    }
  });

  test('each part of the TCB signer rule on its own: the TCB signing name, not a CA, one certificate below the root', () => {
    // Certificates only the root's holder could issue, each failing one part of the rule: none signs TCB info or QE identity.
    const h = createDcapHierarchy();
    const good = buildCollateral(h, { tee: 'sgx' });
    const validity = { notBefore: h.notBefore, notAfter: h.notAfter };
    const namedCa = issueCertificate({ subjectCN: 'Intel SGX TCB Signing', issuer: h.root, ca: true, ...validity });
    const otherName = issueCertificate({ subjectCN: 'Intel SGX Other Signing', issuer: h.root, ca: false, ...validity });
    const belowPckCa = issueCertificate({ subjectCN: 'Intel SGX TCB Signing', issuer: h.pckCa, ca: false, ...validity });
    for (const [name, signer, chain] of [
      ['a CA named like the TCB signing certificate', namedCa, [namedCa.der, h.root.der]],
      ['a root-issued leaf of another name', otherName, [otherName.der, h.root.der]],
      ['a TCB signing name issued by the PCK CA', belowPckCa, [belowPckCa.der, h.pckCa.der, h.root.der]],
    ] as const) {
      const tcb = signJson(JSON.parse(Buffer.from(good.tcbInfo).toString('utf8')), signer.privateKey);
      const qe = signJson(JSON.parse(Buffer.from(good.qeIdentity).toString('utf8')), signer.privateKey);
      for (const [what, c] of [
        ['tcbInfo', { ...good, tcbInfo: tcb.body, tcbInfoSignature: tcb.signature, tcbInfoIssuerChain: [...chain] }],
        ['qeIdentity', { ...good, qeIdentity: qe.body, qeIdentitySignature: qe.signature, qeIdentityIssuerChain: [...chain] }],
      ] as const) {
        expectCode(() => verifyQuote(buildSignedQuote(h, { tee: 'sgx' }), c, { at, trustAnchors: { intelRoot: h.root.certificate } }), 'collateral.chain_invalid', `${name}: ${what}`);
      }
    }
  });

  test('a revoked PCK serial fails with quote.pck_revoked', () => {
    const h = createDcapHierarchy({ revokedPckSerials: ['pck'] });
    expectCode(() => verifyQuote(buildSignedQuote(h, { tee: 'sgx' }), buildCollateral(h, { tee: 'sgx' }), { at, trustAnchors: { intelRoot: h.root.certificate } }), 'quote.pck_revoked', 'revoked');
  });

  test('a platform below every TCB level fails with quote.tcb_level_not_found', () => {
    const h = createDcapHierarchy();
    const info = defaultTcbInfo(h, { tee: 'sgx' });
    const levels = info.tcbLevels as { tcb: { pcesvn: number } }[];
    levels[0]!.tcb.pcesvn = 99;
    expectCode(
      () => verifyQuote(buildSignedQuote(h, { tee: 'sgx' }), buildCollateral(h, { tee: 'sgx', tcbInfo: info }), { at, trustAnchors: { intelRoot: h.root.certificate } }),
      'quote.tcb_level_not_found',
      'tcb',
    );
  });

  test('QE and module statuses fold into the platform status with advisories united', () => {
    const h = createDcapHierarchy();
    const qe = {
      id: 'TD_QE',
      version: 2,
      issueDate: h.notBefore.toISOString(),
      nextUpdate: h.notAfter.toISOString(),
      tcbEvaluationDataNumber: 17,
      miscselect: '00000000',
      miscselectMask: 'FFFFFFFF',
      attributes: '11000000000000000000000000000000',
      attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
      mrsigner: 'DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5',
      isvprodid: 2,
      tcbLevels: [
        { tcb: { isvsvn: 9 }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' },
        { tcb: { isvsvn: 1 }, tcbDate: '2023-03-13T00:00:00Z', tcbStatus: 'OutOfDate', advisoryIDs: ['INTEL-SA-99999'] },
      ],
    };
    const r = verifyQuote(buildSignedQuote(h, { tee: 'tdx' }), buildCollateral(h, { tee: 'tdx', qeIdentity: qe }), { at, trustAnchors: { intelRoot: h.root.certificate } });
    assert.equal(r.qe.status, 'OutOfDate');
    assert.equal(r.status, 'OutOfDate');
    assert.deepEqual(r.advisoryIds, ['INTEL-SA-99999']);
    // A module ISVSVN below the module's only level is not supported.
    expectCode(
      () => verifyQuote(buildSignedQuote(h, { tee: 'tdx' }), buildCollateral(h, { tee: 'tdx', tdxModuleIsvsvn: 9 }), { at, trustAnchors: { intelRoot: h.root.certificate } }),
      'quote.tcb_level_not_found',
      'module',
    );
  });

  test('attack: a TDX 1.5 module (TEE_TCB_SVN[1] > 0) against a TCB info without tdxModuleIdentities fails with quote.tdx_module_mismatch', () => {
    // TEE_TCB_SVN[0..1] of such a module are judged by its module identity alone (the platform levels skip
    // them), so without one nothing judged the module's SVN: any module ISVSVN verified UpToDate. QVL
    // (QuoteVerifier 4.1.2.4.11) refuses a module version > 0 when the TCB info has no module identities.
    const h = createDcapHierarchy();
    const info = defaultTcbInfo(h, { tee: 'tdx' });
    delete info.tdxModuleIdentities;
    const teeTcbSvn = new Uint8Array(16);
    teeTcbSvn.set([0, 1, 2]);
    expectCode(
      () => verifyQuote(buildSignedQuote(h, { tee: 'tdx', tdReport: { teeTcbSvn } }), buildCollateral(h, { tee: 'tdx', tcbInfo: info }), { at, trustAnchors: { intelRoot: h.root.certificate } }),
      'quote.tdx_module_mismatch',
      'no module identities',
    );
    // A module of major version 0 is still judged by tdxModule and the platform levels.
    teeTcbSvn.set([2, 0, 2]);
    const r = verifyQuote(buildSignedQuote(h, { tee: 'tdx', tdReport: { teeTcbSvn } }), buildCollateral(h, { tee: 'tdx', tcbInfo: info }), { at, trustAnchors: { intelRoot: h.root.certificate } });
    assert.equal(r.status, 'UpToDate');
  });

  test('TD relaunch advice keeps ConfigurationNeeded when the SGX-only or the TDX level needs configuration (QVL TDRelaunchCheck)', () => {
    // Latest level: ConfigurationNeeded, which the platform's SGX components meet but its TEE_TCB_SVN[2]
    // does not; the next level (OutOfDate) matches both. The running module is OutOfDate, the installed one
    // (TEE_TCB_SVN2) meets the latest: relaunch is advised, and the platform still needs configuration.
    const h = createDcapHierarchy();
    const info = defaultTcbInfo(h, { tee: 'tdx' });
    type Level = { tcb: { tdxtcbcomponents: { svn: number }[] }; tcbStatus: string };
    const [base] = info.tcbLevels as Level[];
    const latest = structuredClone(base!);
    latest.tcb.tdxtcbcomponents[2]!.svn = 5;
    latest.tcbStatus = 'ConfigurationNeeded';
    const older = structuredClone(base!);
    older.tcbStatus = 'OutOfDate';
    info.tcbLevels = [latest, older];
    const [identity] = info.tdxModuleIdentities as { tcbLevels: unknown[] }[];
    identity!.tcbLevels = [
      { tcb: { isvsvn: 5 }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' },
      { tcb: { isvsvn: 1 }, tcbDate: '2023-03-13T00:00:00Z', tcbStatus: 'OutOfDate' },
    ];
    const teeTcbSvn2 = new Uint8Array(16);
    teeTcbSvn2.set([5, 1, 5]);
    const verify = (tcbInfo: Record<string, unknown>) =>
      verifyQuote(buildSignedQuote(h, { tee: 'tdx', version: 5, tdReport: { teeTcbSvn2 } }), buildCollateral(h, { tee: 'tdx', tcbInfo }), { at, trustAnchors: { intelRoot: h.root.certificate } });
    const r = verify(info);
    assert.equal(r.tcb.sgxStatus, 'ConfigurationNeeded');
    assert.equal(r.tcb.status, 'OutOfDate');
    assert.equal(r.status, 'TDRelaunchAdvisedConfigurationNeeded');
    // With the latest level UpToDate, relaunch alone is advised.
    latest.tcbStatus = 'UpToDate';
    assert.equal(verify(info).status, 'TDRelaunchAdvised');
    // The SGX-only level current and the TDX level needing configuration (OutOfDateConfigurationNeeded once
    // the module is folded in): relaunch is advised and configuration still needed.
    older.tcbStatus = 'ConfigurationNeeded';
    const c = verify(info);
    assert.equal(c.tcb.sgxStatus, 'UpToDate');
    assert.equal(c.tcb.status, 'ConfigurationNeeded');
    assert.equal(c.status, 'TDRelaunchAdvisedConfigurationNeeded');
  });

  test('a QE identity or TDX module level with a platform-only status (not UpToDate/OutOfDate/Revoked) is collateral.malformed', () => {
    // Such a status would be ignored when the statuses converge, so the QE or module would count as UpToDate;
    // QVL refuses it (enclave identity and VALID_MODULE_TCB_STATUSES: UpToDate, OutOfDate, Revoked).
    const h = createDcapHierarchy();
    for (const status of ['SWHardeningNeeded', 'ConfigurationNeeded', 'OutOfDateConfigurationNeeded']) {
      const qe = defaultQeIdentity(h, { tee: 'tdx' });
      (qe.tcbLevels as { tcbStatus: string }[])[0]!.tcbStatus = status;
      expectCode(
        () => verifyQuote(buildSignedQuote(h, { tee: 'tdx' }), buildCollateral(h, { tee: 'tdx', qeIdentity: qe }), { at, trustAnchors: { intelRoot: h.root.certificate } }),
        'collateral.malformed',
        `QE level ${status}`,
      );
      const info = defaultTcbInfo(h, { tee: 'tdx' });
      ((info.tdxModuleIdentities as { tcbLevels: { tcbStatus: string }[] }[])[0]!.tcbLevels[0]!).tcbStatus = status;
      expectCode(
        () => verifyQuote(buildSignedQuote(h, { tee: 'tdx' }), buildCollateral(h, { tee: 'tdx', tcbInfo: info }), { at, trustAnchors: { intelRoot: h.root.certificate } }),
        'collateral.malformed',
        `module level ${status}`,
      );
    }
  });

  test('QE MISCSELECT is compared byte for byte with the identity\'s hex, as QVL (identity bytes read as the report\'s little-endian u32)', () => {
    // A QE report whose MISCSELECT bytes are 01 00 00 00 matches an identity miscselect "01000000" (the same
    // bytes) and not "00000001"; reading the identity hex as a big-endian number swapped the two.
    const h = createDcapHierarchy();
    const quote = buildSignedQuote(h, { tee: 'sgx', qeReport: { miscselect: Uint8Array.of(1, 0, 0, 0) } });
    const withMisc = (miscselect: string) => buildCollateral(h, { tee: 'sgx', qeIdentity: { ...defaultQeIdentity(h, { tee: 'sgx' }), miscselect, miscselectMask: 'FFFFFFFF' } });
    assert.equal(verifyQuote(quote, withMisc('01000000'), { at, trustAnchors: { intelRoot: h.root.certificate } }).status, 'UpToDate');
    expectCode(() => verifyQuote(quote, withMisc('00000001'), { at, trustAnchors: { intelRoot: h.root.certificate } }), 'quote.qe_identity_mismatch', 'byte-swapped miscselect');
    // The mask applies to the same bytes: masking out byte 0 accepts any value there.
    const masked = buildCollateral(h, { tee: 'sgx', qeIdentity: { ...defaultQeIdentity(h, { tee: 'sgx' }), miscselect: '00000000', miscselectMask: '00FFFFFF' } });
    assert.equal(verifyQuote(quote, masked, { at, trustAnchors: { intelRoot: h.root.certificate } }).status, 'UpToDate');
  });

  test('PCK chain shapes (pin): leaf and PCK CA, optionally the root, in that order; nothing else', () => {
    // The certification data is not signed: anyone relaying a quote can rewrite it. Only the order leaf →
    // PCK CA (→ the pinned root) verifies; the QE report signature then binds the leaf's key.
    const h = createDcapHierarchy();
    const quote = parseQuote(buildSignedQuote(h, { tee: 'sgx' }));
    const withChain = (ders: readonly Uint8Array[]) => {
      const data = new Uint8Array(Buffer.from(ders.map((d) => derToPem(d)).join(''), 'latin1'));
      return encodeQuote({ ...quote, signatureData: { ...quote.signatureData, certificationData: { type: 5, data } } });
    };
    const verify = (ders: readonly Uint8Array[]) => verifyQuote(withChain(ders), buildCollateral(h, { tee: 'sgx' }), { at, trustAnchors: { intelRoot: h.root.certificate } });
    assert.equal(verify([h.pck.der, h.pckCa.der]).status, 'UpToDate');
    for (const [what, ders] of [
      ['leaf only', [h.pck.der]],
      ['CA first', [h.pckCa.der, h.pck.der, h.root.der]],
      ['root in the middle', [h.pck.der, h.root.der, h.pckCa.der]],
      ['an extra certificate after the root', [h.pck.der, h.pckCa.der, h.root.der, h.tcbSigning.der]],
      ['the TCB signing certificate as the PCK CA', [h.pck.der, h.tcbSigning.der, h.root.der]],
    ] as const) {
      expectCode(() => verify(ders), 'quote.pck_chain_invalid', what);
    }
    // QVL 4.1.2.4.5: the leaf must be a PCK certificate by name, whatever the PCK CA issued besides.
    const notPck = issueCertificate({ subjectCN: 'Intel SGX TCB Signing', issuer: h.pckCa, ca: false, notBefore: h.notBefore, notAfter: h.notAfter });
    expectCode(() => verify([notPck.der, h.pckCa.der]), 'quote.pck_chain_invalid', 'a leaf the PCK CA issued that is not named a PCK certificate');
  });

  test('bounded work: a PCK chain of more than leaf, PCK CA and root is refused before any certificate is parsed (quote.pck_chain_invalid naming the bound)', () => {
    const h = createDcapHierarchy();
    const quote = parseQuote(buildSignedQuote(h, { tee: 'sgx' }));
    const withText = (text: string) => encodeQuote({ ...quote, signatureData: { ...quote.signatureData, certificationData: { type: 5, data: new Uint8Array(Buffer.from(text, 'latin1')) } } });
    const chain = `${derToPem(h.pck.der)}${derToPem(h.pckCa.der)}${derToPem(h.root.der)}`;
    const verify = (text: string) => verifyQuote(withText(text), buildCollateral(h, { tee: 'sgx' }), { at, trustAnchors: { intelRoot: h.root.certificate } });
    assert.equal(verify(`${chain}\0`).status, 'UpToDate');
    for (const [what, text] of [
      ['400 undecodable blocks after the chain', `${chain}${'-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n'.repeat(400)}`],
      ['the leaf 10 times after the chain', `${chain}${derToPem(h.pck.der).repeat(10)}`],
      ['the root twice', `${chain}${derToPem(h.root.der)}`],
    ] as const) {
      assert.throws(() => verify(text), (e) => isConclaveError(e, 'quote.pck_chain_invalid') && e.detail?.max === 3, what);
    }
  });

  test('bounded work: the BEGIN-line count agrees with what pemToDer decodes: whatever the text, pckChainDers refuses it or returns pemToDer\'s certificates, at most 3 (random texts of PEM fragments, overlapping and split markers, odd case and spacing, other labels)', () => {
    // Markers sharing their dashes ("-----END CERTIFICATE-----BEGIN CERTIFICATE-----"), split or in lower case,
    // other PEM labels, NULs: more than 3 certificates never reach the parser, and what is returned is what
    // pemToDer reads (the verifier and the service parse no other list).
    const fragment = fc.constantFrom(
      '-----BEGIN CERTIFICATE-----MAA=-----END CERTIFICATE-----',
      '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n',
      '-----BEGIN CERTIFICATE-----',
      '-----END CERTIFICATE-----',
      'BEGIN CERTIFICATE-----',
      '-----BEGIN CERTIFICATE----',
      '-----begin certificate-----',
      '-----BEGIN  CERTIFICATE-----',
      '-----BEGIN X509 CERTIFICATE-----',
      '-----BEGIN TRUSTED CERTIFICATE-----',
      '-----',
      'MAA=',
      '\n',
      ' ',
      '\0',
    );
    fc.assert(
      fc.property(fc.array(fragment, { maxLength: 40 }), (parts) => {
        const data = new Uint8Array(Buffer.from(parts.join(''), 'latin1'));
        const decoded = pemToDer(parts.join(''));
        let ders: Uint8Array[];
        try {
          ders = pckChainDers(data);
        } catch (e) {
          assert.ok(isConclaveError(e, 'quote.pck_chain_invalid') && e.detail?.max === 3);
          return;
        }
        assert.ok(ders.length <= 3, `${ders.length} certificates returned`);
        assert.deepEqual(ders, decoded);
      }),
      { numRuns: 3000 },
    );
  });

  test('the PCK CRL of another PCK CA under the same root is crl.invalid (pin: Processor vs Platform CA; same name, other key)', () => {
    const h = createDcapHierarchy({ caType: 'platform' });
    const processorCa = issueCertificate({ subjectCN: 'Intel SGX PCK Processor CA', issuer: h.root, ca: true, notBefore: h.notBefore, notAfter: h.notAfter });
    const c = { ...buildCollateral(h, { tee: 'sgx' }), pckCrlIssuerChain: [processorCa.der, h.root.der], pckCrl: issueCrl(processorCa, h.notBefore, h.notAfter) };
    expectCode(() => verifyQuote(buildSignedQuote(h, { tee: 'sgx' }), c, { at, trustAnchors: { intelRoot: h.root.certificate } }), 'crl.invalid', 'processor CRL');
    // A CA of the same name but another key (e.g. a re-keyed PCK CA) under the same root: its CRL does not
    // speak for the PCK's CA, so the PCK (here revoked by its own CA) is not checked against it.
    const r = createDcapHierarchy({ caType: 'platform', revokedPckSerials: ['pck'] });
    const twin = issueCertificate({ subjectCN: 'Intel SGX PCK Platform CA', issuer: r.root, ca: true, notBefore: r.notBefore, notAfter: r.notAfter });
    const t = { ...buildCollateral(r, { tee: 'sgx' }), pckCrlIssuerChain: [twin.der, r.root.der], pckCrl: issueCrl(twin, r.notBefore, r.notAfter) };
    expectCode(() => verifyQuote(buildSignedQuote(r, { tee: 'sgx' }), t, { at, trustAnchors: { intelRoot: r.root.certificate } }), 'crl.invalid', 'same-named CA, other key');
  });

  test('a TCB info of a tcbType other than 0 is collateral.malformed (its levels would be compared by rules we do not know)', () => {
    // tcbType names how TCB components are compared; 0 (component-wise, as matchSgxTcbLevel) is the only one
    // Intel defines (evidence-and-collateral §2.3 "tcbType (must be 0)").
    const h = createDcapHierarchy();
    const info = { ...defaultTcbInfo(h, { tee: 'sgx' }), tcbType: 1 };
    expectCode(
      () => verifyQuote(buildSignedQuote(h, { tee: 'sgx' }), buildCollateral(h, { tee: 'sgx', tcbInfo: info }), { at, trustAnchors: { intelRoot: h.root.certificate } }),
      'collateral.malformed',
      'tcbType 1',
    );
  });

  test('a debug TD verifies and reports debug', () => {
    const h = createDcapHierarchy();
    const tdattributes = Uint8Array.from([1, 0, 0, 0x10, 0, 0, 0, 0]);
    const r = verifyQuote(buildSignedQuote(h, { tee: 'tdx', tdReport: { tdattributes } }), buildCollateral(h, { tee: 'tdx' }), { at, trustAnchors: { intelRoot: h.root.certificate } });
    assert.equal(r.tee === 'tdx' && r.td.debug, true);
  });

  test('collateral past nextUpdate: strict fails, azure reports', () => {
    const h = createDcapHierarchy();
    const c = buildCollateral(h, { tee: 'sgx', issueDate: new Date('2024-01-01T00:00:00Z'), nextUpdate: new Date('2024-02-01T00:00:00Z') });
    const q = buildSignedQuote(h, { tee: 'sgx' });
    expectCode(() => verifyQuote(q, c, { at, trustAnchors: { intelRoot: h.root.certificate } }), 'collateral.expired', 'strict');
    const r = verifyQuote(q, c, { at, freshness: 'azure', trustAnchors: { intelRoot: h.root.certificate } });
    assert.deepEqual(r.collateral.expired.map((x) => x.item).sort(), ['qeIdentity', 'tcbInfo']);
  });
});


describe('verifyQuoteAsync decides as verifyQuote (signatures on the threadpool)', () => {
  const at = new Date('2025-01-01T00:00:00Z');

  for (const tee of ['sgx', 'tdx'] as const) {
    test(`${tee.toUpperCase()}: every single-byte flip of the quote gets the same verdict and error`, async () => {
      const h = createDcapHierarchy();
      const original = buildSignedQuote(h, { tee, reportData: new Uint8Array(64).fill(7) });
      const collateral = buildCollateral(h, { tee });
      const opts = { at, cache: new VerifierCache(), trustAnchors: { intelRoot: h.root.certificate } };
      const ok = await outcome(() => verifyQuoteAsync(original, collateral, opts));
      assert.ok('result' in ok, 'the untouched quote verifies');
      assert.deepEqual(ok, await outcome(() => verifyQuote(original, collateral, opts)));
      const codes = new Set<string>();
      for (let i = 0; i < original.byteLength; i += original.byteLength > 2000 ? 3 : 1) {
        const m = original.slice();
        m[i]! ^= 0x01;
        const sync = await outcome(() => verifyQuote(m, collateral, opts));
        const async = await outcome(() => verifyQuoteAsync(m, collateral, opts));
        assert.deepEqual(async, sync, `byte ${i}`);
        if ('code' in sync) codes.add(sync.code);
      }
      // The flips reach both signatures (and the checks between them), so the order of verdicts was exercised.
      for (const c of ['quote.signature_invalid', 'quote.qe_report_signature_invalid', 'quote.attestation_key_mismatch']) assert.ok(codes.has(c), `a flip failed with ${c}`);
    });
  }

  test('warm: collateral changed in place after it verified is verified again, not taken from the cache', async () => {
    const h = createDcapHierarchy();
    const quote = buildSignedQuote(h, { tee: 'sgx' });
    const c = buildCollateral(h, { tee: 'sgx' });
    const opts = { at, cache: new VerifierCache(), trustAnchors: { intelRoot: h.root.certificate } };
    assert.equal(verifyQuote(quote, c, opts).verified, true);
    assert.equal((await verifyQuoteAsync(quote, c, opts)).verified, true);
    const tcbInfo = c.tcbInfo as Uint8Array;
    const i = Buffer.from(tcbInfo).indexOf('"tcbEvaluationDataNumber":') + 26;
    tcbInfo[i] = tcbInfo[i] === 0x31 ? 0x32 : 0x31;
    expectCode(() => verifyQuote(quote, c, opts), 'collateral.signature_invalid', 'same object, tcbInfo changed');
    const o = await outcome(() => verifyQuoteAsync(quote, c, opts));
    assert.ok('code' in o && o.code === 'collateral.signature_invalid', JSON.stringify(o).slice(0, 200));
  });

  test('warm: a PCK chain changed in place after it verified is verified again, not taken from the cache', async () => {
    const h = createDcapHierarchy();
    const quote = buildSignedQuote(h, { tee: 'sgx' });
    const c = buildCollateral(h, { tee: 'sgx' });
    const cache = new VerifierCache();
    const opts = { at, cache, trustAnchors: { intelRoot: h.root.certificate } };
    assert.equal(verifyQuote(quote, c, opts).verified, true);
    // A base64 character of the leaf's signature (the certification data is outside the signed region).
    let i = Buffer.from(quote).indexOf('-----END CERTIFICATE-----') - 8;
    while (!/[A-Za-z0-9]/.test(String.fromCharCode(quote[i]!))) i--;
    const original = quote[i]!;
    quote[i] = original === 0x41 ? 0x42 : 0x41;
    const cold = await outcome(() => verifyQuote(quote, c, { ...opts, cache: new VerifierCache() }));
    assert.ok('code' in cold && cold.code === 'quote.pck_chain_invalid', JSON.stringify(cold).slice(0, 200));
    assert.deepEqual(await outcome(() => verifyQuote(quote, c, opts)), cold, 'same buffer, chain changed: the warm cache answers as a cold one');
    quote[i] = original;
    assert.equal(verifyQuote(quote, c, opts).verified, true, 'restored');
  });

  test('a bad signature before a failing later check is the error named; a bad one after it is not', async () => {
    const h = createDcapHierarchy();
    const other = createDcapHierarchy({ platform: { fmspc: '00a0cafe0000' } });
    const original = buildSignedQuote(h, { tee: 'sgx' });
    const q = parseQuote(original);
    const sigStart = q.signedRegion.byteLength + 4;
    const qeSig = sigStart + 128 + 384;
    const opts = { at, trustAnchors: { intelRoot: h.root.certificate } };
    // TCB info of another platform (its FMSPC differs): quote.fmspc_mismatch comes after both signatures.
    const foreign = buildCollateral(h, { tee: 'sgx', tcbInfo: defaultTcbInfo(other, { tee: 'sgx' }) });
    const expectBoth = async (bytes: Uint8Array, c: QuoteCollateral, code: string) => {
      for (const v of [verifyQuote, verifyQuoteAsync]) {
        const o = await outcome(() => v(bytes, c, opts));
        assert.ok('code' in o && o.code === code, `${v.name}: ${JSON.stringify(o).slice(0, 200)}`);
      }
    };
    await expectBoth(original, foreign, 'quote.fmspc_mismatch');
    const badQe = original.slice();
    badQe[qeSig + 5]! ^= 0x01;
    await expectBoth(badQe, foreign, 'quote.qe_report_signature_invalid');
    const badQuote = original.slice();
    badQuote[sigStart + 3]! ^= 0x01;
    await expectBoth(badQuote, foreign, 'quote.signature_invalid');
    // A failing check before both signatures (here the collateral's chain) wins over either.
    const early = await outcome(() => verifyQuote(badQe, buildCollateral(other, { tee: 'sgx' }), opts));
    assert.ok('code' in early && !early.code.startsWith('quote.'), JSON.stringify(early));
    assert.deepEqual(await outcome(() => verifyQuoteAsync(badQe, buildCollateral(other, { tee: 'sgx' }), opts)), early);
  });
});
