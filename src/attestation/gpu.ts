/**
 * Composite attestation, the GPU half: the evidence of N NVIDIA GPUs arriving with the CPU evidence,
 * verified against one nonce derived from the CPU-bound runtime data, turned into one claim set per GPU
 * (NVIDIA's NRAS/EAT claim names) plus an overall result.
 */
import { toHex } from '../core/bytes.js';
import { fail, isConclaveError } from '../core/errors.js';
import type { Verified } from '../core/verified.js';
import type { Certificate } from '../core/x509.js';
import {
  type GpuOcspInput,
  type GpuVerificationResult,
  type GpuVerifierCache,
  NVIDIA_DEVICE_IDENTITY_CA,
  NVIDIA_RIM_ROOT_CA,
  authenticateGpuEvidence,
  completeGpuVerification,
  parseDeviceChain,
  rimIdsOf,
} from '../evidence/nvidia/index.js';
import { parseCertificate } from '../core/x509.js';
import { gpuNonceFor } from '../evidence/nvidia/nonce.js';
import { parseSerializedGpuEvidence } from '../evidence/nvidia/serialized.js';
import type { SimulatedGpus } from '../evidence/simulated/gpu.js';
import type { Claim } from './policy/index.js';
import { type EvidenceClaims, claimsOf } from './claims.js';

/** Where the attestation service gets NVIDIA RIMs (the collateral cache, or NVIDIA's RIM service). */
export interface GpuReferenceSource {
  /** The RIM document with this id, or undefined when none is known. */
  getRim(id: string): Promise<Uint8Array | string | undefined>;
  /** A DER OCSP response for `cert` (issued by `issuer`), or undefined when none can be had. */
  getOcsp?(cert: Certificate, issuer: Certificate): Promise<Uint8Array | undefined>;
}

export type GpuClaimSet = Record<string, unknown>;

export interface GpuAttestation {
  /** Token claims: `x-conclave-gpus` {GPU-0: {...}, …}, `x-conclave-gpu-count`, `x-nvidia-overall-att-result`, `x-conclave-gpu-nonce`. */
  readonly claims: EvidenceClaims;
  readonly simulated: boolean;
}

function chainClaim(c: { expirationDate: string; ocspStatus: string; revocationReason?: string }): Record<string, unknown> {
  return {
    'x-nvidia-cert-status': 'valid',
    'x-nvidia-cert-ocsp-status': c.ocspStatus,
    'x-nvidia-cert-expiration-date': c.expirationDate,
    ...(c.revocationReason ? { 'x-nvidia-cert-revocation-reason': c.revocationReason } : {}),
  };
}

/**
 * A driver version as a number a release policy can order (`greaterOrEquals`): major·10⁶ + minor·10³ +
 * patch, e.g. 550.90.07 → 550090007. Undefined when the version is not of that shape.
 */
export function driverVersionNumber(v: string): number | undefined {
  const m = /^(\d{1,4})\.(\d{1,3})(?:\.(\d{1,3}))?$/.exec(v);
  return m ? Number(m[1]) * 1_000_000 + Number(m[2]) * 1_000 + Number(m[3] ?? 0) : undefined;
}

/**
 * Whether the GPU reports Protected-PCIe mode: FEATURE_FLAG PPCIE, or (reports without FEATURE_FLAG, drivers
 * before opaque-data version 1, e.g. 560) a PROTECTED_PCIE_STATUS other than 0x55 (SPT) or any NVSwitch PDI.
 * Fail closed: an unknown status counts as PPCIe.
 */
function protectedPcie(r: GpuVerificationResult): boolean {
  return r.featureFlag === 'PPCIE' || (r.protectedPcieStatus !== undefined && r.protectedPcieStatus !== 0x55) || r.switchPdis.length > 0;
}

