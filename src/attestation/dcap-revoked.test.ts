/**
 * A quote whose TCB Intel has Revoked (its platform level, its QE identity level or its TDX module level) is
 * not attested: Intel's PCS calls a revoked platform not trustworthy and its QvE reports REVOKED as a
 * terminal result, and MAA attests only quotes that meet the Azure baseline. The verifier still returns
 * the result (docs/dcap.md); the service refuses it with quote.tcb_revoked (400), whatever the policy
 * (the SGX default permits everything). OutOfDate still attests, with its status stated.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readFixtureJson, skipWithoutFixtures } from '../../test/fixtures.js';
import { b64url, fromB64 } from '../core/bytes.js';
import { isConclaveError } from '../core/errors.js';
import { encodeGuestAttestationInfo } from '../evidence/azure-vtpm/guest.js';
import { buildCollateral, defaultQeIdentity, defaultTcbInfo } from '../evidence/dcap/testing.js';
import { loadOrCreateSimulatedTee, type SimulatedTee } from '../evidence/simulated/index.js';
import { DEFAULT_POLICIES } from './policy/index.js';
import { draftPolicyService } from './testing.js';

const dir = mkdtempSync(join(tmpdir(), 'conclave-dcap-revoked-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const simulated = loadOrCreateSimulatedTee(dir);

type Where = 'platform' | 'qe' | 'module';

/** The service with the simulated TEE's collateral, one level of it set to `status`. */
function serviceWith(where: Where, status: string) {
  const collateral = (tee: 'sgx' | 'tdx') => {
    const tcbInfo = defaultTcbInfo(simulated.dcap, { tee });
    const qeIdentity = defaultQeIdentity(simulated.dcap, { tee });
    if (where === 'platform') (tcbInfo.tcbLevels as { tcbStatus: string }[])[0]!.tcbStatus = status;
    if (where === 'qe') (qeIdentity.tcbLevels as { tcbStatus: string }[])[0]!.tcbStatus = status;
    if (where === 'module') (tcbInfo.tdxModuleIdentities as { tcbLevels: { tcbStatus: string }[] }[])[0]!.tcbLevels[0]!.tcbStatus = status;
    return buildCollateral(simulated.dcap, { tee, tcbInfo, qeIdentity });
  };
  return draftPolicyService({ simulated: { ...simulated, collateral } as SimulatedTee });
}

const attest = (where: Where, status: string, tee: 'sgx' | 'tdx') => {
  const type = tee === 'sgx' ? 'SgxEnclave' : 'TdxVm';
  const quote = simulated.evidence({ tee, runtimeData: new Uint8Array(8) }).body.quote as string;
  return serviceWith(where, status).attest(type, { quote, draftPolicyForAttestation: DEFAULT_POLICIES[type] });
};

describe('a quote on a Revoked TCB is not attested', () => {
  for (const [where, tee] of [
    ['platform', 'sgx'],
    ['qe', 'sgx'],
    ['platform', 'tdx'],
    ['qe', 'tdx'],
    ['module', 'tdx'],
  ] as const) {
    test(`${tee.toUpperCase()}, ${where} level Revoked: quote.tcb_revoked; OutOfDate attests and says so`, async () => {
      await assert.rejects(attest(where, 'Revoked', tee), (e) => isConclaveError(e, 'quote.tcb_revoked'));
      const { claims } = await attest(where, 'OutOfDate', tee);
      assert.equal(claims['x-conclave-tcb-status'], 'OutOfDate');
    });
  }
});

describe('the Azure vTPM TDX forms refuse it too', { skip: skipWithoutFixtures() }, () => {
  // Trustee's az-tdx-vtpm evidence on /attest/TdxVm and the AzureGuest Tdx AttestationInfo verify their TD
  // quote through the same DCAP step. A real quote on a Revoked TCB cannot be made (Intel signs the collateral),
  // so the simulated TD quote stands in: this path refuses simulated quotes (evidence.untrusted_root) after
  // verification, so the Revoked refusal must come first, from that step itself.
  const tdQuote = () => fromB64(simulated.evidence({ tee: 'tdx', runtimeData: new Uint8Array(8) }).body.quote as string, 'quote');
  const trustee = () => {
    // The real trustee document (test/vectors/azure-vtpm-trustee, v0 byte arrays) with the simulated TD quote in it.
    const doc = readFixtureJson<Record<string, unknown>>('azure-vtpm-trustee', 'az-tdx-vtpm-evidence-v0.json');
    return b64url(JSON.stringify({ ...doc, td_quote: [...tdQuote()] }));
  };
  const guest = () =>
    encodeGuestAttestationInfo({
      protocolVersion: '2.0',
      os: { type: 'Linux', distro: 'Ubuntu', build: 'x', versionMajor: 22, versionMinor: 4 },
      tcgLog: new Uint8Array(0),
      clientPayload: {},
      tpm: { aikCert: new Uint8Array(0), aikPub: new Uint8Array(1), quote: new Uint8Array(1), signature: new Uint8Array(1), pcrs: [{ hashAlg: 0x000b, index: 0, value: new Uint8Array(32) }] },
      isolation: { type: 'Tdx', tdQuote: tdQuote(), runtimeData: new Uint8Array(1) },
    });
  for (const where of ['platform', 'qe', 'module'] as const) {
    test(`${where} level Revoked: quote.tcb_revoked on TdxVm (trustee) and AzureGuest; OutOfDate goes on to the next check`, async () => {
      await assert.rejects(serviceWith(where, 'Revoked').attest('TdxVm', { quote: trustee() }), (e) => isConclaveError(e, 'quote.tcb_revoked'));
      await assert.rejects(serviceWith(where, 'Revoked').attestGuest({ AttestationInfo: guest() }), (e) => isConclaveError(e, 'quote.tcb_revoked'));
      await assert.rejects(serviceWith(where, 'OutOfDate').attest('TdxVm', { quote: trustee() }), (e) => isConclaveError(e, 'evidence.untrusted_root'));
      await assert.rejects(serviceWith(where, 'OutOfDate').attestGuest({ AttestationInfo: guest() }), (e) => isConclaveError(e, 'evidence.untrusted_root'));
    });
  }
});
