import { fail } from '../../core/errors.js';
import { COLLATERAL_KINDS, type CollateralItem, type CollateralKind } from './item.js';

/**
 * The offline bundle: every cached item with its header facts, body (base64) and provenance, as one JSON
 * document (`conclave collateral export`), so an air-gapped instance can be filled from a connected one.
 */
export const BUNDLE_FORMAT = 'conclave-collateral-bundle';

export interface CollateralBundle {
  readonly format: typeof BUNDLE_FORMAT;
  readonly version: 1;
  readonly exportedAt: string;
  readonly items: readonly BundleItem[];
}

type BundleItem = Omit<CollateralItem, 'body' | 'version'> & { readonly body: string };

export function encodeBundle(items: readonly CollateralItem[], at: Date): string {
  const out: CollateralBundle = {
    format: BUNDLE_FORMAT,
    version: 1,
    exportedAt: at.toISOString(),
    items: items.map(({ version: _v, body, ...rest }) => ({ ...rest, body: Buffer.from(body).toString('base64') })),
  };
  return `${JSON.stringify(out, null, 1)}\n`;
}

export function decodeBundle(text: string): Omit<CollateralItem, 'version'>[] {
  let doc: CollateralBundle;
  try {
    doc = JSON.parse(text) as CollateralBundle;
  } catch {
    throw fail('collateral.bundle_invalid', 'bundle is not JSON');
  }
  if (doc?.format !== BUNDLE_FORMAT || doc.version !== 1 || !Array.isArray(doc.items)) throw fail('collateral.bundle_invalid', `not a ${BUNDLE_FORMAT} version 1`);
  return doc.items.map((i, n) => {
    if (typeof i?.key !== 'string' || !COLLATERAL_KINDS.includes(i.kind as CollateralKind) || typeof i.body !== 'string' || typeof i.meta !== 'object') {
      throw fail('collateral.bundle_invalid', `bundle item ${n} is malformed`, { index: n, key: i?.key });
    }
    return { ...i, body: new Uint8Array(Buffer.from(i.body, 'base64')) };
  });
}
