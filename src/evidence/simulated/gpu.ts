/**
 * Simulated NVIDIA GPUs for the simulated TEE: a fake device identity root, a fake RIM root and signer,
 * and eight GPUs (each with its own identity and attestation certificate), created once in
 * `<data-dir>/simulated/gpus.json` and reused, so a server and an agent sharing the data dir agree. They
 * answer with reports shaped like real ones, whose measurements match the simulated RIMs unless told
 * otherwise. Trusted only under `--simulate`; tokens that include them say `x-conclave-simulated: true`.
 */
import { createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Certificate } from '../../core/x509.js';
import { parseCertificate } from '../../core/x509.js';
import type { SerializedGpuEvidence } from '../nvidia/serialized.js';
import { type FakeCert, type FakeNvidiaHierarchy, createFakeNvidiaHierarchy, fakeMeasurements, makeFakeGpuReport, makeFakeRims } from '../nvidia/testing.js';

export const SIMULATED_GPU_COUNT = 8;

export interface SimulatedGpus {
  /** Trust anchors that make simulated GPU evidence verify. */
  readonly trust: { readonly deviceRoot: Certificate; readonly rimRoot: Certificate };
  /** Signed driver and VBIOS RIMs matching an unmodified simulated GPU. */
  readonly rims: { readonly driver: string; readonly vbios: string };
  /**
   * Evidence of `count` GPUs answering `nonce`; `mismatch` lists GPU numbers whose measurement at RIM
   * index 5 (a VBIOS measurement) differs from the RIM, as a GPU with other firmware would.
   */
  evidence(nonce: Uint8Array, count: number, mismatch?: readonly number[]): SerializedGpuEvidence[];
}

interface StoredCert {
  der: string;
  key: string;
}

const save = (c: FakeCert): StoredCert => ({ der: Buffer.from(c.der).toString('base64'), key: (c.privateKey.export({ format: 'der', type: 'pkcs8' }) as Buffer).toString('base64') });
const load = (s: StoredCert): FakeCert => {
  const der = new Uint8Array(Buffer.from(s.der, 'base64'));
  return { der, cert: parseCertificate(der), privateKey: createPrivateKey({ key: Buffer.from(s.key, 'base64'), format: 'der', type: 'pkcs8' }) };
};

function serialise(gpus: FakeNvidiaHierarchy[]): string {
  const g0 = gpus[0]!;
  return JSON.stringify({
    version: 1,
    warning: 'Conclave simulated GPU vendor keys: development only, never trusted without --simulate',
    deviceRoot: save(g0.deviceRoot),
    archCa: save(g0.archCa),
    rimRoot: save(g0.rimRoot),
    rimSigner: save(g0.rimSigner),
    ocspResponder: save(g0.ocspResponder),
    rimOcspResponder: save(g0.rimOcspResponder),
    gpus: gpus.map((g) => ({ brom: save(g.brom), fmc: save(g.fmc), fwid: Buffer.from(g.fwid).toString('hex') })),
  });
}

function deserialise(text: string): FakeNvidiaHierarchy[] {
  const j = JSON.parse(text);
  const roots = {
    deviceRoot: load(j.deviceRoot),
    archCa: load(j.archCa),
    rimRoot: load(j.rimRoot),
    rimSigner: load(j.rimSigner),
    ocspResponder: load(j.ocspResponder),
    rimOcspResponder: load(j.rimOcspResponder),
  };
  return (j.gpus as Array<{ brom: StoredCert; fmc: StoredCert; fwid: string }>).map((g) => {
    const brom = load(g.brom);
    const fmc = load(g.fmc);
    // The device chain without the root: the verifier appends the root it trusts.
    const chainPem = [fmc, brom, roots.archCa].map((c) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(c.der).toString('base64')}\n-----END CERTIFICATE-----\n`).join('');
    return { ...roots, brom, fmc, fwid: new Uint8Array(Buffer.from(g.fwid, 'hex')), chainPem, trust: { deviceRoot: roots.deviceRoot.cert, rimRoot: roots.rimRoot.cert } };
  });
}

function build(gpus: FakeNvidiaHierarchy[]): SimulatedGpus {
  const g0 = gpus[0]!;
  const rims = makeFakeRims(g0);
  return {
    trust: g0.trust,
    rims,
    evidence(nonce, count, mismatch = []) {
      if (!Number.isInteger(count) || count < 1 || count > gpus.length) throw new RangeError(`between 1 and ${gpus.length} simulated GPUs`);
      return gpus.slice(0, count).map((g, i) => {
        const m = fakeMeasurements();
        if (mismatch.includes(i)) m[5] = new Uint8Array(48).fill(0xbd);
        return { arch: 'HOPPER' as const, nonce, report: makeFakeGpuReport(g, { nonce, measurements: m }), certificateChain: g.chainPem };
      });
    },
  };
}

const loaded = new Map<string, SimulatedGpus>();

/** Loads the simulated GPUs of a data dir, creating them on first use (mode 0600). */
export function loadOrCreateSimulatedGpus(dataDir: string): SimulatedGpus {
  const path = join(dataDir, 'simulated', 'gpus.json');
  const cached = loaded.get(path);
  if (cached) return cached;
  if (!existsSync(path)) {
    const first = createFakeNvidiaHierarchy({ rootCn: 'Conclave Simulated NVIDIA Device Identity CA (development only)' });
    const gpus = [first, ...Array.from({ length: SIMULATED_GPU_COUNT - 1 }, () => createFakeNvidiaHierarchy({}, first))];
    mkdirSync(join(dataDir, 'simulated'), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, serialise(gpus), { mode: 0o600 });
    if (!existsSync(path)) renameSync(tmp, path);
    else rmSync(tmp, { force: true });
  }
  const g = build(deserialise(readFileSync(path, 'utf8')));
  loaded.set(path, g);
  return g;
}
