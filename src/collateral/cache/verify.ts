import { fail } from '../../core/errors.js';
import { type Certificate, parseCertificate, parseCrl, pemToDer, publicKeyOf, verifyChain, verifyCrlSignature } from '../../core/x509.js';
import { requireTcbSigner, splitSignedResponse, topLevelMembers, verifyP256 } from '../../evidence/dcap/signed-json.js';
import { AMD_PRODUCTS, AMD_ROOTS, type AmdProduct } from '../../evidence/snp/roots.js';
import { INTEL_SGX_ROOT_CA } from '../../evidence/dcap/roots.js';
import { type CollateralItem, SIGNED_JSON_MEMBER } from './item.js';
import { verifyNvidiaOcspItem, verifyNvidiaRimItem } from '../nvidia.js';

/**
 * Checks that a cached item is what its vendor signed, before an offline bundle is accepted: signed JSON
 * over its exact bytes with an issuer chain to the Intel SGX Root CA, CRLs by their issuers, PCK
 * certificates to the Intel root, AMD certificates and CRLs to the pinned ARK of their product. Validity
 * periods are not judged here (a bundle may be imported for an air-gapped site days later); verifiers
 * judge freshness at attestation time.
 */
export function verifyCollateralItem(item: CollateralItem, anchors: CollateralAnchors = {}): void {
  try {
    check(item, anchors.intelRoot ?? INTEL_SGX_ROOT_CA);
  } catch (e) {
    const err = e as { code?: string; message?: string };
    throw fail('collateral.bundle_invalid', `item ${item.key} does not verify: ${err.message ?? String(e)}`, { key: item.key, kind: item.kind, cause: err.code });
  }
}

/** Trust anchors other than the pinned vendor roots, for tests on a hierarchy of their own (evidence/dcap/testing.ts). */
export interface CollateralAnchors {
  readonly intelRoot?: Certificate;
}

function intelChain(item: CollateralItem, root: Certificate): Certificate[] {
  const pem = item.meta.issuerChain;
  if (!pem) throw fail('collateral.chain_invalid', 'issuer chain is missing');
  const certs = pemToDer(pem).map((d) => parseCertificate(d));
  verifyChain(certs, root, { at: new Date(item.fetchedAt), enforceValidity: false, code: 'collateral.chain_invalid' });
  return certs;
}

function productOf(item: CollateralItem): AmdProduct {
  const p = item.scope.split('/')[2] as AmdProduct;
  if (!AMD_PRODUCTS.includes(p)) throw fail('collateral.malformed', `unknown AMD product in ${item.scope}`);
  return p;
}

function check(item: CollateralItem, intelRoot: Certificate): void {
  const at = { at: new Date(item.fetchedAt), enforceValidity: false, code: 'collateral.chain_invalid' } as const;
  const member = SIGNED_JSON_MEMBER[item.kind];
  if (member) {
    const chain = intelChain(item, intelRoot);
    requireTcbSigner(chain, intelRoot, member);
    const leaf = chain[0]!;
    let signed: Uint8Array;
    let signature: Uint8Array;
    if (member === 'tcbEvaluationDataNumbers') {
      const m = topLevelMembers(item.body);
      signed = m.get(member) ?? new Uint8Array();
      signature = Buffer.from(JSON.parse(Buffer.from(m.get('signature') ?? '""').toString()) as string, 'hex');
    } else ({ signed, signature } = splitSignedResponse(item.body, member));
    if (!verifyP256(publicKeyOf(leaf), signed, signature)) throw fail('collateral.signature_invalid', 'signature does not verify over the signed body');
    return;
  }
  switch (item.kind) {
    case 'pckcrl':
      verifyCrlSignature(parseCrl(item.body), intelChain(item, intelRoot)[0]!);
      return;
    case 'rootcacrl':
      verifyCrlSignature(parseCrl(item.body), intelRoot);
      return;
    case 'pckcert': {
      const chain = intelChain(item, intelRoot);
      verifyChain([...pemToDer(Buffer.from(item.body).toString('latin1')).map((d) => parseCertificate(d)), ...chain], intelRoot, at);
      return;
    }
    case 'pckcerts': {
      const chain = intelChain(item, intelRoot);
      const list = JSON.parse(Buffer.from(item.body).toString('utf8')) as { cert: string }[];
      for (const e of list) {
        if (!e.cert || e.cert === 'Not available') continue;
        verifyChain([...pemToDer(decodeURIComponent(e.cert)).map((d) => parseCertificate(d)), ...chain], intelRoot, at);
      }
      return;
    }
    case 'vcek': {
      const r = AMD_ROOTS[productOf(item)];
      verifyChain([parseCertificate(item.body), r.ask], r.ark, at);
      return;
    }
    case 'vcek_chain':
    case 'vlek_chain': {
      const r = AMD_ROOTS[productOf(item)];
      const certs = pemToDer(Buffer.from(item.body).toString('latin1')).map((d) => parseCertificate(d));
      if (certs.length !== 2) throw fail('collateral.chain_invalid', 'AMD chain must hold the ASK (or ASVK) and the ARK');
      verifyChain(certs, r.ark, at);
      const expected = item.kind === 'vcek_chain' ? r.ask : r.asvk;
      if (!Buffer.from(certs[0]!.der).equals(Buffer.from(expected.der))) throw fail('collateral.chain_invalid', 'AMD intermediate differs from the pinned one');
      return;
    }
    case 'vcek_crl':
    case 'vlek_crl':
      verifyCrlSignature(parseCrl(item.body), AMD_ROOTS[productOf(item)].ark);
      return;
    case 'nvidia_rim':
      verifyNvidiaRimItem(item);
      return;
    case 'nvidia_ocsp':
      verifyNvidiaOcspItem(item);
      return;
    case 'fmspcs': {
      // PCS's FMSPC index is not signed: it carries no trust (nothing is verified against it), so only
      // its shape is checked.
      const list = JSON.parse(Buffer.from(item.body).toString('utf8')) as unknown;
      if (!Array.isArray(list) || !list.every((e) => typeof e?.fmspc === 'string' && /^[0-9a-fA-F]{12}$/.test(e.fmspc) && (e.platform === undefined || typeof e.platform === 'string'))) {
        throw fail('collateral.malformed', 'fmspcs must be a JSON array of {fmspc, platform}');
      }
      return;
    }
    default:
      throw fail('collateral.malformed', `no verification rule for ${item.kind}`);
  }
}
