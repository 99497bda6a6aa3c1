import { fail } from '../../core/errors.js';
import { crlGoesBack, parseCertificate, parseCrl, pemToDer } from '../../core/x509.js';
import type { QuoteCollateral } from '../../evidence/dcap/collateral.js';
import { parsePckSgxExtension } from '../../evidence/dcap/pck-extension.js';
import { topLevelMembers } from '../../evidence/dcap/signed-json.js';
import { parseVekExtensions } from '../../evidence/snp/vek.js';
import { type CollateralItem, type CollateralKind, SIGNED_JSON_MEMBER, signedDatesOf } from './item.js';

/**
 * Two checks an upstream answer passes before it may replace what the cache holds (issue #23):
 *
 * - {@link checkCollateralTarget}: the signed content is the item that was asked for. A validly signed
 *   answer for another target (the Processor-CA CRL for the Platform CRL, another FMSPC's TCB info, the
 *   SGX QE identity for TDX, chip B's VCEK for chip A, another platform's PCK certificate) is
 *   `upstream.collateral_mismatch`.
 * - {@link checkCollateralForward}: the answer is not older than the cached copy of the same item. CRLs
 *   move forward by cRLNumber and thisUpdate; TCB info, identities and evaluation-number lists by
 *   tcbEvaluationDataNumber and issueDate (an equal number with an older issueDate is refused too);
 *   NVIDIA OCSP answers by thisUpdate. Otherwise `upstream.collateral_rollback`: revocations and TCB recoveries cannot be undone by
 *   replaying an old, validly signed answer.
 *
 * Both run after the signature checks (verifyCollateralItem) and before anything is stored, so a
 * refused answer leaves the good copy in place. The forward check runs again in the store transaction that
 * writes, against the stored rows (service.ts againstStored, CollateralStore.put): another replica or
 * process may have stored a newer copy since the one in memory was compared.
 */

