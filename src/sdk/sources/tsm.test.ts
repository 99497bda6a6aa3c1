import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { sha256 } from '../../core/bytes.js';
import { derToPem, pemToDer } from '../../core/x509.js';
import { readFixture, readFixtureText, skipWithoutFixtures } from '../../../test/fixtures.js';
import { snpPartsOfBody } from './maa-body.js';
import { SNP_CERT_GUIDS, certChainPemOf, encodeSnpCertTable, parseSnpCertTable } from './snp-certs.js';
import { type TsmFs, requestTsmReport, tsmSource } from './tsm.js';

/**
 * A fake kernel over a temp dir with the configfs-tsm file protocol: mkdir populates the entry,
 * every write to inblob/privlevel bumps `generation`, reading outblob produces a report over inblob.
 */
function fakeConfigfs(opts: { provider: string; auxblob?: Uint8Array; concurrentWriter?: boolean; signerInfo?: number }) {
  const state = new Map<string, { generation: number; inblob: Uint8Array; privlevel?: number }>();
  const writes: string[] = [];
  const fs: TsmFs = {
    stat: (p) => fsp.stat(p),
    async mkdir(p) {
      await fsp.mkdir(p);
      state.set(p, { generation: 0, inblob: new Uint8Array(0) });
      await fsp.writeFile(join(p, 'provider'), `${opts.provider}\n`);
      await fsp.writeFile(join(p, 'generation'), '0\n');
    },
    async rmdir(p) {
      state.delete(p);
      await fsp.rm(p, { recursive: true });
    },
    async writeFile(p, data) {
      const s = state.get(dirname(p))!;
      const name = basename(p);
      if (name !== 'inblob' && name !== 'privlevel') throw Object.assign(new Error(`EACCES: ${name} is read-only`), { code: 'EACCES' });
      if (name === 'inblob') {
        if (data.byteLength > 64) throw new Error('EINVAL');
        s.inblob = new Uint8Array(data);
      } else s.privlevel = Number(Buffer.from(data).toString());
      s.generation++;
      writes.push(name);
      await fsp.writeFile(join(dirname(p), 'generation'), `${s.generation}\n`);
    },
    async readFile(p) {
      const dir = dirname(p);
      const s = state.get(dir)!;
      const name = basename(p);
      if (name === 'outblob') {
        const report = new Uint8Array(1184);
        report[0] = 2;
        report[0x48] = opts.signerInfo ?? 0;
        report.set(s.inblob, 0x50);
        if (opts.concurrentWriter) {
          s.generation++;
          await fsp.writeFile(join(dir, 'generation'), `${s.generation}\n`);
        }
        return report;
      }
      if (name === 'auxblob') {
        if (!opts.auxblob) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
        return opts.auxblob;
      }
      return new Uint8Array(await fsp.readFile(p));
    },
  };
  return { fs, writes, entries: state };
}

