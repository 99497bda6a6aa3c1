/**
 * What verifyCollateralItem accepts as Intel's signed collateral, on a DCAP hierarchy of one's own
 * (evidence/dcap/testing.ts) passed as the Intel root: TCB info, enclave identities and TCB evaluation
 * data numbers are signed by Intel's TCB signing key, not by whatever key has a certificate under the root.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { derToPem } from '../../core/x509.js';
import { type DcapHierarchy, type Issued, createDcapHierarchy, defaultQeIdentity, defaultTcbInfo, issueCertificate, signJson } from '../../evidence/dcap/testing.js';
import type { CollateralItem, CollateralKind } from './item.js';
import { verifyCollateralItem } from './verify.js';

const h: DcapHierarchy = createDcapHierarchy();
const anchors = { intelRoot: h.root.certificate };

/** A PCS-shaped signed JSON answer (`{"<member>":…,"signature":"<hex>"}`) signed by `signer`, with `chain` as its issuer chain. */
function signedItem(kind: CollateralKind, scope: string, member: string, value: unknown, signer: Issued, chain: readonly Issued[]): CollateralItem {
  const { body, signature } = signJson(value, signer.privateKey);
  const text = `{"${member}":${Buffer.from(body).toString('utf8')},"signature":"${Buffer.from(signature).toString('hex')}"}`;
  return {
    key: scope,
    kind,
    scope,
    evalNumber: null,
    selector: null,
    meta: { contentType: 'application/json', issuerChain: chain.map((c) => derToPem(c.der)).join('') },
    body: new Uint8Array(Buffer.from(text)),
    source: `https://pcs.example/${scope}`,
    fetchedAt: h.notBefore.getTime() + 1000,
    issueDate: null,
    nextUpdate: null,
    version: 0,
  };
}

const evalNumbers = { id: 'SGX', version: 1, issueDate: h.notBefore.toISOString(), nextUpdate: h.notAfter.toISOString(), tcbEvalNumbers: [{ tcbEvaluationDataNumber: 17, tcbRecoveryEventDate: h.notBefore.toISOString(), tcbDate: h.notBefore.toISOString() }] };
const cases: [CollateralKind, string, string, unknown][] = [
  ['tcb', 'sgx/v4/tcb/00906ED50000', 'tcbInfo', defaultTcbInfo(h, { tee: 'sgx' })],
  ['qe_identity', 'sgx/v4/qe/identity', 'enclaveIdentity', defaultQeIdentity(h, { tee: 'sgx' })],
  ['tcb_eval_numbers', 'sgx/v4/tcbevaluationdatanumbers', 'tcbEvaluationDataNumbers', evalNumbers],
];

describe('verifyCollateralItem: Intel signed JSON', () => {
  test('signed by the TCB signing key, chain to the root: verifies', () => {
    for (const [kind, scope, member, value] of cases) {
      assert.doesNotThrow(() => verifyCollateralItem(signedItem(kind, scope, member, value, h.tcbSigning, [h.tcbSigning, h.root]), anchors), kind);
    }
  });

  test('attack: TCB info, identity and evaluation numbers signed by a PCK key (a platform’s, chained to the same root) are refused', () => {
    // A PCK certificate chains to the Intel root too, and its key lives in a platform: one extracted from a
    // compromised platform would sign a TCB info marking that platform UpToDate, an identity admitting any QE.
    for (const [kind, scope, member, value] of cases) {
      assert.throws(() => verifyCollateralItem(signedItem(kind, scope, member, value, h.pck, [h.pck, h.pckCa, h.root]), anchors), { code: 'collateral.bundle_invalid' }, kind);
    }
  });

  test('each part of the signer rule on its own: the TCB signing name, not a CA, issued by the root itself', () => {
    // Certificates only the root's holder could issue, each failing one part of the rule: none signs Intel's JSON.
    const validity = { notBefore: h.notBefore, notAfter: h.notAfter };
    const namedCa = issueCertificate({ subjectCN: 'Intel SGX TCB Signing', issuer: h.root, ca: true, ...validity });
    const otherName = issueCertificate({ subjectCN: 'Intel SGX Other Signing', issuer: h.root, ca: false, ...validity });
    const belowPckCa = issueCertificate({ subjectCN: 'Intel SGX TCB Signing', issuer: h.pckCa, ca: false, ...validity });
    for (const [what, signer, chain] of [
      ['a CA named like the TCB signing certificate', namedCa, [namedCa, h.root]],
      ['a root-issued leaf of another name', otherName, [otherName, h.root]],
      ['a TCB signing name issued by the PCK CA', belowPckCa, [belowPckCa, h.pckCa, h.root]],
    ] as const) {
      for (const [kind, scope, member, value] of cases) {
        assert.throws(() => verifyCollateralItem(signedItem(kind, scope, member, value, signer, chain), anchors), (e: { code?: string; detail?: { cause?: string } }) => e.code === 'collateral.bundle_invalid' && e.detail?.cause === 'collateral.chain_invalid', `${what}: ${kind}`);
      }
    }
  });
});
