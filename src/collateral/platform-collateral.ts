/**
 * PCCSAdminTool's collateral file (`pccsadmin.py fetch` output, uploaded with `put` to
 * `PUT /sgx/certification/v{3,4}/platformcollateral`), turned into cache items. Shape, as the tool
 * writes it (DCAP tools/PccsAdminTool/pccsadmin.py `CollateralFetcher`) and PCCS reads it
 * (services/pccs_schemas.js `PLATFORM_COLLATERAL_SCHEMA_V3/V4`):
 *
 * ```
 * { platforms: [{qe_id, pce_id, cpu_svn, pce_svn, enc_ppid, platform_manifest}],
 *   collaterals: { version, pck_certs: [{qe_id, pce_id, enc_ppid, platform_manifest, certs: <PCS pckcerts>}],
 *     tcbinfos: [{fmspc, (v4) sgx_tcbinfo[_early], tdx_tcbinfo[_early] | (v3) tcbinfo[_early]}],   // parsed JSON
 *     pckcacrl: {processorCrl, platformCrl},                                                      // hex of DER
 *     qeidentity[_early], tdqeidentity[_early], qveidentity[_early],                              // JSON text
 *     certificates: {"SGX-PCK-Certificate-Issuer-Chain": {PROCESSOR, PLATFORM},
 *                    "TCB-Info-Issuer-Chain" (v4) | "SGX-TCB-Info-Issuer-Chain" (v3),
 *                    "SGX-Enclave-Identity-Issuer-Chain"},                                         // URL-encoded PEM
 *     rootcacrl, rootcacrl_cdp } }
 * ```
 *
 * Unlike PCCS, every item is verified before anything is stored (signatures over the exact bytes served,
 * chains to the pinned Intel SGX Root CA); one that fails refuses the whole upload with
 * `collateral.integrity_error` (PCCS 460). TCB infos arrive re-serialised by the tool (parsed, then
 * dumped), so their signatures verify only if the round trip kept Intel's compact bytes, as it does for
 * PCS answers; a file whose TCB info was reformatted is refused rather than served.
 */
import { fail, isConclaveError } from '../core/errors.js';
import { crlBytes, parseCertificate, pemToDer } from '../core/x509.js';
import { INTEL_PCK_CA_PEMS, INTEL_SGX_ROOT_CA_PEM } from '../evidence/dcap/roots.js';
import { type CollateralItem, type CollateralKind, type PcsVersion, identityScope, intelMeta, signedDatesOf, tcbScope } from './cache/item.js';
import { verifyCollateralItem } from './cache/verify.js';
import { type SelectionLevel, canonicalPcesvn, parsePckCerts, pckCertScope, pckCertsScope, selectPckCert, tcbOfPckCert } from './intel/pck.js';
import type { Registration } from './ports.js';

