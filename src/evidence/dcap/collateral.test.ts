import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fixturePath, readFixture, readFixtureJson, readFixtureText, skipWithoutFixtures } from '../../../test/fixtures.js';
import { isConclaveError } from '../../core/errors.js';
import { parseCertificate, pemToDer } from '../../core/x509.js';
import { INTEL_SGX_ROOT_CA, INTEL_SGX_ROOT_CA_SHA256 } from './roots.js';
import { parseQuoteCollateral, quoteCollateralToJson } from './collateral.js';
import { parsePckSgxExtension } from './pck-extension.js';
import { splitSignedResponse, verifyP256 } from './signed-json.js';
import { parseEnclaveIdentity, parseTcbInfo } from './tcb-info.js';
import { createPublicKey, createHash } from 'node:crypto';

const skip = skipWithoutFixtures();

describe('Intel collateral', { skip }, () => {
  if (skip) return;

  test('the pinned root is the published Intel SGX Root CA', () => {
    assert.equal(createHash('sha256').update(INTEL_SGX_ROOT_CA.der).digest('hex'), INTEL_SGX_ROOT_CA_SHA256);
    assert.deepEqual(Buffer.from(INTEL_SGX_ROOT_CA.der), readFixture('intel', 'roots', 'Intel_SGX_Provisioning_Certification_RootCA.der'));
  });

  test('every real PCS body verifies over its exact bytes and parses', () => {
    const dir = fixturePath('intel', 'pcs-responses-teepot');
    let checked = 0;
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
      const w = readFixtureJson<Record<string, string>>('intel', 'pcs-responses-teepot', f);
      const member = w.tcb_info_json ? 'tcbInfo' : w.enclave_identity_json ? 'enclaveIdentity' : undefined;
      if (!member) continue;
      const { signed, signature } = splitSignedResponse((w.tcb_info_json ?? w.enclave_identity_json)!, member);
      const signer = parseCertificate(pemToDer(w.issuer_chain!)[0]!);
      const key = createPublicKey({ key: Buffer.from(signer.spki), format: 'der', type: 'spki' });
      assert.ok(verifyP256(key, signed, signature), f);
      const tampered = signed.slice();
      tampered[5]! ^= 1;
      assert.ok(!verifyP256(key, tampered, signature), `${f} tampered`);
      if (member === 'tcbInfo') {
        const info = parseTcbInfo(signed);
        assert.ok(info.tcbLevels.length > 0);
        if (info.id === 'TDX') assert.ok(info.tcbLevels.every((l) => l.tdxtcbcomponents?.length === 16));
        if (info.version === 2) assert.equal(info.id, 'SGX');
      } else {
        assert.ok(['QE', 'QVE', 'QAE', 'TD_QE'].includes(parseEnclaveIdentity(signed).id));
      }
      checked++;
    }
    assert.ok(checked >= 10, `checked ${checked}`);
  });

  test('PCK SGX extension of the sgx-v3-phala quote', () => {
    const quote = readFixture('intel', 'sgx-v3-phala', 'quote.bin');
    const pem = quote.subarray(432 + 4).toString('latin1');
    const leaf = parseCertificate(pemToDer(pem)[0]!);
    const ext = parsePckSgxExtension(leaf);
    assert.equal(ext.fmspc, '00a067110000');
    assert.equal(ext.pceId, '0000');
    assert.deepEqual(ext.sgxTcbComponents, [11, 11, 2, 2, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(ext.pcesvn, 13);
    assert.equal(ext.sgxType, 'Standard');
    assert.throws(() => parsePckSgxExtension(INTEL_SGX_ROOT_CA), (e) => isConclaveError(e, 'quote.pck_extension_invalid'));
  });

  test('QvE JSON round-trips and rejects malformed input with typed errors', () => {
    const text = readFixtureText('intel', 'tdx-v4-phala', 'collateral.orig.json');
    const c = parseQuoteCollateral(text);
    assert.deepEqual(parseQuoteCollateral(quoteCollateralToJson(c)), c);
    assert.deepEqual(Buffer.from(c.pckCrl), readFixture('intel', 'tdx-v4-phala', 'pck_crl.der'));
    assert.throws(() => parseQuoteCollateral('{'), (e) => isConclaveError(e, 'collateral.malformed'));
    const o = JSON.parse(text) as Record<string, unknown>;
    delete o.tcb_info;
    assert.throws(() => parseQuoteCollateral(o), (e) => isConclaveError(e, 'collateral.missing'));
    assert.throws(() => parseQuoteCollateral({ ...JSON.parse(text), tcb_info_signature: 'abcd' }), (e) => isConclaveError(e, 'collateral.malformed'));
  });

  test('the signed bytes are sliced, not re-serialised', () => {
    const body = '{ "tcbInfo" : {"b":1,  "a":[1, 2]} , "signature":"' + '00'.repeat(64) + '"}';
    assert.equal(Buffer.from(splitSignedResponse(body, 'tcbInfo').signed).toString(), '{"b":1,  "a":[1, 2]}');
    assert.throws(() => splitSignedResponse('{"tcbInfo":{}}', 'tcbInfo'), (e) => isConclaveError(e, 'collateral.malformed'));
  });
});
