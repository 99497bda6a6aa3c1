import { createHash } from 'node:crypto';

/** Domain separation for the GPU nonce derivation (docs/gpu.md "Binding GPUs to the CPU evidence"). */
export const GPU_NONCE_LABEL = 'conclave-gpu-nonce-v1';

/**
 * The nonce every GPU of a composite attestation must answer: SHA-256("conclave-gpu-nonce-v1" ‖
 * runtimeData), where runtimeData is exactly the bytes the CPU evidence binds (REPORTDATA =
 * SHA-256(runtimeData) for TDX/SNP, or the HCL variable data). A GPU report made for one VM's runtime
 * data (its own key, the relying party's nonce) therefore cannot be replayed into another VM's
 * attestation: the other VM's CPU evidence binds other runtime data, so the nonces differ.
 */
export function gpuNonceFor(runtimeData: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(GPU_NONCE_LABEL).update(runtimeData).digest());
}
