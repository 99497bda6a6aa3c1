/** Test doubles for the attestation service's ports (tests only). */
import type { PolicyStore } from './ports.js';
import { type AttestationServiceDeps, createAttestationService } from './service.js';

/** A policy store that holds no policy: every type is judged by its default policy (policy/index.ts). */
const NO_STORED_POLICIES = {
  async getPolicy() {
    return undefined;
  },
  async version() {
    return 0;
  },
} as unknown as PolicyStore;

/**
 * The attestation service for tests that attest with draft policies (unsigned tokens, so no signer): no stored
 * policy, no collateral or SEV-SNP certificate source unless `deps` gives one, the clock now.
 */
export function draftPolicyService(deps: Partial<AttestationServiceDeps> = {}) {
  return createAttestationService({
    collateral: {} as never,
    snpCertificates: {} as never,
    policies: NO_STORED_POLICIES,
    signer: () => Promise.reject(new Error('unused: draft policies give unsigned tokens')),
    issuer: () => 'https://attest.example',
    now: () => new Date(),
    cacheClockMs: () => 0,
    tokenLifetimeSeconds: 60,
    ...deps,
  });
}
