/**
 * Attack on SEV-SNP runtime data (review of SNP claims): runtime data is attacker-chosen bytes that any SNP
 * guest can bind (REPORT_DATA is the guest's to set; a confidential VM rented from a cloud gives a genuine
 * report for any value). Runtime data sent as Binary, or read from an Azure HCL report, was parsed as JSON
 * with no depth limit and issued as `x-ms-runtime`; JSON nested a few thousand levels deep then overflowed
 * the stack where the claims are walked (policy evaluation, the token): a RangeError, a 500. Declared JSON
 * is refused deeper than MAX_JSON_DEPTH (request.invalid) already.
 *
 * A fake AMD hierarchy (src/evidence/snp/testing.ts) stands in for AMD through the service's simulated trust
 * anchors, as in snp-crl.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { b64url, sha256 } from '../core/bytes.js';
import { fail, isConclaveError } from '../core/errors.js';
import { derToPem } from '../core/x509.js';
import { encodeHclReport } from '../evidence/azure-vtpm/hcl.js';
import type { SimulatedTee } from '../evidence/simulated/index.js';
import { verifyAzureHclReport } from '../evidence/snp/index.js';
import { createFakeSnpHierarchy, makeFakeSnpReport } from '../evidence/snp/testing.js';
import { incomingClaims, snpClaims } from './claims.js';
import { DEFAULT_POLICIES } from './policy/index.js';
import type { SnpCertificateSource } from './ports.js';
import { draftPolicyService } from './testing.js';

const at = new Date('2025-06-01T00:00:00Z');
const h = createFakeSnpHierarchy();

const svc = draftPolicyService({
  snpCertificates: {
    async getVcek() {
      throw new Error('unused: the VCEK is in the evidence');
    },
    async getCrl() {
      throw fail('collateral.not_found', 'no AMD CRL');
    },
  } as unknown as SnpCertificateSource,
  now: () => at,
  simulated: { amdAnchors: h.trustAnchors } as unknown as SimulatedTee,
});

/** A JSON object nested `n` levels deep. */
const nested = (n: number) => new TextEncoder().encode(`${'{"a":'.repeat(n)}1${'}'.repeat(n)}`);

/** REPORT_DATA binding `data` as MAA and the Azure HCL do: SHA-256 ‖ zeros. */
function boundTo(data: Uint8Array): Uint8Array {
  const rd = new Uint8Array(64);
  rd.set(sha256(data));
  return rd;
}

describe('SNP runtime data nested too deep is never walked into a stack overflow', () => {
  test('container form: Binary runtime data that is JSON 100 and 20,000 levels deep attests as bytes, without x-ms-runtime', async () => {
    const chain = b64url([h.vek.der, ...h.chain].map((d) => derToPem(d)).join(''));
    for (const depth of [100, 20_000]) {
      const data = nested(depth);
      const report = b64url(JSON.stringify({ SnpReport: b64url(makeFakeSnpReport(h, { reportData: boundTo(data) })), VcekCertChain: chain }));
      const { claims } = await svc.attest('SevSnpVm', { report, runtimeData: { data: b64url(data), dataType: 'Binary' }, draftPolicyForAttestation: DEFAULT_POLICIES.SevSnpVm });
      assert.equal(claims['x-ms-runtime'], undefined, `depth ${depth}`);
      assert.equal(claims['x-ms-sevsnpvm-reportdata'], Buffer.from(boundTo(data)).toString('hex'));
    }
  });

  test('Azure HCL form: runtime data nested deeper than 64 levels is not read as runtime claims, and the claims of the result can be walked', () => {
    for (const depth of [100, 20_000]) {
      const data = nested(depth);
      const hcl = encodeHclReport({ hwReport: makeFakeSnpReport(h, { reportData: boundTo(data) }), runtimeData: data });
      const r = verifyAzureHclReport(hcl, { vcek: h.vek.der }, { at, trustAnchors: h.trustAnchors });
      assert.equal(r.runtimeData?.json, undefined, `depth ${depth}`);
      assert.ok(r.warnings.some((w) => w.includes('HCL runtime data')));
      assert.doesNotThrow(() => incomingClaims(snpClaims(r, 'azure-hcl')));
    }
  });
});

describe('evidence JSON nested too deep is refused (4xx), never walked into a stack overflow', () => {
  // The request body is depth-checked at the edge, but these documents travel inside it as base64: trustee's
  // az-snp-vtpm / az-tdx-vtpm evidence (the `report` of SevSnpVm, the `quote` of TdxVm), the AzureGuest
  // AttestationInfo and the TPM protocol message. A member echoed into an error message (String(version),
  // JSON.stringify(IsolationInfo.Type), JSON.stringify(type)) overflowed the stack: a RangeError, a 500.
  const deepArray = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  /** What `run` answered, when it is not a typed 4xx refusal. */
  const unlessRefused = async (what: string, run: () => Promise<unknown>): Promise<string[]> => {
    try {
      await run();
      return [`${what}: accepted`];
    } catch (e) {
      return isConclaveError(e) && e.status < 500 ? [] : [`${what}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`];
    }
  };

  for (const depth of [100, 20_000]) {
    test(`${depth} levels deep: trustee vTPM evidence, AzureGuest AttestationInfo, a TPM protocol message`, async () => {
      const d = deepArray(depth);
      const trustee = b64(`{"version":${d},"tpm_quote":{},"hcl_report":""}`);
      const info = `{"AttestationProtocolVersion":"2.0","TpmInfo":{"PCRs":[{"Index":0,"Digest":"AAAA"}],"AikPub":"AAAA","PcrQuote":"AAAA","PcrSignature":"AAAA"},"IsolationInfo":{"Type":${d}}}`;
      const wrong = [
        ...(await unlessRefused('SevSnpVm trustee version', () => svc.attest('SevSnpVm', { report: trustee }))),
        ...(await unlessRefused('TdxVm trustee version', () => svc.attest('TdxVm', { quote: trustee }))),
        ...(await unlessRefused('AzureGuest IsolationInfo.Type', () => svc.attestGuest({ AttestationInfo: b64(info) }))),
        ...(await unlessRefused('Tpm type', () => svc.attestTpm({ data: b64(`{"type":${d}}`) }))),
        ...(await unlessRefused('Tpm payload.type', () => svc.attestTpm({ data: b64(`{"payload":{"type":${d}}}`) }))),
      ];
      assert.deepEqual(wrong, []);
    });
  }
});
