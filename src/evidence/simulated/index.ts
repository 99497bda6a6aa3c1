/**
 * The simulated TEE, for development and tests: an Intel-like DCAP hierarchy (root, PCK CA, PCK, TCB
 * signing, CRLs, signed collateral) and an AMD-like SEV-SNP hierarchy (ARK, ASK, VCEK), created once in
 * `<data-dir>/simulated/vendor.json` and reused. It signs SGX and TDX quotes and SNP reports shaped
 * exactly like real ones, so the whole attest → release flow runs on a laptop.
 *
 * Its roots are never in the default trust set: the attestation service trusts them only under
 * `conclave serve --simulate`, and every token they yield carries `x-conclave-simulated: true`.
 */
import { type KeyObject, createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { QuoteCollateral } from '../dcap/collateral.js';
import { b64url, sha256 } from '../../core/bytes.js';
import { type Certificate, derToPem, parseCertificate } from '../../core/x509.js';
import { type DcapHierarchy, type Issued, buildCollateral, buildSignedQuote, createDcapHierarchy } from '../dcap/testing.js';
import type { SnpTrustAnchors } from '../snp/chain.js';
import { type FakeKeyPair, type FakeSnpHierarchy, createFakeSnpHierarchy, makeFakeAmdCrl, makeFakeSnpReport } from '../snp/testing.js';
import { gpuNonceFor } from '../nvidia/nonce.js';
import { serializeGpuEvidence } from '../nvidia/serialized.js';
import { type SimulatedGpus, loadOrCreateSimulatedGpus } from './gpu.js';

/** FMSPC of the simulated platform: no Intel platform has it, so real collateral never matches. */
export const SIMULATED_FMSPC = 'ccc0c0a7e500';
export const SIMULATED_ROOT_CN = 'Conclave Simulated SGX Root CA (development only)';

export type SimulatedTeeKind = 'sgx' | 'tdx' | 'snp';

export interface SimulatedEvidenceOptions {
  readonly tee: SimulatedTeeKind;
  /** Runtime data the evidence binds (report data = SHA-256(runtime data) ‖ zeros), as MAA binds it. */
  readonly runtimeData: Uint8Array;
  readonly runtimeDataType?: 'JSON' | 'Binary';
  /** SGX: MRENCLAVE / MRSIGNER (hex, 32 bytes). */
  readonly mrenclave?: string;
  readonly mrsigner?: string;
  /** SNP: launch measurement (48 bytes hex); TDX: MRTD (48 bytes hex). */
  readonly measurement?: string;
  readonly debug?: boolean;
  /**
   * Init-time data the evidence binds as MAA binds it: SHA-256 in SGX CONFIGID (with KSS), TDX MRCONFIGID
   * or SNP HOST_DATA (e.g. a container security policy); sent as `initTimeData` of type `initTimeDataType`.
   */
  readonly initTimeData?: Uint8Array;
  readonly initTimeDataType?: 'JSON' | 'Binary';
  /** TDX/SNP: attach this many simulated GPUs (composite CPU + GPU attestation), bound to the runtime data. */
  readonly gpus?: number;
  /** GPU numbers (0-based) whose measurement differs from the simulated RIM. */
  readonly gpuMismatch?: readonly number[];
}

export interface SimulatedEvidence {
  /** The `/attest/…` route the body is for. */
  readonly path: '/attest/SgxEnclave' | '/attest/TdxVm' | '/attest/SevSnpVm';
  readonly body: Record<string, unknown>;
}

export interface SimulatedTee {
  readonly dcap: DcapHierarchy;
  readonly snp: FakeSnpHierarchy;
  /** Trust anchors that make simulated evidence verify. */
  readonly intelRoot: Certificate;
  readonly amdAnchors: SnpTrustAnchors;
  /**
   * The simulated ARK's CRL (it revokes nothing; valid as long as the hierarchy): what applies to simulated
   * SNP evidence in place of AMD's CRL, which the simulated ARK did not sign.
   */
  readonly amdCrl: Uint8Array;
  /** Simulated NVIDIA GPUs (trust anchors, RIMs, evidence). */
  readonly gpus: SimulatedGpus;
  /** Complete, signed collateral for the simulated platform. */
  collateral(tee: 'sgx' | 'tdx'): QuoteCollateral;
  /** A request body for the matching `/attest/…` route, with the runtime data bound as MAA binds it. */
  evidence(opts: SimulatedEvidenceOptions): SimulatedEvidence;
}

const DEFAULT_MRENCLAVE = sha256(new TextEncoder().encode('conclave simulated enclave'));
const DEFAULT_MRSIGNER = sha256(new TextEncoder().encode('conclave simulated signer'));
const DEFAULT_MEASUREMENT = createHash('sha384').update('conclave simulated guest').digest();

function hex(h: string | undefined, fallback: Uint8Array, bytes: number, what: string): Uint8Array {
  if (h === undefined) return fallback;
  if (!new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`).test(h)) throw new Error(`${what} must be ${bytes} bytes of hex`);
  return new Uint8Array(Buffer.from(h, 'hex'));
}

/** `bytes` followed by zeros up to `size` (a SHA-256 in a wider measurement register). */
function padded(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(bytes);
  return out;
}

function initTimeDataField(opts: SimulatedEvidenceOptions): { initTimeData?: { data: string; dataType: 'JSON' | 'Binary' } } {
  return opts.initTimeData ? { initTimeData: { data: b64url(opts.initTimeData), dataType: opts.initTimeDataType ?? 'Binary' } } : {};
}

function reportData(runtimeData: Uint8Array): Uint8Array {
  const rd = new Uint8Array(64);
  rd.set(sha256(runtimeData));
  return rd;
}

function runtimeDataField(opts: SimulatedEvidenceOptions): Record<string, string> {
  return { data: b64url(opts.runtimeData), dataType: opts.runtimeDataType ?? 'JSON' };
}

function gpuEvidenceField(gpus: SimulatedGpus, opts: SimulatedEvidenceOptions): Record<string, unknown> {
  if (!opts.gpus) return {};
  return { gpuEvidence: serializeGpuEvidence(gpus.evidence(gpuNonceFor(opts.runtimeData), opts.gpus, opts.gpuMismatch)) };
}

function build(dcap: DcapHierarchy, snp: FakeSnpHierarchy, gpus: SimulatedGpus): SimulatedTee {
  const collateral = { sgx: buildCollateral(dcap, { tee: 'sgx' }), tdx: buildCollateral(dcap, { tee: 'tdx' }) };
  return {
    dcap,
    snp,
    intelRoot: dcap.root.certificate,
    amdAnchors: snp.trustAnchors,
    amdCrl: makeFakeAmdCrl(snp, [], snp.notBefore, snp.notAfter),
    gpus,
    collateral: (tee) => collateral[tee],
    evidence(opts) {
      const rd = reportData(opts.runtimeData);
      if (opts.tee === 'sgx') {
        const attributes = new Uint8Array(16);
        attributes[0] = 0x05 | (opts.debug ? 0x02 : 0); // INIT | MODE64BIT (| DEBUG)
        attributes[8] = 0x07;
        if (opts.initTimeData) attributes[0] |= 0x80; // KSS: CONFIGID is the enclave's, not zero
        const quote = buildSignedQuote(dcap, {
          tee: 'sgx',
          reportData: rd,
          sgxReport: {
            mrenclave: hex(opts.mrenclave, DEFAULT_MRENCLAVE, 32, 'mrenclave'),
            mrsigner: hex(opts.mrsigner, DEFAULT_MRSIGNER, 32, 'mrsigner'),
            attributes,
            ...(opts.initTimeData ? { configid: padded(sha256(opts.initTimeData), 64) } : {}),
          },
        });
        return { path: '/attest/SgxEnclave', body: { quote: b64url(quote), runtimeData: runtimeDataField(opts), ...initTimeDataField(opts) } };
      }
      if (opts.tee === 'tdx') {
        const tdattributes = new Uint8Array(8);
        tdattributes[0] = opts.debug ? 0x01 : 0; // TUD.DEBUG
        tdattributes[3] = 0x10; // SEPT_VE_DISABLE
        const quote = buildSignedQuote(dcap, {
          tee: 'tdx',
          version: 4,
          reportData: rd,
          tdReport: { mrtd: hex(opts.measurement, DEFAULT_MEASUREMENT, 48, 'measurement'), tdattributes, ...(opts.initTimeData ? { mrconfigid: padded(sha256(opts.initTimeData), 48) } : {}) },
        });
        return { path: '/attest/TdxVm', body: { quote: b64url(quote), runtimeData: runtimeDataField(opts), ...initTimeDataField(opts), ...gpuEvidenceField(gpus, opts) } };
      }
      const policy = 0x30000n | (opts.debug ? 1n << 19n : 0n) | (1n << 16n); // ABI 0.0, SMT allowed, reserved bit 17, debug bit 19
      const report = makeFakeSnpReport(snp, {
        reportData: rd,
        measurement: hex(opts.measurement, DEFAULT_MEASUREMENT, 48, 'measurement'),
        hostData: opts.initTimeData ? sha256(opts.initTimeData) : new Uint8Array(32),
        policy,
      });
      const chainPem = [snp.vek.der, ...snp.chain].map((d) => derToPem(d)).join('');
      const inner = { SnpReport: b64url(report), VcekCertChain: b64url(chainPem) };
      const body: Record<string, unknown> = { report: b64url(JSON.stringify(inner)), runtimeData: runtimeDataField(opts), ...gpuEvidenceField(gpus, opts) };
      Object.assign(body, initTimeDataField(opts));
      return { path: '/attest/SevSnpVm', body };
    },
  };
}

// ── persistence ────────────────────────────────────────────────────────────────────────────────

interface StoredKeyPair {
  der: string;
  key: string;
}

function saveIssued(i: Issued | FakeKeyPair): StoredKeyPair {
  return { der: Buffer.from(i.der).toString('base64'), key: (i.privateKey.export({ format: 'der', type: 'pkcs8' }) as Buffer).toString('base64') };
}

function loadPair(s: StoredKeyPair): { der: Uint8Array; privateKey: KeyObject; publicKey: KeyObject } {
  const privateKey = createPrivateKey({ key: Buffer.from(s.key, 'base64'), format: 'der', type: 'pkcs8' });
  return { der: new Uint8Array(Buffer.from(s.der, 'base64')), privateKey, publicKey: createPublicKey(privateKey) };
}

function loadIssued(s: StoredKeyPair): Issued {
  const p = loadPair(s);
  return { ...p, certificate: parseCertificate(p.der) };
}

function serialise(dcap: DcapHierarchy, snp: FakeSnpHierarchy): string {
  return JSON.stringify({
    version: 1,
    warning: 'Conclave simulated TEE vendor keys: development only, never trusted without --simulate',
    dcap: {
      root: saveIssued(dcap.root),
      pckCa: saveIssued(dcap.pckCa),
      tcbSigning: saveIssued(dcap.tcbSigning),
      pck: saveIssued(dcap.pck),
      caType: dcap.caType,
      platform: dcap.platform,
      rootCaCrl: Buffer.from(dcap.rootCaCrl).toString('base64'),
      pckCrl: Buffer.from(dcap.pckCrl).toString('base64'),
      notBefore: dcap.notBefore.toISOString(),
      notAfter: dcap.notAfter.toISOString(),
    },
    snp: {
      product: snp.product,
      ark: saveIssued(snp.ark),
      ask: saveIssued(snp.ask),
      asvk: saveIssued(snp.asvk),
      vek: saveIssued(snp.vek),
      signingKey: snp.signingKey,
      chipId: Buffer.from(snp.chipId).toString('hex'),
      tcb: snp.tcb,
      notBefore: snp.notBefore.toISOString(),
      notAfter: snp.notAfter.toISOString(),
    },
  });
}

function deserialise(text: string): { dcap: DcapHierarchy; snp: FakeSnpHierarchy } {
  const j = JSON.parse(text);
  const d = j.dcap;
  const dcap: DcapHierarchy = {
    root: loadIssued(d.root),
    pckCa: loadIssued(d.pckCa),
    tcbSigning: loadIssued(d.tcbSigning),
    pck: loadIssued(d.pck),
    caType: d.caType,
    platform: d.platform,
    rootCaCrl: new Uint8Array(Buffer.from(d.rootCaCrl, 'base64')),
    pckCrl: new Uint8Array(Buffer.from(d.pckCrl, 'base64')),
    notBefore: new Date(d.notBefore),
    notAfter: new Date(d.notAfter),
  };
  const s = j.snp;
  const ark = loadPair(s.ark);
  const ask = loadPair(s.ask);
  const asvk = loadPair(s.asvk);
  const vek = loadPair(s.vek);
  const snp: FakeSnpHierarchy = {
    product: s.product,
    ark,
    ask,
    asvk,
    vek,
    signingKey: s.signingKey,
    chipId: new Uint8Array(Buffer.from(s.chipId, 'hex')),
    tcb: s.tcb,
    chain: [s.signingKey === 'vlek' ? asvk.der : ask.der, ark.der],
    trustAnchors: { [s.product]: { ark: ark.der, ask: ask.der, asvk: asvk.der } },
    notBefore: new Date(s.notBefore),
    notAfter: new Date(s.notAfter),
  };
  return { dcap, snp };
}

const loaded = new Map<string, SimulatedTee>();

/**
 * Loads the simulated vendor hierarchy of a data dir, creating it on first use (mode 0600). The same
 * data dir gives the same roots, so a server and an agent sharing it agree on what to trust.
 */
export function loadOrCreateSimulatedTee(dataDir: string): SimulatedTee {
  const path = join(dataDir, 'simulated', 'vendor.json');
  const cached = loaded.get(path);
  if (cached) return cached;
  let tee: SimulatedTee;
  if (existsSync(path)) {
    const { dcap, snp } = deserialise(readFileSync(path, 'utf8'));
    tee = build(dcap, snp, loadOrCreateSimulatedGpus(dataDir));
  } else {
    const dcap = createDcapHierarchy({ rootName: SIMULATED_ROOT_CN, platform: { fmspc: SIMULATED_FMSPC }, caType: 'platform' });
    const snp = createFakeSnpHierarchy({ product: 'Milan', rsaBits: 2048 });
    mkdirSync(join(dataDir, 'simulated'), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, serialise(dcap, snp), { mode: 0o600 });
    // Two processes creating at once: the first rename wins and both then read the winner's keys.
    if (!existsSync(path)) renameSync(tmp, path);
    else rmSync(tmp, { force: true });
    const stored = deserialise(readFileSync(path, 'utf8'));
    tee = build(stored.dcap, stored.snp, loadOrCreateSimulatedGpus(dataDir));
  }
  loaded.set(path, tee);
  return tee;
}
