/**
 * src/wire/: every route's request and response schemas (path parameters, query, body, answers by
 * status), one place the HTTP layer, /openapi.json and tests read them from. Schemas are values (JSON
 * Schema) that carry their TypeScript types (schema.ts).
 */
export { ATTESTATION } from './attestation.js';
export { COLLATERAL } from './collateral.js';
export { CONSOLE } from './console.js';
export { IDENTITY } from './identity.js';
export { LOG } from './log.js';
export { VAULT } from './vault.js';
export { type RouteTypes, type Schema, type Static, type WireRoute, S, check, route, violation } from './schema.js';
