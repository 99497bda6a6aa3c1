/** A stored EC key version of `name` for vault-store tests (its bytes are never used: the store only keeps and MACs them). */
export const keyOf = (name: string, version: string) => ({
  name,
  version,
  kty: 'EC' as const,
  crv: 'P-256' as const,
  keyOps: ['sign' as const, 'verify' as const],
  publicJwk: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' },
  handle: new Uint8Array([1, 2, 3]),
  provider: 'software',
  attributes: { enabled: true, exportable: false, created: 1, updated: 1 },
});
