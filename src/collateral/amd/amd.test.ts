import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ConclaveError, isConclaveError } from '../../core/errors.js';
import { parseCertificate } from '../../core/x509.js';
import { readFixture, readFixtureText, skipWithoutFixtures } from '../../../test/fixtures.js';
import { AMD_ROOTS } from '../../evidence/snp/roots.js';
import { kdsCertChainUrl, kdsCrlUrl, kdsVcekUrl } from './kds.js';
import { parseThimAmdCertification } from './thim.js';
import { parseVekExtensions } from '../../evidence/snp/vek.js';
import { createHash } from 'node:crypto';

const skip = skipWithoutFixtures();

describe('pinned AMD roots', () => {
  test('fingerprints match roots/PROVENANCE.md', () => {
    const fp = (d: Uint8Array): string => createHash('sha256').update(d).digest('hex');
    assert.equal(fp(AMD_ROOTS.Milan.ark.der), '69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd');
    assert.equal(fp(AMD_ROOTS.Milan.ask.der), '67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b');
    assert.equal(fp(AMD_ROOTS.Genoa.ark.der), '4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1');
    assert.equal(fp(AMD_ROOTS.Genoa.ask.der), '5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521');
    assert.equal(fp(AMD_ROOTS.Turin.ark.der), '1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a');
    assert.equal(fp(AMD_ROOTS.Turin.ask.der), '5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185');
    assert.equal(AMD_ROOTS.Milan.asvk.subjectCN, 'SEV-VLEK-Milan');
  });
});

describe('parseVekExtensions', { skip }, () => {
  test('Milan VCEK: SPLs and 64-byte hwID', () => {
    const e = parseVekExtensions(parseCertificate(readFixture('amd/snp-milan-virtee/vcek.der')));
    assert.deepEqual([e.structVersion, e.productName, e.blSpl, e.teeSpl, e.snpSpl, e.ucodeSpl, e.fmcSpl], [0, 'Milan-B0', 3, 0, 8, 115, undefined]);
    assert.equal(e.hwId?.byteLength, 64);
  });
  test('Turin VCEK: struct version 1, fmcSPL, 8-byte hwID', () => {
    const e = parseVekExtensions(parseCertificate(readFixture('amd/vcek-turin-virtee/vcek.der')));
    assert.deepEqual([e.structVersion, e.productName, e.fmcSpl, e.blSpl, e.ucodeSpl], [1, 'Turin', 0, 0, 9]);
    assert.equal(Buffer.from(e.hwId!).toString('hex'), '1e550a8ee5cf9f4d');
  });
  test('VLEK: no hwID, csp_id', () => {
    const e = parseVekExtensions(parseCertificate(readFixture('amd/snp-milan-vlek-aws-trustee/vlek.der')));
    assert.equal(e.hwId, undefined);
    assert.equal(e.cspId, 'CN=cc-us-east-2.amazonaws.com');
    assert.equal(e.productName, 'Milan');
  });
  test('a certificate without the SPL extensions', () => {
    assert.throws(() => parseVekExtensions(AMD_ROOTS.Milan.ask), (e: unknown) => isConclaveError(e, 'snp.chain_invalid'));
  });
});

describe('KDS URLs', () => {
  const chip = Uint8Array.from({ length: 64 }, (_, i) => i);
  test('Milan VCEK (go-sev-guest form), Turin VCEK (8-byte hwid, fmcSPL first)', () => {
    assert.equal(
      kdsVcekUrl('https://kdsintf.amd.com/', 'Milan', chip, { bootloader: 2, tee: 0, snp: 5, microcode: 68 }),
      `https://kdsintf.amd.com/vcek/v1/Milan/${Buffer.from(chip).toString('hex')}?blSPL=02&teeSPL=00&snpSPL=05&ucodeSPL=68`,
    );
    assert.equal(
      kdsVcekUrl('http://127.0.0.1:8080', 'Turin', chip, { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 9 }),
      'http://127.0.0.1:8080/vcek/v1/Turin/0001020304050607?fmcSPL=01&blSPL=02&teeSPL=03&snpSPL=04&ucodeSPL=09',
    );
    assert.equal(kdsCertChainUrl('https://kdsintf.amd.com', 'Genoa', 'vlek'), 'https://kdsintf.amd.com/vlek/v1/Genoa/cert_chain');
    assert.equal(kdsCrlUrl('https://kdsintf.amd.com', 'Turin'), 'https://kdsintf.amd.com/vcek/v1/Turin/crl');
    assert.throws(() => kdsVcekUrl('ftp://x', 'Milan', chip, { bootloader: 0, tee: 0, snp: 0, microcode: 0 }), (e: unknown) => isConclaveError(e, 'request.invalid'));
  });
});

describe('parseThimAmdCertification', () => {
  test('the real THIM response, as JSON and as ACI base64', { skip }, () => {
    const text = readFixtureText('amd/azure-aci-sidecar/uvm_host_amd_certificate.json');
    for (const input of [text, Buffer.from(text).toString('base64')]) {
      const t = parseThimAmdCertification(input);
      assert.equal(t.tcbm, '7308000000000003');
      assert.equal(parseCertificate(t.vcek).subjectCN, 'SEV-VCEK');
      assert.deepEqual(
        t.chain.map((c) => parseCertificate(c).subjectCN),
        ['SEV-Milan', 'ARK-Milan'],
      );
    }
  });
  test('property: never throws anything but ConclaveError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (s) => {
        try {
          parseThimAmdCertification(s);
        } catch (e) {
          if (!(e instanceof ConclaveError)) throw e;
        }
        return true;
      }),
    );
  });
});
