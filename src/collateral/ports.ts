import type { PlatformSeen } from './baseline.js';

/**
 * What other services tell the collateral service. The attestation service calls
 * `recordPlatformSeen` after it verified a DCAP quote (FMSPC + PCK TCB + TEE_TCB_SVN), so that a baseline
 * dry run knows which platforms a move would affect. Build one with
 * `createCollateralStore(ctx.db)` from src/storage/collateral-store.ts.
 */
export interface PlatformSightings {
  recordPlatformSeen(platform: PlatformSeen, source: 'attestation' | 'registration', at: Date): Promise<void>;
}