/** One GPU's claims, named as NVIDIA's NRAS (claims version 3) names them where a name exists. */
export function gpuClaims(r: Verified<GpuVerificationResult>): GpuClaimSet {
  const success = r.measres === 'success';
  const claims: GpuClaimSet = {
    measres: r.measres,
    ...(driverVersionNumber(r.driverVersion) !== undefined ? { 'x-conclave-driver-version-number': driverVersionNumber(r.driverVersion) } : {}),
    ...(success ? { secboot: true, dbgstat: 'disabled' } : {}),
    hwmodel: r.hwmodel,
    ueid: r.ueid,
    ...(r.oemid ? { oemid: r.oemid } : {}),
    eat_nonce: r.nonce,
    'x-nvidia-gpu-arch-check': true,
    'x-nvidia-gpu-architecture': r.architecture,
    'x-nvidia-gpu-driver-version': r.driverVersion,
    'x-nvidia-gpu-vbios-version': r.vbiosVersion,
    'x-nvidia-gpu-attestation-report-parsed': true,
    'x-nvidia-gpu-attestation-report-nonce-match': true,
    'x-nvidia-gpu-attestation-report-signature-verified': true,
    'x-nvidia-gpu-attestation-report-cert-chain-fwid-match': r.fwidMatch === true,
    'x-nvidia-gpu-attestation-report-cert-chain': chainClaim(r.deviceChain),
    'x-nvidia-gpu-driver-rim-fetched': r.driverRim !== undefined,
    'x-nvidia-gpu-vbios-rim-fetched': r.vbiosRim !== undefined,
    ...(r.featureFlag ? { 'x-nvidia-gpu-mode': r.featureFlag } : {}),
  };
  for (const [name, rim] of [
    ['driver', r.driverRim],
    ['vbios', r.vbiosRim],
  ] as const) {
    if (!rim) continue;
    claims[`x-nvidia-gpu-${name}-rim-signature-verified`] = true;
    claims[`x-nvidia-gpu-${name}-rim-version-match`] = true;
    claims[`x-nvidia-gpu-${name}-rim-measurements-available`] = true;
    claims[`x-nvidia-gpu-${name}-rim-cert-chain`] = chainClaim(rim);
  }
  if (r.measurementComparison) claims['x-nvidia-gpu-vbios-index-no-conflict'] = true;
  if (r.measres === 'fail') claims['x-nvidia-mismatch-measurement-records'] = r.measurementComparison?.mismatches ?? [];
  const warnings = protectedPcie(r) ? [...r.warnings, 'Protected-PCIe mode: NVSwitch evidence and topology are not verified, so x-nvidia-overall-att-result is false'] : r.warnings;
  if (warnings.length > 0) claims['x-nvidia-attestation-warning'] = warnings.join('; ');
  return claims;
}

export interface AttestGpusOptions {
  readonly at: Date;
  readonly cache: GpuVerifierCache;
  readonly references?: GpuReferenceSource | undefined;
  /** Present only under --simulate. */
  readonly simulated?: SimulatedGpus | undefined;
}

/**
 * Verifies every GPU of a composite attestation against the nonce derived from `runtimeData`
 * ({@link gpuNonceFor}). Real GPUs are verified to the pinned NVIDIA roots with RIMs from `references`;
 * simulated ones only when the simulated TEE is trusted. Authenticity failures throw, naming the GPU;
 * a measurement mismatch becomes `measres: "fail"` for the policy to judge.
 */
export async function attestGpus(input: unknown, runtimeData: Uint8Array, opts: AttestGpusOptions): Promise<GpuAttestation> {
  const list = parseSerializedGpuEvidence(input);
  const nonce = gpuNonceFor(runtimeData);
  const perGpu: Record<string, GpuClaimSet> = {};
  const verifiedGpus: Verified<GpuVerificationResult>[] = [];
  const kinds = new Set<boolean>();
  let overall = true;
  let minDriver: number | undefined;
  // Each GPU counts once: the same GPU's evidence sent again (it answers the same nonce and verifies on its
  // own) would stand in for another GPU, e.g. one whose measurements fail, in a policy that counts GPUs.
  // Known by its device identity (BROM) key, which no firmware change alters, and by its ueid.
  const seen = new Map<string, string>();
  for (const [i, ev] of list.entries()) {
    const name = `GPU-${i}`;
    try {
      let simulated = false;
      let rims: { driver?: Uint8Array | string | undefined; vbios?: Uint8Array | string | undefined } = {};
      let trust: { deviceRoot: Certificate; rimRoot: Certificate } | undefined;
      let ocsp: GpuOcspInput | undefined;
      if (opts.simulated && isSimulatedChain(ev.certificateChain, opts.simulated)) {
        simulated = true;
        rims = opts.simulated.rims;
        trust = opts.simulated.trust;
      }
      // Nonce, chain and signature first: until the report is a genuine GPU's answer to this nonce, its
      // versions (hence the RIM ids) and its certificates are the caller's inventions, and nothing is fetched for them.
      const authentic = authenticateGpuEvidence(ev, { at: opts.at, nonce, cache: opts.cache, ...(trust ? { trust } : {}) });
      if (!simulated && opts.references) {
        const ids = rimIdsOf(authentic.report, authentic.chain.architecture);
        const [driver, vbios] = await Promise.all([opts.references.getRim(ids.driver), opts.references.getRim(ids.vbios)]);
        rims = { driver, vbios };
        ocsp = await prefetchOcsp(opts.references, authentic.chain.certificates, [driver, vbios]);
      }
      const r = completeGpuVerification(authentic, { at: opts.at, rims, cache: opts.cache, ocsp, ...(trust ? { trust } : {}) });
      const twin = seen.get(`device:${r.deviceId}`) ?? seen.get(`ueid:${r.ueid}`);
      if (twin !== undefined) throw fail('gpu.evidence_mismatch', `the evidence is of the same GPU as ${twin} (device identity ${r.deviceId.slice(0, 16)}…, ueid ${r.ueid}); each GPU is attested once`, { sameAs: twin, ueid: r.ueid, deviceId: r.deviceId });
      seen.set(`device:${r.deviceId}`, name);
      seen.set(`ueid:${r.ueid}`, name);
      kinds.add(simulated);
      perGpu[name] = gpuClaims(r);
      verifiedGpus.push(r);
      const dv = driverVersionNumber(r.driverVersion) ?? -1;
      minDriver = minDriver === undefined ? dv : Math.min(minDriver, dv);
      if (r.measres !== 'success') overall = false;
      // PPCIe: GPU-to-GPU traffic crosses the NVSwitches unencrypted; NVIDIA's verifiers require the switches'
      // evidence and a topology check, which are not verified here, so such a system is never an overall success.
      if (protectedPcie(r)) overall = false;
    } catch (e) {
      if (isConclaveError(e)) throw fail(e.code, `${name}: ${e.message}`, { gpu: name, ...(e.detail ?? {}) }, e);
      throw e;
    }
  }
  if (kinds.size > 1) throw fail('evidence.untrusted_root', 'simulated and real GPUs cannot be attested together');
  return {
    claims: claimsOf(verifiedGpus, {
      'x-conclave-gpus': perGpu,
      'x-conclave-gpu-count': list.length,
      'x-conclave-gpu-nonce': toHex(nonce),
      'x-nvidia-overall-att-result': overall,
      // The oldest driver of all GPUs, so one clause can say "every GPU runs driver ≥ X" (-1: one is unreadable).
      ...(minDriver !== undefined ? { 'x-conclave-gpu-min-driver-version-number': minDriver } : {}),
    }),
    simulated: kinds.has(true),
  };
}

