export * from './decision.js';
export * from './key-transfer.js';
export * from './policy.js';
export type * from './ports.js';
export * from './release-jws.js';
export * from './target-token.js';
