/**
 * NVIDIA collateral in the cache: reference integrity manifests by RIM id (as NVIDIA's RIM service
 * serves them) and OCSP responses by CertID (as NVIDIA's OCSP responder answers them). Each is verified
 * before it is stored or imported: a RIM's XML signature and chain to the pinned RIM root, and its
 * version against its id; an OCSP response's signature, its responder's chain to a pinned NVIDIA root
 * and that it answers for the CertID it is stored under.
 */
import { createHash } from 'node:crypto';
import { fail, isConclaveError } from '../core/errors.js';
import { type OcspCertId, buildOcspRequestFor, parseOcspResponse, verifyOcspResponse } from '../core/ocsp.js';
import type { Certificate } from '../core/x509.js';
import { NVIDIA_DEVICE_IDENTITY_CA, NVIDIA_RIM_ROOT_CA, verifyRim } from '../evidence/nvidia/index.js';
import type { CollateralItem, CollateralKind } from './cache/item.js';
import type { CollateralUpstream, UpstreamAnswer } from './ports.js';

/** What fetching NVIDIA collateral needs of the cache service (collateral/service.ts). */
export interface NvidiaFetchTarget {
  readonly upstream: CollateralUpstream;
  ingest(kind: CollateralKind, scope: string, versioned: boolean, selector: string | null, r: UpstreamAnswer): Promise<CollateralItem>;
}

/** NVIDIA RIM ids: `NV_GPU_DRIVER_GH100_550.90.07`, `NV_GPU_CC_DRIVER_GB100_575.32`, `NV_GPU_VBIOS_1010_0200_882_96009F0001`. */
const RIM_ID = /^NV_GPU_[A-Z0-9_]{1,64}_[0-9A-Za-z.]{1,32}$/;

export function checkRimId(id: string): string {
  if (!RIM_ID.test(id)) throw fail('request.invalid', `"${id.slice(0, 80)}" is not an NVIDIA RIM id`, { id: id.slice(0, 80) });
  return id;
}

export const rimScope = (id: string): string => `nvidia/rim/${id}`;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The scope of an OCSP response: the CertID it answers (hash, issuer name hash, issuer key hash, serial). */
export function ocspScope(id: OcspCertId): string {
  return `nvidia/ocsp/${id.hash}/${hex(id.issuerNameHash)}/${hex(id.issuerKeyHash)}/${id.serial}`;
}

export function certIdOfScope(scope: string): OcspCertId {
  const m = /^nvidia\/ocsp\/(sha1|sha256|sha384|sha512)\/([0-9a-f]+)\/([0-9a-f]+)\/([0-9a-f]+)$/.exec(scope);
  if (!m) throw fail('collateral.malformed', `"${scope}" is not an OCSP scope`, { scope });
  return { hash: m[1] as OcspCertId['hash'], issuerNameHash: Buffer.from(m[2]!, 'hex'), issuerKeyHash: Buffer.from(m[3]!, 'hex'), serial: m[4]! };
}

/** A RIM's id names its version: the driver version, or the VBIOS version without dots, at the end. */
function idMatchesVersion(id: string, version: string): boolean {
  const v = version.toLowerCase();
  const tail = id.slice(id.lastIndexOf('_') + 1).toLowerCase();
  return tail === v || tail === v.replace(/\./g, '');
}

export function verifyNvidiaRimItem(item: CollateralItem, rimRoot?: Certificate): void {
  const id = item.scope.replace(/^nvidia\/rim\//, '');
  const rim = verifyRim(item.body, { at: new Date(item.fetchedAt), root: rimRoot });
  if (!idMatchesVersion(id, rim.colloquialVersion)) {
    throw fail('rim.version_mismatch', `the RIM stored as ${id} is for version ${rim.colloquialVersion}`, { id, version: rim.colloquialVersion });
  }
}

/** Verifies an OCSP answer for a CertID: its responder must chain to the NVIDIA device or RIM root. */
export function verifyNvidiaOcsp(body: Uint8Array, certId: OcspCertId, at: Date, roots: readonly Certificate[] = [NVIDIA_DEVICE_IDENTITY_CA, NVIDIA_RIM_ROOT_CA]): void {
  const resp = parseOcspResponse(body);
  let last: unknown;
  for (const root of roots) {
    try {
      verifyOcspResponse(resp, { target: { certId }, root, at });
      return;
    } catch (e) {
      if (!isConclaveError(e, 'ocsp.unauthorized')) throw e;
      last = e;
    }
  }
  throw last;
}

export function verifyNvidiaOcspItem(item: CollateralItem, roots?: readonly Certificate[]): void {
  verifyNvidiaOcsp(item.body, certIdOfScope(item.scope), new Date(item.fetchedAt), roots);
}

/** The NVIDIA RIM service's answer shape: `{id, rim: base64(XML), sha256}`. */
export function rimServiceBody(id: string, body: Uint8Array): { id: string; rim: string; sha256: string } {
  return { id, rim: Buffer.from(body).toString('base64'), sha256: createHash('sha256').update(body).digest('hex') };
}

/** Reads a RIM service answer (or a bare XML document) and checks that it is for `id`. */
export function rimFromServiceAnswer(id: string, body: Uint8Array): Uint8Array {
  const text = Buffer.from(body).toString('utf8').trim();
  if (text.startsWith('<')) return new Uint8Array(body);
  let o: { id?: unknown; rim?: unknown };
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw fail('collateral.malformed', `the RIM service answer for ${id} is neither JSON nor XML`, { id }, e);
  }
  if (o.id !== id) throw fail('collateral.malformed', `the RIM service answered for ${String(o.id).slice(0, 80)}, not ${id}`, { id });
  if (typeof o.rim !== 'string') throw fail('collateral.malformed', `the RIM service answer for ${id} holds no rim`, { id });
  return new Uint8Array(Buffer.from(o.rim, 'base64'));
}

/** Fetches a RIM by id from the NVIDIA RIM upstream and stores it (verified). */
export async function fetchRim(svc: NvidiaFetchTarget, id: string): Promise<CollateralItem> {
  const r = await svc.upstream.nvidiaRim(checkRimId(id));
  return svc.ingest('nvidia_rim', rimScope(id), false, null, { ...r, body: rimFromServiceAnswer(id, r.body), headers: { ...r.headers, 'content-type': 'application/xml' } });
}

/** Asks the NVIDIA OCSP upstream about a CertID (without a nonce, so the answer can be cached) and stores it. */
export async function fetchOcsp(svc: NvidiaFetchTarget, certId: OcspCertId): Promise<CollateralItem> {
  const scope = ocspScope(certId);
  const r = await svc.upstream.nvidiaOcsp(buildOcspRequestFor(certId));
  // One source per CertID, so refreshes of different certificates are not coalesced into one.
  return svc.ingest('nvidia_ocsp', scope, false, null, { ...r, url: `${r.url}#${scope}`, headers: { ...r.headers, 'content-type': 'application/ocsp-response' } });
}

/** Refresh of a stored NVIDIA item from its upstream. */
export async function fetchNvidiaAgain(svc: NvidiaFetchTarget, item: CollateralItem): Promise<CollateralItem> {
  if (item.kind === 'nvidia_rim') return fetchRim(svc, item.scope.replace(/^nvidia\/rim\//, ''));
  return fetchOcsp(svc, certIdOfScope(item.scope));
}
