/** Test doubles for the attestation service's ports (tests only). */
import type { PolicyStore } from './ports.js';

/** A policy store that holds no policy: every type is judged by its default policy (policy/index.ts). */
export const NO_STORED_POLICIES = {
  async getPolicy() {
    return undefined;
  },
  async version() {
    return 0;
  },
} as unknown as PolicyStore;
