/**
 * A simulated Azure confidential VM for tests and the SDK's replay device: a fake SNP hierarchy signs an
 * SNP report whose REPORT_DATA binds HCL runtime data naming a FakeTpm's AK (HCLAkPub) and an
 * encryption key (HCLEkPub) whose private half the test holds. Trusted only by a server started with
 * --simulate, and only when its SNP hierarchy is the server's simulated one.
 */
import type { KeyObject } from 'node:crypto';
import { sha256 } from '../../core/bytes.js';
import { derToPem } from '../../core/x509.js';
import { type FakeSnpHierarchy, makeFakeSnpReport } from '../snp/testing.js';
import { FakeTpm } from '../tpm/testing.js';
import { type GuestAttestationInfo, encodeGuestAttestationInfo } from './guest.js';
import { encodeHclReport } from './hcl.js';
import { generateRsaKeyPair } from '../../core/keygen.js';

export interface SimulatedAzureCvmOptions {
  readonly secureBoot?: boolean;
  readonly debug?: boolean;
  /** The VMPL the SNP report was requested from (default 0, the paravisor's). */
  readonly vmpl?: number;
  readonly vmId?: string;
  /** 64 bytes of user data the guest wrote to NV 0x01400002 (hex), default zeros. */
  readonly userData?: string;
  readonly tpm?: FakeTpm;
  /** The HCLEkPub key pair (default: a fresh one). */
  readonly ek?: { readonly privateKey: KeyObject; readonly publicKey: KeyObject };
}

export interface SimulatedAzureCvm {
  readonly tpm: FakeTpm;
  /** HCLEkPub's private key: what an Azure vTPM keeps for itself, here for the test to unwrap releases. */
  readonly ekPrivate: KeyObject;
  readonly runtimeData: Uint8Array;
  readonly snpReport: Uint8Array;
  readonly hclReport: Uint8Array;
  readonly chainPem: string;
  /** trustee's az-snp-vtpm evidence, version 1, with a fresh quote over PCRs 0–23. */
  trusteeV1(nonce?: Uint8Array): Buffer;
  /** The guest attestation library's AttestationInfo (base64url), with a quote over PCRs 0–7, the event log and a certified ephemeral key. */
  guestInfo(opts?: { clientPayload?: Record<string, string>; withLog?: boolean }): { attestationInfo: string; decrypt: (c: Uint8Array) => Uint8Array; ephemeralPrivate: KeyObject };
}

