import { fail } from '../core/errors.js';
import { type CaInput, exchangeJson } from './http.js';
import type { EvidenceSource, MaaEvidence, Tee } from './sources/types.js';
import type { GpuEvidenceCollector } from './sources/nvidia-gpu.js';
import { gpuNonceFor } from '../evidence/nvidia/nonce.js';
import { serializeGpuEvidence } from '../evidence/nvidia/serialized.js';
import { b64url } from '../core/bytes.js';

/** What MAA clients send today (the JS SDK and the sidecar use 2020-10-01; the docs list 2022-08-01). */
export const MAA_API_VERSION = '2022-08-01';

export interface AttestOptions {
  /** Attestation service base URL (a Conclave, or an MAA instance). */
  readonly attestationUrl: string;
  /** A ready request: route and body. */
  readonly evidence?: MaaEvidence;
  /** Or a source producing evidence that binds `runtimeData`. */
  readonly source?: EvidenceSource;
  /** Runtime data for `source` (bound in REPORT_DATA); with `evidence`, replaces its runtimeData. */
  readonly runtimeData?: Uint8Array;
  readonly runtimeDataType?: 'JSON' | 'Binary';
  /** For sources that play several TEEs. */
  readonly tee?: Tee;
  /** Echoed by MAA in the token's `nonce` claim. */
  readonly nonce?: string;
  readonly ca?: CaInput;
  readonly apiVersion?: string;
  /**
   * Composite CPU + GPU attestation: the host's GPUs answer SHA-256("conclave-gpu-nonce-v1" ‖ runtimeData),
   * and their evidence rides in the same request (TDX and SEV-SNP evidence only).
   */
  readonly gpus?: GpuEvidenceCollector;
  /**
   * With a source that offers Azure guest attestation (the Azure vTPM): use it (default), or ask for
   * the source's plain hardware evidence (`false`: `/attest/SevSnpVm` with the HCL report).
   */
  readonly azureGuest?: boolean;
}

/** POSTs evidence to `/attest/{type}` and returns the attestation token (a JWT). */
export async function attest(opts: AttestOptions): Promise<string> {
  let evidence: MaaEvidence;
  let open: ((answer: string) => Promise<string>) | undefined;
  if (!opts.evidence && opts.source?.getAzureGuestEvidence && opts.azureGuest !== false && !opts.gpus) {
    const guest = await opts.source.getAzureGuestEvidence(opts.runtimeData ?? new Uint8Array(0));
    evidence = guest.evidence;
    open = guest.open;
  } else if (opts.evidence) {
    evidence = opts.evidence;
    if (opts.runtimeData) {
      evidence = { path: evidence.path, body: { ...evidence.body, runtimeData: { data: b64url(opts.runtimeData), dataType: opts.runtimeDataType ?? 'JSON' } } };
    }
  } else if (opts.source) {
    evidence = await opts.source.getEvidence(opts.runtimeData ?? new Uint8Array(0), {
      ...(opts.runtimeDataType ? { runtimeDataType: opts.runtimeDataType } : {}),
      ...(opts.tee ? { tee: opts.tee } : {}),
    });
  } else {
    throw fail('request.invalid', 'attest needs evidence or an evidence source');
  }
  let body = opts.nonce === undefined || open ? evidence.body : { ...evidence.body, nonce: opts.nonce };
  if (opts.gpus) {
    if (evidence.path === '/attest/SgxEnclave') throw fail('request.invalid', 'GPU evidence goes with TDX or SEV-SNP evidence, not an SGX enclave');
    if (!opts.runtimeData) throw fail('request.invalid', 'GPU evidence needs runtimeData: the GPU nonce is derived from it');
    const gpus = await opts.gpus.collect(gpuNonceFor(opts.runtimeData));
    body = { ...body, gpuEvidence: serializeGpuEvidence(gpus) };
  }
  const base = opts.attestationUrl.replace(/\/+$/, '');
  const res = await exchangeJson(`${base}${evidence.path}?api-version=${opts.apiVersion ?? MAA_API_VERSION}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ca: opts.ca,
    what: `attestation (${evidence.path})`,
  });
  if (typeof res.token !== 'string' || res.token === '') throw fail('sdk.http_error', 'the attestation response has no token', { path: evidence.path });
  return open ? open(res.token) : res.token;
}