export interface PlatformCollateralImport {
  readonly items: Omit<CollateralItem, 'version'>[];
  readonly platforms: Registration[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(message: string, field: string): never {
  throw fail('request.invalid', `platform collateral: ${message}`, { field });
}

function hexField(v: unknown, field: string, pattern: RegExp, optional = true): string | undefined {
  if (v === undefined || v === null || v === '') {
    if (optional) return undefined;
    bad(`${field} is required`, field);
  }
  if (typeof v !== 'string' || !pattern.test(v)) bad(`${field} is malformed`, field);
  return v.toUpperCase();
}

function chainText(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') bad(`${field} must be a string`, field);
  try {
    return v.includes('%') ? decodeURIComponent(v) : v;
  } catch {
    bad(`${field} is not URL-encoded PEM`, field);
  }
}

/** The pinned issuer chain of a PCK CA (CA, then root), for CRLs uploaded without one. */
function pinnedCaChain(ca: 'processor' | 'platform'): string {
  return `${INTEL_PCK_CA_PEMS[ca].trim()}\n${INTEL_SGX_ROOT_CA_PEM.trim()}\n`;
}

function caOfCert(pem: string): 'processor' | 'platform' {
  const issuer = parseCertificate(pemToDer(pem)[0]!).issuerCN ?? '';
  if (/Platform CA/i.test(issuer)) return 'platform';
  if (/Processor CA/i.test(issuer)) return 'processor';
  bad('a PCK certificate is issued by neither PCK CA', 'pck_certs');
}

/**
 * Reads and checks an upload. `levelsOf` supplies TCB levels of already cached TCB infos when the file
 * has none for a platform's FMSPC.
 */
export function readPlatformCollateral(doc: unknown, version: PcsVersion, at: Date, levelsOf: (fmspc: string) => SelectionLevel[] = () => []): PlatformCollateralImport {
  if (!isObject(doc) || !Array.isArray(doc.platforms) || !isObject(doc.collaterals)) bad('the body must be {platforms: [...], collaterals: {...}}', 'collaterals');
  const c = doc.collaterals;
  const wantVersion = version === 'v4' ? 4 : 3;
  if (c.version !== undefined && c.version !== wantVersion) bad(`collaterals.version ${String(c.version)} does not match the ${version} route`, 'collaterals.version');
  if (!Array.isArray(c.pck_certs) || !Array.isArray(c.tcbinfos) || !isObject(c.certificates)) bad('collaterals needs pck_certs, tcbinfos and certificates', 'collaterals');
  const certs = c.certificates;
  const pckChains = isObject(certs['SGX-PCK-Certificate-Issuer-Chain']) ? certs['SGX-PCK-Certificate-Issuer-Chain'] : {};
  const pckChainOf = (ca: 'processor' | 'platform') => chainText(pckChains[ca.toUpperCase()], `certificates.SGX-PCK-Certificate-Issuer-Chain.${ca.toUpperCase()}`) ?? pinnedCaChain(ca);
  const tcbChain = chainText(certs['TCB-Info-Issuer-Chain'] ?? certs['SGX-TCB-Info-Issuer-Chain'], 'certificates.TCB-Info-Issuer-Chain');
  const identityChain = chainText(certs['SGX-Enclave-Identity-Issuer-Chain'], 'certificates.SGX-Enclave-Identity-Issuer-Chain');
  const source = `upload:${version}/platformcollateral`;
  const fetchedAt = at.getTime();
  const items: Omit<CollateralItem, 'version'>[] = [];

  const add = (kind: CollateralKind, scope: string, versioned: boolean, selector: string | null, body: Uint8Array, headers: Record<string, string>) => {
    const dates = signedDatesOf(kind, body);
    const key = versioned ? `${scope}#${dates.evalNumber ?? 'unknown'}` : scope;
    const prior = items.findIndex((i) => i.key === key);
    const merged = prior >= 0 && items[prior]!.selector && selector && items[prior]!.selector !== selector ? [items[prior]!.selector, selector].sort().join(',') : selector;
    const item = { key, kind, scope, evalNumber: dates.evalNumber, selector: merged, meta: intelMeta(kind, headers), body, source, fetchedAt, issueDate: dates.issueDate, nextUpdate: dates.nextUpdate };
    if (prior >= 0) items[prior] = item;
    else items.push(item);
  };

  // TCB infos first: PCK selection below orders certificates by their levels.
  const levels = new Map<string, SelectionLevel[]>();
  const slots = version === 'v4' ? (['sgx_tcbinfo', 'sgx_tcbinfo_early', 'tdx_tcbinfo', 'tdx_tcbinfo_early'] as const) : (['tcbinfo', 'tcbinfo_early'] as const);
  for (const [n, t] of (c.tcbinfos as unknown[]).entries()) {
    if (!isObject(t)) bad(`tcbinfos[${n}] must be an object`, 'tcbinfos');
    const fmspc = hexField(t.fmspc, `tcbinfos[${n}].fmspc`, /^[0-9a-fA-F]{12}$/, false)!;
    for (const slot of slots) {
      const v = t[slot];
      if (v === undefined || v === null) continue;
      if (!isObject(v)) bad(`tcbinfos[${n}].${slot} must be a TCB info object`, slot);
      const tee = slot.startsWith('tdx') ? 'tdx' : 'sgx';
      add('tcb', tcbScope(tee, version, fmspc), true, slot.endsWith('_early') ? 'early' : 'standard', new Uint8Array(Buffer.from(JSON.stringify(v))), { 'content-type': 'application/json', 'tcb-info-issuer-chain': tcbChain ?? '' });
      const info = (v as { tcbInfo?: { tcbLevels?: { tcb?: Record<string, unknown> }[] } }).tcbInfo;
      if (tee === 'sgx' && Array.isArray(info?.tcbLevels) && (!levels.has(fmspc) || slot.endsWith('_early'))) {
        levels.set(
          fmspc,
          info.tcbLevels.map((l, i) => {
            const field = `tcbinfos[${n}].${slot}.tcbInfo.tcbLevels[${i}]`;
            if (!isObject(l) || (l.tcb !== undefined && !isObject(l.tcb))) bad(`${field} must be a TCB level object`, field);
            const tcb = (l.tcb ?? {}) as Json;
            const list = tcb.sgxtcbcomponents;
            if (Array.isArray(list) && !list.every(isObject)) bad(`${field}.tcb.sgxtcbcomponents must be objects`, field);
            const comps = Array.isArray(list) ? (list as { svn?: number }[]).map((x) => Number(x.svn ?? 0)) : Array.from({ length: 16 }, (_, k) => Number(tcb[`sgxtcbcomp${String(k + 1).padStart(2, '0')}svn`] ?? 0));
            return { components: comps, pcesvn: Number(tcb.pcesvn ?? 0) };
          }),
        );
      }
    }
  }

  // Platforms: the registrations the tool collected (their raw TCBs pick certificates out of the sets).
  const platforms: Registration[] = (doc.platforms as unknown[]).map((p, n) => {
    if (!isObject(p)) bad(`platforms[${n}] must be an object`, 'platforms');
    const cpuSvn = hexField(p.cpu_svn, `platforms[${n}].cpu_svn`, /^[0-9a-fA-F]{32}$/);
    const pceSvnRaw = hexField(p.pce_svn, `platforms[${n}].pce_svn`, /^[0-9a-fA-F]{4}$/);
    return {
      qeId: hexField(p.qe_id, `platforms[${n}].qe_id`, /^[0-9a-fA-F]{1,260}$/, false)!,
      pceId: hexField(p.pce_id, `platforms[${n}].pce_id`, /^[0-9a-fA-F]{4}$/, false)!,
      cpuSvn,
      pceSvn: pceSvnRaw ? canonicalPcesvn(pceSvnRaw, 'pce_svn') : undefined,
      encPpid: hexField(p.enc_ppid, `platforms[${n}].enc_ppid`, /^[0-9a-fA-F]{768}$/),
      platformManifest: hexField(p.platform_manifest, `platforms[${n}].platform_manifest`, /^[0-9a-fA-F]+$/),
    };
  });

  for (const [n, pc] of (c.pck_certs as unknown[]).entries()) {
    if (!isObject(pc)) bad(`pck_certs[${n}] must be an object`, 'pck_certs');
    const qeId = hexField(pc.qe_id, `pck_certs[${n}].qe_id`, /^[0-9a-fA-F]{1,260}$/, false)!;
    const pceId = hexField(pc.pce_id, `pck_certs[${n}].pce_id`, /^[0-9a-fA-F]{4}$/, false)!;
    if (!Array.isArray(pc.certs) || pc.certs.length === 0) bad(`pck_certs[${n}].certs must list the platform's certificates`, 'pck_certs');
    const entries = parsePckCerts(pc.certs);
    const first = entries.find((e) => e.cert !== undefined);
    if (!first) bad(`pck_certs[${n}] has no available certificate`, 'pck_certs');
    const { fmspc } = tcbOfPckCert(first.cert!);
    const ca = caOfCert(first.cert!);
    const headers = { 'content-type': 'application/json', 'sgx-pck-certificate-issuer-chain': pckChainOf(ca), 'sgx-fmspc': fmspc, 'sgx-pck-certificate-ca-type': ca };
    const platform = { pceId, qeId };
    const setBody = new Uint8Array(Buffer.from(JSON.stringify(pc.certs)));
    add('pckcerts', pckCertsScope(platform), false, null, setBody, headers);
    const order = levels.get(fmspc) ?? levelsOf(fmspc);
    for (const p of platforms.filter((x) => x.qeId === qeId && x.pceId === pceId && x.cpuSvn && x.pceSvn)) {
      const i = selectPckCert({ cpusvn: p.cpuSvn!, pcesvn: Buffer.from(p.pceSvn!, 'hex').readUInt16LE(0) }, entries, order);
      if (i === undefined) bad(`no certificate of platform ${qeId} fits its TCB ${p.cpuSvn}/${p.pceSvn}`, 'pck_certs');
      const e = entries[i]!;
      add('pckcert', pckCertScope(platform, p.cpuSvn!, p.pceSvn!), false, null, new Uint8Array(Buffer.from(e.cert!)), { ...headers, 'content-type': 'application/x-pem-file', 'sgx-tcbm': e.tcbm });
    }
  }

  const crls = isObject(c.pckcacrl) ? c.pckcacrl : {};
  for (const [field, ca] of [
    ['processorCrl', 'processor'],
    ['platformCrl', 'platform'],
  ] as const) {
    const v = crls[field];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string') bad(`pckcacrl.${field} must be hex`, `pckcacrl.${field}`);
    add('pckcrl', `sgx/pckcrl/${ca}`, false, null, crlBytes(v), { 'content-type': 'application/pkix-crl', 'sgx-pck-crl-issuer-chain': pckChainOf(ca) });
  }

  const identities = [
    ['qeidentity', 'qe_identity', identityScope('sgx', version, 'qe'), 'standard'],
    ['qeidentity_early', 'qe_identity', identityScope('sgx', version, 'qe'), 'early'],
    ['qveidentity', 'qve_identity', identityScope('sgx', version, 'qve'), 'standard'],
    ['qveidentity_early', 'qve_identity', identityScope('sgx', version, 'qve'), 'early'],
    ['tdqeidentity', 'qe_identity', identityScope('tdx', 'v4', 'qe'), 'standard'],
    ['tdqeidentity_early', 'qe_identity', identityScope('tdx', 'v4', 'qe'), 'early'],
  ] as const;
  for (const [field, kind, scope, selector] of identities) {
    const v = c[field];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string') bad(`${field} must be the identity JSON as text`, field);
    if (field.startsWith('tdqe') && version !== 'v4') continue;
    add(kind, scope, true, selector, new Uint8Array(Buffer.from(v)), { 'content-type': 'application/json', 'sgx-enclave-identity-issuer-chain': identityChain ?? '' });
  }

  if (typeof c.rootcacrl === 'string' && c.rootcacrl !== '') add('rootcacrl', 'sgx/rootcacrl', false, null, crlBytes(c.rootcacrl), { 'content-type': 'application/pkix-crl' });

  for (const item of items) {
    try {
      verifyCollateralItem({ ...item, version: 0 });
    } catch (e) {
      throw fail('collateral.integrity_error', `platform collateral: ${item.key} does not verify${isConclaveError(e) ? `: ${e.message}` : ''}`, { key: item.key, kind: item.kind });
    }
  }
  return { items, platforms };
}
