import type { FastifyInstance } from 'fastify';
import type { ServiceName } from '../config/config.js';
import { attestationPlugin } from './attestation/plugin.js';
import { collateralPlugin } from './collateral/plugin.js';
import type { AppContext } from './context.js';
import { vaultPlugin } from './vault/plugin.js';

export type ServicePlugin = (app: FastifyInstance, ctx: AppContext) => Promise<void>;

/**
 * The three services and where their routes live. Each is an encapsulated Fastify plugin with its
 * own error family; they share one port because their URL paths do not collide.
 */
export const SERVICE_PLUGINS: Record<ServiceName, ServicePlugin> = {
  vault: vaultPlugin,
  attestation: attestationPlugin,
  collateral: (app, ctx) => collateralPlugin(app, ctx),
};