export function simulateAzureCvm(snp: FakeSnpHierarchy, opts: SimulatedAzureCvmOptions = {}): SimulatedAzureCvm {
  const tpm = opts.tpm ?? new FakeTpm().bootLinux(opts.secureBoot ?? true);
  const ek = opts.ek ?? generateRsaKeyPair(2048);
  const ekJwk = ek.publicKey.export({ format: 'jwk' });
  const runtime = {
    keys: [tpm.akJwk(), { kid: 'HCLEkPub', key_ops: ['encrypt'], kty: 'RSA', e: ekJwk.e, n: ekJwk.n }],
    'vm-configuration': { 'console-enabled': true, 'secure-boot': opts.secureBoot ?? true, 'tpm-enabled': true, vmUniqueId: opts.vmId ?? '00000000-0000-4000-8000-00000000C0DE' },
    'user-data': opts.userData ?? '0'.repeat(128),
  };
  const runtimeData = new TextEncoder().encode(JSON.stringify(runtime));
  const reportData = new Uint8Array(64);
  reportData.set(sha256(runtimeData));
  const policy = 0x30000n | (1n << 16n) | (opts.debug ? 1n << 19n : 0n);
  const snpReport = makeFakeSnpReport(snp, { reportData, policy, vmpl: opts.vmpl ?? 0 });
  const hclReport = encodeHclReport({ hwReport: snpReport, runtimeData });
  const chainPem = [snp.vek.der, ...snp.chain].map((d) => derToPem(d)).join('');
  const all = Array.from({ length: 24 }, (_, i) => i);
  return {
    tpm,
    ekPrivate: ek.privateKey,
    runtimeData,
    snpReport,
    hclReport,
    chainPem,
    trusteeV1(nonce = Buffer.from('challenge')) {
      const q = tpm.quote(all, nonce);
      return Buffer.from(
        JSON.stringify({
          version: 1,
          tpm_quote: { signature: Buffer.from(q.signature).toString('hex'), message: Buffer.from(q.message).toString('hex'), pcrs: q.pcrs.map((p) => Buffer.from(p.value).toString('hex')) },
          hcl_report: Buffer.from(hclReport).toString('base64url'),
          vcek: Buffer.from(snp.vek.der).toString('base64url'),
        }),
      );
    },
    guestInfo(o = {}) {
      const pcrs = [0, 1, 2, 3, 4, 5, 6, 7];
      const q = tpm.quote(pcrs);
      const key = tpm.ephemeralKey(pcrs);
      const info: GuestAttestationInfo = {
        protocolVersion: '2.0',
        os: { type: 'Linux', distro: 'Ubuntu', build: 'NotApplication', versionMajor: 22, versionMinor: 4 },
        tcgLog: o.withLog === false ? new Uint8Array(0) : tpm.eventLog(),
        clientPayload: o.clientPayload ?? {},
        tpm: { aikCert: new Uint8Array(0), aikPub: tpm.akPublicArea(), quote: q.message, signature: q.signature, pcrs: q.pcrs, encryptionKey: key },
        isolation: { type: 'SevSnp', snpReport, vcekCertChainPem: chainPem, runtimeData },
      };
      return { attestationInfo: encodeGuestAttestationInfo(info), decrypt: key.decrypt, ephemeralPrivate: key.privateKey };
    },
  };
}

/**
 * A software vTPM with the operations of the SDK's `VtpmDevice` (src/sdk/sources/vtpm-device.ts), backed
 * by a simulated Azure CVM: writing user data refreshes the HCL report, as the Azure paravisor does.
 */
export function fakeVtpmDevice(snp: FakeSnpHierarchy, opts: SimulatedAzureCvmOptions = {}) {
  const tpm = opts.tpm ?? new FakeTpm().bootLinux(opts.secureBoot ?? true);
  const ek = opts.ek ?? generateRsaKeyPair(2048);
  const keys = new Map<string, ReturnType<FakeTpm['ephemeralKey']>>();
  let current = simulateAzureCvm(snp, { ...opts, tpm, ek });
  return {
    name: 'fake-vtpm',
    tpm,
    ekPrivate: ek.privateKey,
    chainPem: () => current.chainPem,
    async readHclReport(userData: Uint8Array) {
      current = simulateAzureCvm(snp, { ...opts, tpm, ek, userData: Buffer.from(userData).toString('hex') });
      return current.hclReport;
    },
    async readAkCert() {
      return new Uint8Array(0);
    },
    async readAkPublic() {
      return tpm.akPublicArea();
    },
    async readPcrs(pcrs: readonly number[]) {
      return pcrs.map((i) => tpm.pcr(i));
    },
    async quote(pcrs: readonly number[], nonce: Uint8Array) {
      const q = tpm.quote(pcrs, nonce);
      return { message: q.message, signature: q.signature };
    },
    async createEphemeralKey(pcrs: readonly number[]) {
      // Like the null-hierarchy primary: one key per PCR state.
      const id = pcrs.map((i) => Buffer.from(tpm.pcr(i)).toString('hex')).join('');
      const key = keys.get(id) ?? tpm.ephemeralKey(pcrs);
      keys.set(id, key);
      return { publicArea: key.publicArea, certifyInfo: key.certifyInfo, signature: key.signature };
    },
    async decryptWithEphemeralKey(pcrs: readonly number[], ciphertext: Uint8Array) {
      const id = pcrs.map((i) => Buffer.from(tpm.pcr(i)).toString('hex')).join('');
      const key = keys.get(id);
      if (!key) throw new Error('TPM_RC_POLICY_FAIL: no key for this PCR state');
      return key.decrypt(ciphertext);
    },
    async readEventLog() {
      return tpm.eventLog();
    },
  };
}