describe('configfs-tsm source', () => {
  const base = mkdtempSync(join(tmpdir(), 'conclave-tsm-'));
  after(() => rmSync(base, { recursive: true, force: true }));
  let n = 0;
  const newRoot = async () => {
    const root = join(base, `report${n++}`);
    await fsp.mkdir(root);
    return root;
  };

  test('SEV-SNP: REPORT_DATA = SHA-256(runtime data) ‖ zeros, certificates from auxblob, entry removed', { skip: skipWithoutFixtures() }, async () => {
    const root = await newRoot();
    const vcek = new Uint8Array(readFixture('amd', 'snp-milan-virtee', 'vcek.der'));
    const [ask, ark] = pemToDer(readFixtureText('amd', 'snp-milan-virtee', 'cert_chain.pem'));
    const auxblob = encodeSnpCertTable([
      { guid: SNP_CERT_GUIDS.ark, data: ark! },
      { guid: SNP_CERT_GUIDS.vcek, data: vcek },
      { guid: SNP_CERT_GUIDS.ask, data: ask! },
    ]);
    const fake = fakeConfigfs({ provider: 'sev_guest', auxblob });
    const runtimeData = new Uint8Array(Buffer.from('{"keys":[]}'));
    const ev = await tsmSource({ root, fs: fake.fs }).getEvidence(runtimeData);
    assert.equal(ev.path, '/attest/SevSnpVm');
    const { report, vcekCertChainPem } = snpPartsOfBody(ev.body);
    assert.deepEqual(report.subarray(0x50, 0x70), sha256(runtimeData));
    assert.deepEqual(report.subarray(0x70, 0x90), new Uint8Array(32));
    const chain = pemToDer(vcekCertChainPem!);
    assert.deepEqual(chain.map((c) => Buffer.from(c).toString('hex')), [vcek, ask!, ark!].map((c) => Buffer.from(c).toString('hex')), 'VCEK, ASK, ARK order');
    assert.equal(Buffer.from((ev.body.runtimeData as { data: string }).data, 'base64').toString(), '{"keys":[]}');
    assert.deepEqual(await fsp.readdir(root), [], 'report entry removed');
  });

  test('Azure confidential containers: the UVM security context adds the UVM endorsement and the THIM VCEK chain', { skip: skipWithoutFixtures() }, async () => {
    const root = await newRoot();
    const ctx = join(base, `ctx${n++}`);
    await fsp.mkdir(ctx);
    const uvm = readFixture('amd', 'azure-aci-sidecar', 'body.uvm_reference_info.bin');
    await fsp.writeFile(join(ctx, 'reference-info-base64'), `${uvm.toString('base64')}\n`);
    await fsp.writeFile(join(ctx, 'host-amd-cert-base64'), readFixture('amd', 'azure-aci-sidecar', 'uvm_host_amd_certificate.json').toString('base64'));
    const fake = fakeConfigfs({ provider: 'sev_guest' });
    const ev = await tsmSource({ root, fs: fake.fs, securityContextDir: ctx }).getEvidence(new Uint8Array(Buffer.from('{}')));
    const parts = snpPartsOfBody(ev.body);
    assert.deepEqual(parts.uvmReferenceInfo, new Uint8Array(uvm), 'Endorsements.Uvm[0] is the reference info');
    const inner = JSON.parse(Buffer.from(ev.body.report as string, 'base64url').toString('utf8'));
    assert.deepEqual(Object.keys(JSON.parse(Buffer.from(inner.Endorsements, 'base64url').toString('utf8'))), ['Uvm']);
    const thim = readFixtureText('amd', 'azure-aci-sidecar', 'uvm_host_amd_certificate.pem');
    assert.deepEqual(pemToDer(parts.vcekCertChainPem!).map((c) => Buffer.from(c).toString('hex')), pemToDer(thim).map((c) => Buffer.from(c).toString('hex')), 'VCEK, ASK, ARK from THIM');
    // No security context: neither is sent; a garbled file is a typed failure.
    const plain = snpPartsOfBody((await tsmSource({ root, fs: fake.fs }).getEvidence(new Uint8Array(1))).body);
    assert.equal(plain.uvmReferenceInfo, undefined);
    await fsp.writeFile(join(ctx, 'reference-info-base64'), 'not base64 !');
    await assert.rejects(tsmSource({ root, fs: fake.fs, securityContextDir: ctx }).getEvidence(new Uint8Array(1)), { code: 'sdk.evidence_failed' });
  });

  test('TDX: outblob becomes the TdxVm quote', async () => {
    const root = await newRoot();
    const fake = fakeConfigfs({ provider: 'tdx_guest' });
    const ev = await tsmSource({ root, fs: fake.fs }).getEvidence(new Uint8Array([1, 2, 3]), { runtimeDataType: 'Binary' });
    assert.equal(ev.path, '/attest/TdxVm');
    assert.equal(Buffer.from(ev.body.quote as string, 'base64').byteLength, 1184);
    assert.deepEqual(ev.body.runtimeData, { data: 'AQID', dataType: 'Binary' });
  });

  test('a concurrent writer (generation moved beyond our own writes) fails', async () => {
    const root = await newRoot();
    const fake = fakeConfigfs({ provider: 'sev_guest', concurrentWriter: true });
    await assert.rejects(requestTsmReport(new Uint8Array(64), { root, fs: fake.fs }), { code: 'sdk.evidence_failed' });
    assert.deepEqual(await fsp.readdir(root), [], 'entry removed after failure');
  });

  test('privlevel counts as one of our own writes', async () => {
    const root = await newRoot();
    const fake = fakeConfigfs({ provider: 'sev_guest' });
    const r = await requestTsmReport(new Uint8Array(64), { root, fs: fake.fs, privlevel: 2 });
    assert.equal(r.generation, 2);
    assert.deepEqual(fake.writes, ['privlevel', 'inblob']);
    assert.equal(r.auxblob, undefined);
  });

  test('unknown provider and missing root are clear unavailability errors', async () => {
    const root = await newRoot();
    const fake = fakeConfigfs({ provider: 'arm_cca_guest' });
    await assert.rejects(requestTsmReport(new Uint8Array(64), { root, fs: fake.fs }), { code: 'sdk.evidence_source_unavailable', message: /arm_cca_guest/ });
    await assert.rejects(requestTsmReport(new Uint8Array(64), { root: join(base, 'absent') }), {
      code: 'sdk.evidence_source_unavailable',
      message: /configfs-tsm not found at .*Linux 6\.7\+/,
    });
  });

  test('certificate table from the host with both a VCEK and a VLEK: the chain sent is the VEK the report names (SIGNER_INFO.SIGNING_KEY); a GUID twice is refused', async () => {
    // The table is the hypervisor's to fill. With the VCEK always taken first, a VLEK-signed report went out with
    // the VCEK and failed verification (snp.chain_invalid) however good the VLEK beside it.
    const vcek = Uint8Array.of(0x30, 1, 1);
    const vlek = Uint8Array.of(0x30, 1, 2);
    const asvk = Uint8Array.of(0x30, 1, 3);
    const ark = Uint8Array.of(0x30, 1, 4);
    const auxblob = encodeSnpCertTable([
      { guid: SNP_CERT_GUIDS.vcek, data: vcek },
      { guid: SNP_CERT_GUIDS.vlek, data: vlek },
      { guid: SNP_CERT_GUIDS.ask, data: asvk },
      { guid: SNP_CERT_GUIDS.ark, data: ark },
    ]);
    const hex = (pem: string | undefined) => pemToDer(pem!).map((c) => Buffer.from(c).toString('hex'));
    for (const [signerInfo, vek] of [
      [0x4, vlek],
      [0x0, vcek],
    ] as const) {
      const r = await tsmSource({ root: await newRoot(), fs: fakeConfigfs({ provider: 'sev_guest', auxblob, signerInfo }).fs }).getSnpReport!(new Uint8Array(64));
      assert.deepEqual(hex(r.vcekCertChainPem), [vek, asvk, ark].map((c) => Buffer.from(c).toString('hex')), `SIGNER_INFO ${signerInfo}`);
    }
    const twice = encodeSnpCertTable([
      { guid: SNP_CERT_GUIDS.vcek, data: vcek },
      { guid: SNP_CERT_GUIDS.vcek, data: vlek },
    ]);
    assert.throws(() => parseSnpCertTable(twice), { code: 'evidence.malformed' });
  });

  /** A UVM security context whose THIM certification names `vcek` (its chain: ASK, ARK of `0x30 1 7/8`). */
  const thimContext = async (vcek: Uint8Array) => {
    const ctx = join(base, `ctx${n++}`);
    await fsp.mkdir(ctx);
    const certificateChain = derToPem(Uint8Array.of(0x30, 1, 7)) + derToPem(Uint8Array.of(0x30, 1, 8));
    await fsp.writeFile(join(ctx, 'host-amd-cert-base64'), Buffer.from(JSON.stringify({ vcekCert: derToPem(vcek), certificateChain })).toString('base64'));
    return ctx;
  };
  const derHex = (pem: string | undefined) => (pem === undefined ? undefined : pemToDer(pem).map((c) => Buffer.from(c).toString('hex')));

  test('certificate table: the VEK the report names is picked on getEvidence too, and a table without that VEK gives no chain (the security context THIM chain goes instead)', async () => {
    // Pins the choice of 35d89b8 on the path its test did not take (getEvidence), and what happens when the named
    // VEK is absent: not the other one (a VLEK for a VCEK-signed report fails verification however good).
    const [vcek, vlek, ask, ark, thimVcek] = [1, 2, 3, 4, 9].map((b) => Uint8Array.of(0x30, 1, b)) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    const hexOf = (...c: Uint8Array[]) => c.map((x) => Buffer.from(x).toString('hex'));
    const table = (...vek: { guid: string; data: Uint8Array }[]) => encodeSnpCertTable([...vek, { guid: SNP_CERT_GUIDS.ask, data: ask }, { guid: SNP_CERT_GUIDS.ark, data: ark }]);
    const both = table({ guid: SNP_CERT_GUIDS.vcek, data: vcek }, { guid: SNP_CERT_GUIDS.vlek, data: vlek });
    const ev = await tsmSource({ root: await newRoot(), fs: fakeConfigfs({ provider: 'sev_guest', auxblob: both, signerInfo: 0x4 }).fs }).getEvidence(new Uint8Array(1));
    assert.deepEqual(derHex(snpPartsOfBody(ev.body).vcekCertChainPem), hexOf(vlek, ask, ark), 'getEvidence, VLEK-signed');
    const ctx = await thimContext(thimVcek);
    for (const [signerInfo, auxblob, what] of [
      [0x0, table({ guid: SNP_CERT_GUIDS.vlek, data: vlek }), 'VCEK-signed, the table holds a VLEK only'],
      [0x4, table({ guid: SNP_CERT_GUIDS.vcek, data: vcek }), 'VLEK-signed, the table holds a VCEK only'],
    ] as const) {
      const fs = fakeConfigfs({ provider: 'sev_guest', auxblob, signerInfo }).fs;
      assert.equal((await tsmSource({ root: await newRoot(), fs }).getSnpReport!(new Uint8Array(64))).vcekCertChainPem, undefined, what);
      const sent = snpPartsOfBody((await tsmSource({ root: await newRoot(), fs, securityContextDir: ctx }).getEvidence(new Uint8Array(1))).body);
      assert.deepEqual(derHex(sent.vcekCertChainPem), hexOf(thimVcek, Uint8Array.of(0x30, 1, 7), Uint8Array.of(0x30, 1, 8)), what);
    }
  });

  test('certificate table: a zero-length VEK entry is no VEK, so no chain without its VEK is sent and the security context THIM chain goes instead', async () => {
    // The table is the hypervisor's to fill. An entry of length 0 under the VCEK GUID was taken as a VEK: the chain
    // sent was ASK ‖ ARK alone (verification then fails for want of a VEK), and it stood in for the THIM chain.
    const [vlek, ask, ark, thimVcek] = [2, 3, 4, 9].map((b) => Uint8Array.of(0x30, 1, b)) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    const auxblob = encodeSnpCertTable([
      { guid: SNP_CERT_GUIDS.vcek, data: new Uint8Array(0) },
      { guid: SNP_CERT_GUIDS.ask, data: ask },
      { guid: SNP_CERT_GUIDS.ark, data: ark },
    ]);
    const fs = fakeConfigfs({ provider: 'sev_guest', auxblob, signerInfo: 0x0 }).fs;
    assert.equal((await tsmSource({ root: await newRoot(), fs }).getSnpReport!(new Uint8Array(64))).vcekCertChainPem, undefined, 'getSnpReport');
    const ctx = await thimContext(thimVcek);
    const sent = snpPartsOfBody((await tsmSource({ root: await newRoot(), fs, securityContextDir: ctx }).getEvidence(new Uint8Array(1))).body);
    assert.deepEqual(derHex(sent.vcekCertChainPem), [thimVcek, Uint8Array.of(0x30, 1, 7), Uint8Array.of(0x30, 1, 8)].map((c) => Buffer.from(c).toString('hex')), 'getEvidence with a security context');
    // Without a report to name the VEK: an empty VCEK entry does not hide the VLEK beside it.
    const withVlek = parseSnpCertTable(encodeSnpCertTable([{ guid: SNP_CERT_GUIDS.vcek, data: new Uint8Array(0) }, { guid: SNP_CERT_GUIDS.vlek, data: vlek }]));
    assert.deepEqual(derHex(certChainPemOf(withVlek)), [Buffer.from(vlek).toString('hex')]);
  });

  test('certificate table: round trip, unknown GUIDs kept aside, truncated table rejected', () => {
    const t = encodeSnpCertTable([
      { guid: SNP_CERT_GUIDS.vlek, data: new Uint8Array([1, 2]) },
      { guid: '00112233-4455-6677-8899-aabbccddeeff', data: new Uint8Array([9]) },
    ]);
    const parsed = parseSnpCertTable(t);
    assert.deepEqual(parsed.vlek, new Uint8Array([1, 2]));
    assert.deepEqual(parsed.other.get('00112233-4455-6677-8899-aabbccddeeff'), new Uint8Array([9]));
    assert.throws(() => parseSnpCertTable(t.subarray(0, 30)), { code: 'evidence.truncated' });
  });
});
