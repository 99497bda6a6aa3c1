/**
 * Pin (review of DCAP claims): a quote is attested only on the route of its TEE. An SGX quote sent to
 * /attest/TdxVm, or a TDX quote to /attest/SgxEnclave or /attest/OpenEnclave, is quote.unsupported (400),
 * so a token's `x-ms-attestation-type` always names the TEE that produced the quote. Already defended;
 * pinned here with the simulated TEE (its trust anchors, under --simulate).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { loadOrCreateSimulatedTee } from '../evidence/simulated/index.js';
import { DEFAULT_POLICIES } from './policy/index.js';
import { draftPolicyService } from './testing.js';

const dir = mkdtempSync(join(tmpdir(), 'conclave-dcap-routes-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const simulated = loadOrCreateSimulatedTee(dir);

const svc = draftPolicyService({ simulated });

const quoteOf = (tee: 'sgx' | 'tdx') => simulated.evidence({ tee, runtimeData: new Uint8Array(8) }).body.quote as string;
/** OpenEnclave evidence is the `report` field; the SGX and TDX routes take `quote`. */
const body = (type: 'SgxEnclave' | 'OpenEnclave' | 'TdxVm', quote: string) => ({ [type === 'OpenEnclave' ? 'report' : 'quote']: quote, draftPolicyForAttestation: DEFAULT_POLICIES[type] });

describe('a DCAP quote attests only on the route of its TEE (pin)', () => {
  test('the control: each quote on its own route', async () => {
    for (const [type, tee, attestationType] of [
      ['SgxEnclave', 'sgx', 'sgx'],
      ['OpenEnclave', 'sgx', 'sgx'],
      ['TdxVm', 'tdx', 'tdxvm'],
    ] as const) {
      const { claims } = await svc.attest(type, body(type, quoteOf(tee)));
      assert.equal(claims['x-ms-attestation-type'], attestationType, type);
    }
  });

  test('an SGX quote on the TDX route, a TDX quote on the SGX and OpenEnclave routes: quote.unsupported', async () => {
    for (const [type, tee] of [
      ['TdxVm', 'sgx'],
      ['SgxEnclave', 'tdx'],
      ['OpenEnclave', 'tdx'],
    ] as const) {
      await assert.rejects(
        svc.attest(type, body(type, quoteOf(tee))),
        (e) => isConclaveError(e, 'quote.unsupported'),
        `${tee} quote on ${type}`,
      );
    }
  });
});
