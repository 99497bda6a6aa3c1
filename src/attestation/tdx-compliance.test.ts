/**
 * The default TdxVm and AzureGuest policies call an Azure TDX CVM `azure-compliant-cvm` only when Intel has
 * not revoked the TCB its quote verified at. The service refuses such a quote before any policy runs
 * (quote.tcb_revoked, dcap-revoked.test.ts); the condition keeps the policy text sound on its own, e.g. when
 * copied, since Intel's QvE reports a Revoked TCB as a terminal result.
 * Real TD quotes chain to Intel's root, whose collateral cannot be re-signed as Revoked, so the default
 * policies are evaluated here on the claim set the service states for a TDX CVM.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Claims, incomingClaims } from './claims.js';
import { DEFAULT_POLICIES, evaluatePolicy } from './policy/index.js';

const tee = (status: string): Claims => ({ 'x-ms-attestation-type': 'tdxvm', tdx_td_attributes_debug: false, attester_tcb_status: status });
const vtpm: Claims = { 'x-conclave-vtpm-verified': true, 'x-conclave-secure-boot-config': true };

function compliance(policy: string, claims: Claims, type: string): unknown {
  const r = evaluatePolicy(policy, incomingClaims(claims));
  assert.ok(r.permitted);
  return r.issued.find((c) => c.type === type)?.value;
}

describe('default Azure CVM policies: a TDX CVM on a Revoked TCB is not azure-compliant-cvm', () => {
  for (const status of ['UpToDate', 'SWHardeningNeeded', 'OutOfDate', 'TDRelaunchAdvised', 'Revoked']) {
    const expected = status === 'Revoked' ? undefined : 'azure-compliant-cvm';
    test(`attester_tcb_status ${status}: ${expected ?? 'not compliant'}`, () => {
      assert.equal(compliance(DEFAULT_POLICIES.TdxVm, { ...vtpm, ...tee(status) }, 'x-ms-compliance-status'), expected, 'TdxVm');
      assert.equal(compliance(DEFAULT_POLICIES.AzureGuest, { ...vtpm, 'x-ms-isolation-tee': tee(status) }, 'x-ms-isolation-tee.x-ms-compliance-status'), expected, 'AzureGuest');
    });
  }
});