/** The scope each kind is filed under (collateral/lookup.ts, intel/pck.ts, nvidia.ts build them). */
const SCOPE_SHAPES: Record<CollateralKind, RegExp> = {
  tcb: /^(sgx|tdx)\/v[34]\/tcb\/[0-9A-F]{12}$/,
  qe_identity: /^(sgx|tdx)\/v[34]\/qe\/identity$/,
  qve_identity: /^sgx\/v[34]\/qve\/identity$/,
  qae_identity: /^sgx\/v[34]\/qae\/identity$/,
  tcb_eval_numbers: /^(sgx|tdx)\/v4\/tcbevaluationdatanumbers$/,
  pckcrl: /^sgx\/pckcrl\/(processor|platform)$/,
  rootcacrl: /^sgx\/rootcacrl$/,
  pckcert: /^sgx\/pckcert\/[0-9A-Fa-f]{4}\/[^#]+\/[0-9A-Fa-f]{32}\/[0-9A-Fa-f]{4}$/,
  pckcerts: /^sgx\/pckcerts\/[0-9A-Fa-f]{4}\/[^#]+$/,
  vcek: /^amd\/vcek\/[A-Za-z]+\/[0-9a-f]+\/\d+(-\d+){3,4}$/,
  vcek_chain: /^amd\/vcek_chain\/[A-Za-z]+$/,
  vlek_chain: /^amd\/vlek_chain\/[A-Za-z]+$/,
  vcek_crl: /^amd\/vcek_crl\/[A-Za-z]+$/,
  vlek_crl: /^amd\/vlek_crl\/[A-Za-z]+$/,
  nvidia_rim: /^nvidia\/rim\/[^#]+$/,
  nvidia_ocsp: /^nvidia\/ocsp\/(sha1|sha256|sha384|sha512)\/[0-9a-f]+\/[0-9a-f]+\/[0-9a-f]+$/,
  fmspcs: /^sgx\/v4\/fmspcs\/[^#]+$/,
};

/** Throws `collateral.mismatch` unless `scope` has the shape items of `kind` are filed under. */
export function checkScopeShape(kind: CollateralKind, scope: string): void {
  if (!SCOPE_SHAPES[kind]?.test(scope)) throw fail('collateral.mismatch', `scope "${scope.slice(0, 200)}" is not where ${kind} items are filed`, { kind, scope: scope.slice(0, 200) });
}

type Item = Pick<CollateralItem, 'key' | 'kind' | 'scope' | 'body' | 'source' | 'meta' | 'evalNumber' | 'issueDate'>;

function mismatch(item: Item, what: string, expected: unknown, actual: unknown): never {
  throw fail('upstream.collateral_mismatch', `upstream answer for ${item.key} is for another target: ${what} is ${String(actual)}, expected ${String(expected)}`, {
    key: item.key,
    url: item.source,
    field: what,
    expected: String(expected),
    actual: String(actual),
  });
}

function signedJson(item: Item): Record<string, unknown> {
  const member = SIGNED_JSON_MEMBER[item.kind];
  const raw = member ? topLevelMembers(item.body).get(member) : undefined;
  if (!raw) throw fail('collateral.malformed', `${item.kind} body lacks its signed member`, { key: item.key });
  return JSON.parse(Buffer.from(raw).toString('utf8')) as Record<string, unknown>;
}

/** The evaluation number an answer was asked for by `?tcbEvaluationDataNumber=`, if any. */
function requestedEvalNumber(item: Item): number | undefined {
  try {
    const v = new URL(item.source).searchParams.get('tcbEvaluationDataNumber');
    return v === null ? undefined : Number(v);
  } catch {
    return undefined;
  }
}

const IDENTITY_IDS: Record<string, string> = { 'sgx/qe': 'QE', 'sgx/qve': 'QVE', 'sgx/qae': 'QAE', 'tdx/qe': 'TD_QE' };
const PCK_CRL_ISSUER: Record<string, string> = { processor: 'Intel SGX PCK Processor CA', platform: 'Intel SGX PCK Platform CA' };

/** SGX TCB components and PCESVN of a PCK certificate are at most those of the raw TCB it was asked for. */
function tcbAtMost(components: readonly number[], pcesvn: number, cpusvnHex: string, pcesvnLeHex: string): boolean {
  const raw = Buffer.from(cpusvnHex, 'hex');
  if (raw.byteLength !== 16 || components.length !== 16) return false;
  if (components.some((c, i) => c > raw[i]!)) return false;
  return pcesvn <= Buffer.from(pcesvnLeHex, 'hex').readUInt16LE(0);
}

/** The certificate's TCB as `tcbm` spells it: components (or its raw CPUSVN) ‖ PCESVN little-endian, lower-case hex. */
function tcbmOf(ext: { sgxTcbComponents: readonly number[]; pcesvn: number; cpusvn: string }): { components: string; cpusvn: string } {
  const pcesvn = Buffer.alloc(2);
  pcesvn.writeUInt16LE(ext.pcesvn);
  return { components: `${Buffer.from(ext.sgxTcbComponents).toString('hex')}${pcesvn.toString('hex')}`, cpusvn: `${ext.cpusvn.toLowerCase()}${pcesvn.toString('hex')}` };
}

/** One entry of a PCS `pckcerts` answer, as the JSON carries it (intel/pck.ts parsePckCerts reads it for selection). */
interface PckCertsJsonEntry {
  readonly tcb?: Record<string, unknown>;
  readonly tcbm?: unknown;
  readonly cert?: unknown;
}

/**
 * A pckcerts entry's unsigned labels are its certificate's own TCB: PCK certificate selection reads `tcb`
 * (components and PCESVN), and `tcbm` is served as SGX-TCBm.
 */
function checkPckCertsLabels(item: Item, e: PckCertsJsonEntry, ext: { sgxTcbComponents: readonly number[]; pcesvn: number; cpusvn: string }, n: number): void {
  const tcb = e.tcb ?? {};
  const label = [...Array.from({ length: 16 }, (_, i) => tcb[`sgxtcbcomp${String(i + 1).padStart(2, '0')}svn`]), tcb.pcesvn].map((v) => (typeof v === 'number' ? v : Number.NaN)).join('.');
  const own = [...ext.sgxTcbComponents, ext.pcesvn].join('.');
  if (label !== own) mismatch(item, `pckcerts[${n}].tcb (label vs certificate TCB)`, own, label);
  const t = tcbmOf(ext);
  const tcbm = typeof e.tcbm === 'string' ? e.tcbm.toLowerCase() : String(e.tcbm);
  if (tcbm !== t.components && tcbm !== t.cpusvn) mismatch(item, `pckcerts[${n}].tcbm (label vs certificate TCB)`, t.components, tcbm);
}

function checkPckCertificate(item: Item, pem: string, pceid: string, raw: { cpusvn: string; pcesvn: string } | undefined): ReturnType<typeof parsePckSgxExtension> {
  const [der] = pemToDer(pem);
  if (!der) throw fail('collateral.malformed', 'PCK certificate answer holds no certificate', { key: item.key });
  const cert = parseCertificate(der);
  const ext = parsePckSgxExtension(cert);
  if (ext.pceId.toLowerCase() !== pceid.toLowerCase()) mismatch(item, 'PCE-ID', pceid, ext.pceId);
  if (item.meta.fmspc && ext.fmspc.toLowerCase() !== item.meta.fmspc.toLowerCase()) mismatch(item, 'FMSPC (SGX-FMSPC header vs certificate)', item.meta.fmspc, ext.fmspc);
  const caType = cert.issuerCN?.includes('Platform') ? 'platform' : cert.issuerCN?.includes('Processor') ? 'processor' : cert.issuerCN;
  if (item.meta.caType && item.meta.caType.toLowerCase() !== caType) mismatch(item, 'PCK CA type (header vs issuer)', item.meta.caType, caType);
  if (raw) {
    if (!tcbAtMost(ext.sgxTcbComponents, ext.pcesvn, raw.cpusvn, raw.pcesvn)) mismatch(item, 'PCK certificate TCB (above the raw TCB asked for)', `${raw.cpusvn}/${raw.pcesvn}`, `${Buffer.from(ext.sgxTcbComponents).toString('hex')}/${ext.pcesvn}`);
    if (item.meta.tcbm) {
      const { components: tcbm } = tcbmOf(ext);
      if (tcbm !== item.meta.tcbm.toLowerCase()) mismatch(item, 'SGX-TCBm header vs certificate TCB', item.meta.tcbm.toLowerCase(), tcbm);
    }
  }
  return ext;
}

/**
 * Throws `upstream.collateral_mismatch` unless the item's signed content is what its scope (and the
 * request URL) asked for. `platformPpid` is the PPID already cached for the same platform id (qeid or
 * encrypted PPID), when there is one: a PCK certificate of another platform is refused.
 */
export function checkCollateralTarget(item: Item, platformPpid?: string): { ppid?: string } {
  const parts = item.scope.split('/');
  switch (item.kind) {
    case 'tcb': {
      const [tee, , , fmspc] = parts;
      const o = signedJson(item);
      if (String(o.fmspc ?? '').toUpperCase() !== fmspc!.toUpperCase()) mismatch(item, 'fmspc', fmspc, o.fmspc);
      // TCB info v3 names its TEE ("SGX"/"TDX"); v2 (PCS v3) is SGX only.
      const id = o.id === undefined ? 'SGX' : String(o.id);
      if (id !== tee!.toUpperCase()) mismatch(item, 'TCB info id', tee!.toUpperCase(), id);
      const n = requestedEvalNumber(item);
      if (n !== undefined && o.tcbEvaluationDataNumber !== n) mismatch(item, 'tcbEvaluationDataNumber', n, o.tcbEvaluationDataNumber);
      return {};
    }
    case 'qe_identity':
    case 'qve_identity':
    case 'qae_identity': {
      const [tee, , enclave] = parts;
      const expected = IDENTITY_IDS[`${tee}/${enclave}`];
      const o = signedJson(item);
      if (o.id !== expected) mismatch(item, 'enclave identity id', expected, o.id);
      const n = requestedEvalNumber(item);
      if (n !== undefined && o.tcbEvaluationDataNumber !== n) mismatch(item, 'tcbEvaluationDataNumber', n, o.tcbEvaluationDataNumber);
      return {};
    }
    case 'tcb_eval_numbers': {
      const o = signedJson(item);
      if (o.id !== undefined && String(o.id) !== parts[0]!.toUpperCase()) mismatch(item, 'TCB evaluation data numbers id', parts[0]!.toUpperCase(), o.id);
      return {};
    }
    case 'pckcrl': {
      const expected = PCK_CRL_ISSUER[parts[2]!];
      const crl = parseCrl(item.body);
      if (crl.issuerCN !== expected) mismatch(item, 'CRL issuer', expected, crl.issuerCN);
      return {};
    }
    case 'rootcacrl': {
      const crl = parseCrl(item.body);
      if (crl.issuerCN !== 'Intel SGX Root CA') mismatch(item, 'CRL issuer', 'Intel SGX Root CA', crl.issuerCN);
      return {};
    }
    case 'pckcert': {
      // sgx/pckcert/{pceid}/{platform key: qe:…[/ppid:…] | ppid:… | manifest:…}/{cpusvn}/{pcesvn} (collateral/intel/pck.ts)
      const pceid = parts[2]!;
      const [cpusvn, pcesvn] = parts.slice(-2);
      const { ppid } = checkPckCertificate(item, Buffer.from(item.body).toString('latin1'), pceid, { cpusvn: cpusvn!, pcesvn: pcesvn! });
      if (platformPpid !== undefined && ppid !== platformPpid) mismatch(item, 'PPID (another platform)', platformPpid, ppid);
      return { ppid };
    }
    case 'pckcerts': {
      // sgx/pckcerts/{pceid}/{platform key}
      const pceid = parts[2];
      const list = JSON.parse(Buffer.from(item.body).toString('utf8')) as PckCertsJsonEntry[];
      let ppid: string | undefined = platformPpid;
      for (const [n, e] of list.entries()) {
        if (e.cert === 'Not available') continue;
        // Anything else is a certificate to selection (intel/pck.ts parsePckCerts), so it must be one.
        if (typeof e.cert !== 'string' || e.cert === '') throw fail('collateral.malformed', `pckcerts[${n}].cert must be a certificate or "Not available"`, { key: item.key });
        const ext = checkPckCertificate(item, decodeURIComponent(e.cert), pceid!, undefined);
        checkPckCertsLabels(item, e, ext, n);
        const p = ext.ppid;
        if (ppid !== undefined && p !== ppid) mismatch(item, 'PPID (certificates of several platforms)', ppid, p);
        ppid = p;
      }
      return ppid === undefined ? {} : { ppid };
    }
    case 'vcek': {
      // amd/vcek/{product}/{hwid}/{[fmc-]bl-tee-snp-ucode}
      const [, , product, hwid, spec] = parts;
      const ext = parseVekExtensions(parseCertificate(item.body));
      const got = ext.hwId ? Buffer.from(ext.hwId).toString('hex') : '(none)';
      if (got !== hwid!.toLowerCase()) mismatch(item, 'VCEK hwID (chip id)', hwid!.toLowerCase(), got);
      const spl = spec!.split('-').map(Number);
      const want = product === 'Turin' ? spl : [undefined, ...spl];
      const have = [ext.fmcSpl, ext.blSpl, ext.teeSpl, ext.snpSpl, ext.ucodeSpl];
      const names = ['fmcSPL', 'blSPL', 'teeSPL', 'snpSPL', 'ucodeSPL'];
      for (let i = product === 'Turin' ? 0 : 1; i < 5; i++) {
        if (have[i] !== want[i]) mismatch(item, `VCEK ${names[i]} (reported TCB)`, want[i], have[i]);
      }
      return {};
    }
    default:
      // AMD chains and CRLs: verifyCollateralItem pins them to the product's ASK/ASVK and ARK.
      return {};
  }
}

function rollback(next: Item, what: string, cached: unknown, answered: unknown): never {
  throw fail('upstream.collateral_rollback', `upstream answer for ${next.key} is older than the cached copy: ${what} ${String(answered)} < ${String(cached)}; the cached copy stays`, {
    key: next.key,
    url: next.source,
    field: what,
    cached: String(cached),
    answered: String(answered),
  });
}

const iso = (t: number | null) => (t === null ? 'none' : new Date(t).toISOString());

/**
 * Throws `upstream.collateral_rollback` when `next` would move the cache backwards from `cached` (the
 * item with the same key), or, for an answer to an `update=standard|early` request, from `newest`
 * (the highest evaluation number cached for that scope and selector).
 */
export function checkCollateralForward(next: Item, cached: Item | undefined, newest?: Pick<CollateralItem, 'evalNumber'>): void {
  if (newest?.evalNumber != null && next.evalNumber !== null && next.evalNumber < newest.evalNumber) {
    rollback(next, 'tcbEvaluationDataNumber', newest.evalNumber, next.evalNumber);
  }
  if (!cached) return;
  if (next.kind === 'pckcrl' || next.kind === 'rootcacrl' || next.kind === 'vcek_crl' || next.kind === 'vlek_crl') {
    const back = crlGoesBack(parseCrl(cached.body), parseCrl(next.body));
    if (back) rollback(next, back.field, back.prev, back.next);
    return;
  }
  if (next.kind === 'nvidia_ocsp') {
    // Fetched without a nonce (so it can be cached): an earlier answer still inside its window would
    // otherwise replace a newer one, e.g. "good" over "revoked". Compared by the response for the item's
    // CertID, the one verification reads (an answer may list responses for other certificates first).
    const a = signedDatesOf('nvidia_ocsp', cached.body, cached.scope).issueDate!;
    const b = signedDatesOf('nvidia_ocsp', next.body, next.scope).issueDate!;
    if (b < a) rollback(next, 'thisUpdate', iso(a), iso(b));
    return;
  }
  if (SIGNED_JSON_MEMBER[next.kind]) {
    if (cached.evalNumber !== null && next.evalNumber !== null && next.evalNumber < cached.evalNumber) rollback(next, 'tcbEvaluationDataNumber', cached.evalNumber, next.evalNumber);
    if (cached.issueDate !== null && (next.issueDate === null || next.issueDate < cached.issueDate)) rollback(next, 'issueDate', iso(cached.issueDate), iso(next.issueDate));
  }
}

/** The signed dates of one Intel JSON member (TCB info, QE identity). */
function jsonDates(member: Uint8Array): { evalNumber: number | null; issueDate: number | null } {
  const o = JSON.parse(Buffer.from(member).toString('utf8')) as { tcbEvaluationDataNumber?: unknown; issueDate?: unknown };
  const t = typeof o.issueDate === 'string' ? Date.parse(o.issueDate) : Number.NaN;
  return { evalNumber: typeof o.tcbEvaluationDataNumber === 'number' ? o.tcbEvaluationDataNumber : null, issueDate: Number.isNaN(t) ? null : t };
}

/**
 * Which item of a quote's collateral set would move backwards from `prev` (the set an attestation
 * service last used for the same FMSPC and CA), or undefined when none does. The same rules as
 * {@link checkCollateralForward}, for the in-memory copy an attestation service keeps.
 */
export function quoteCollateralRollback(next: QuoteCollateral, prev: QuoteCollateral): string | undefined {
  for (const [name, a, b] of [
    ['pckCrl', prev.pckCrl, next.pckCrl],
    ['rootCaCrl', prev.rootCaCrl, next.rootCaCrl],
  ] as const) {
    const x = parseCrl(a);
    const y = parseCrl(b);
    if (y.thisUpdate.getTime() < x.thisUpdate.getTime() || (x.crlNumber !== undefined && y.crlNumber !== undefined && y.crlNumber < x.crlNumber)) return name;
  }
  for (const [name, a, b] of [
    ['tcbInfo', prev.tcbInfo, next.tcbInfo],
    ['qeIdentity', prev.qeIdentity, next.qeIdentity],
  ] as const) {
    const x = jsonDates(a);
    const y = jsonDates(b);
    if (x.evalNumber !== null && y.evalNumber !== null && y.evalNumber < x.evalNumber) return name;
    if (x.issueDate !== null && (y.issueDate === null || y.issueDate < x.issueDate)) return name;
  }
  return undefined;
}

/**
 * Throws `upstream.collateral_mismatch` unless `vcekDer` is the VCEK of `chipId` (its hwID; the first 8
 * bytes on Turin) at the reported TCB `tcb`: for clients that fetch VCEKs from a KDS themselves.
 */
export function checkVcekTarget(vcekDer: Uint8Array, product: string, chipId: Uint8Array, tcb: { bootloader: number; tee: number; snp: number; microcode: number; fmc?: number | undefined }): void {
  const hwid = Buffer.from(product === 'Turin' ? chipId.subarray(0, 8) : chipId).toString('hex');
  const spec = `${product === 'Turin' ? `${tcb.fmc ?? 0}-` : ''}${tcb.bootloader}-${tcb.tee}-${tcb.snp}-${tcb.microcode}`;
  const scope = `amd/vcek/${product}/${hwid}/${spec}`;
  checkCollateralTarget({ key: scope, kind: 'vcek', scope, body: vcekDer, source: scope, meta: { contentType: 'application/pkix-cert' }, evalNumber: null, issueDate: null });
}