/** Certificates of a RIM's KeyInfo, read without verifying anything: only to know which OCSP answers to fetch. */
function rimSignerCertificates(doc: Uint8Array | string | undefined): Certificate[] {
  if (doc === undefined) return [];
  const text = typeof doc === 'string' ? doc : Buffer.from(doc).toString('utf8');
  const out: Certificate[] = [];
  for (const m of text.matchAll(/<(?:[A-Za-z0-9_]+:)?X509Certificate>([A-Za-z0-9+/=\s]{16,8192})<\//g)) {
    try {
      out.push(parseCertificate(new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'))));
    } catch {
      // verification will say what is wrong with it
    }
    if (out.length >= 6) break;
  }
  return out;
}

/**
 * Fetches OCSP answers for the certificates NVIDIA's verifiers check (the device chain below the root
 * down to the identity certificate; the RIM chains down to the signer), so that verification, which is
 * synchronous, can look them up. Certificates without an answer stay unchecked (`not-checked`).
 */
async function prefetchOcsp(refs: GpuReferenceSource, deviceChain: readonly Certificate[], rims: readonly (Uint8Array | string | undefined)[]): Promise<GpuOcspInput | undefined> {
  if (!refs.getOcsp) return undefined;
  const pairs: Array<[Certificate, Certificate]> = [];
  const add = (chain: readonly Certificate[], root: Certificate, from: number) => {
    const path = chain.length > 0 && Buffer.from(chain[chain.length - 1]!.der).equals(Buffer.from(root.der)) ? chain : [...chain, root];
    for (let i = from; i < path.length - 1; i++) pairs.push([path[i]!, path[i + 1]!]);
  };
  add(deviceChain, NVIDIA_DEVICE_IDENTITY_CA, 1);
  for (const doc of rims) {
    const certs = rimSignerCertificates(doc);
    if (certs.length > 0) add(certs, NVIDIA_RIM_ROOT_CA, 0);
  }
  const answers = await Promise.all(pairs.map(([c, i]) => refs.getOcsp!(c, i).catch(() => undefined)));
  const byCert = new Map<string, Uint8Array>();
  pairs.forEach(([c, i], k) => {
    const a = answers[k];
    if (a) byCert.set(`${c.serial}:${Buffer.from(i.spki).toString('base64')}`, a);
  });
  return { mode: 'if-present', lookup: (cert, issuer) => byCert.get(`${cert.serial}:${Buffer.from(issuer.spki).toString('base64')}`) };
}

/**
 * Whether a chain names the simulated device root as its top issuer (a cheap routing decision: the chain
 * is then verified in full against the simulated root, and only under --simulate).
 */
function isSimulatedChain(pem: string, sim: SimulatedGpus): boolean {
  try {
    const certs = parseDeviceChain(pem);
    const top = certs[certs.length - 1]!;
    return top.issuerCN === sim.trust.deviceRoot.subjectCN || top.subjectCN === sim.trust.deviceRoot.subjectCN;
  } catch {
    return false;
  }
}

/**
 * The GPU claims as the MAA policy language sees them: each GPU's scalar claims as
 * `x-conclave-gpus.GPU-<n>.<claim>`, the same paths a key release policy names.
 */
export function gpuPolicyClaims(claims: Record<string, unknown>): Claim[] {
  const out: Claim[] = [];
  const gpus = claims['x-conclave-gpus'];
  if (!gpus || typeof gpus !== 'object') return out;
  for (const [gpu, set] of Object.entries(gpus as Record<string, GpuClaimSet>)) {
    for (const [k, v] of Object.entries(set)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out.push({ type: `x-conclave-gpus.${gpu}.${k}`, value: v });
    }
  }
  return out;
}
