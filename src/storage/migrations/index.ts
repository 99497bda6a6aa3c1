import type { Migration } from '../database.js';
import { COLLATERAL_MIGRATIONS } from './collateral.js';
import { CONSOLE_MIGRATIONS } from './console.js';
import { ATTESTATION_MIGRATIONS } from './attestation.js';
import { CORE_MIGRATIONS } from './core.js';
import { LOG_MIGRATIONS } from './log.js';
import { STORE_MIGRATIONS } from './store.js';
import { VAULT_MIGRATIONS } from './vault.js';

/** Every schema migration, by id range: core 1–99, collateral 100–199, vault 200–299 (the log 210–219), attestation 300–399, console 400–409. */
export const MIGRATIONS: readonly Migration[] = [...CORE_MIGRATIONS, ...STORE_MIGRATIONS, ...ATTESTATION_MIGRATIONS, ...COLLATERAL_MIGRATIONS, ...VAULT_MIGRATIONS, ...LOG_MIGRATIONS, ...CONSOLE_MIGRATIONS];
