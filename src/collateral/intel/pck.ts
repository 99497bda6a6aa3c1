/**
 * PCK certificates as a caching service keeps them: per platform, never per raw TCB alone.
 *
 * A platform is its QE ID and PCE ID (PCCS `platforms` table), or, for PCS-style callers that know no QE
 * ID, its encrypted PPID. QCNL always sends `encrypted_ppid`, as 768 zero characters when the quoting
 * enclave has none (DCAP qcnl/certification_service.cpp `build_pckcert_options`): such a value names no
 * platform and is never sent to an upstream (PCS cannot decrypt it; PCCS refuses it too,
 * commonCacheLogic `getPckServerResponse`).
 */
import { fail } from '../../core/errors.js';
import { parseCertificate, pemToDer } from '../../core/x509.js';
import { parsePckSgxExtension } from '../../evidence/dcap/pck-extension.js';

/** Encrypted PPID: RSA-3072 ciphertext, 384 bytes (PCS API: 768 hex characters). */
export const ENC_PPID_HEX = 768;

/** True for a PPID that carries information: present and not all zeros. */
export function isRealPpid(encPpid: string | undefined): encPpid is string {
  return encPpid !== undefined && encPpid.length > 0 && !/^0+$/.test(encPpid);
}

/**
 * PCESVN arrives little-endian from Intel QCNL, PCKIDRetrievalTool and dcap-qvl ("0D00" = 13) but
 * big-endian from Azure-DCAP-Client ("000D"). PCE SVNs are small, so a value that only fits a byte when
 * read big-endian was sent big-endian. The canonical form is Intel's little-endian, upper-case hex.
 */
export function canonicalPcesvn(v: string, name = 'pcesvn'): string {
  if (!/^[0-9a-fA-F]{4}$/.test(v)) throw fail('request.invalid', `${name} must be 4 hex characters`, { parameter: name });
  const b = Buffer.from(v, 'hex');
  const le = b.readUInt16LE(0);
  const be = b.readUInt16BE(0);
  const out = Buffer.alloc(2);
  out.writeUInt16LE(le > 0xff && be <= 0xff ? be : le);
  return out.toString('hex').toUpperCase();
}

/** Who a PCK request is about, upper-case hex. */
export interface PlatformRef {
  readonly pceId: string;
  readonly qeId?: string | undefined;
  /** Only a real PPID (see {@link isRealPpid}). */
  readonly encPpid?: string | undefined;
}

/**
 * The cache identity of a platform. A QE ID alone is the key quote-time lookups use; a request that
 * also carries a real PPID is kept apart under QE ID + PPID, so an unauthenticated caller that pairs a
 * victim's QE ID with its own PPID cannot replace the victim's certificate. The QE ID → PPID binding
 * that fills the QE-ID-only key comes from an authenticated registration (`POST /platforms`) or an
 * administrator's upload (`PUT /platformcollateral`), as in PCCS.
 */
export function platformKey(p: PlatformRef): string {
  if (p.qeId && p.encPpid) return `qe:${p.qeId}/ppid:${p.encPpid}`;
  if (p.qeId) return `qe:${p.qeId}`;
  if (p.encPpid) return `ppid:${p.encPpid}`;
  throw fail('request.invalid', 'a PCK request needs qeid or a non-zero encrypted_ppid', { parameter: 'qeid' });
}

/** The scope of one PCK certificate: a platform at a raw TCB (CPUSVN, PCESVN little-endian hex). */
export function pckCertScope(p: PlatformRef, cpusvn: string, pcesvn: string): string {
  return `sgx/pckcert/${p.pceId}/${platformKey(p)}/${cpusvn}/${pcesvn}`;
}

/** The scope of a platform's full certificate set (PCS `pckcerts`). */
export function pckCertsScope(p: PlatformRef): string {
  return `sgx/pckcerts/${p.pceId}/${platformKey(p)}`;
}

/** One entry of a PCS `pckcerts` answer: the TCB level a certificate was issued for. */
export interface PckCertEntry {
  /** SGX TCB components 01..16. */
  readonly components: readonly number[];
  readonly pcesvn: number;
  /** `tcbm`: CPUSVN ‖ PCESVN (little-endian), upper-case hex, 36 characters. */
  readonly tcbm: string;
  /** The leaf, PEM (URL-decoded); undefined for PCS's "Not available". */
  readonly cert: string | undefined;
}

const COMPONENT_KEYS = Array.from({ length: 16 }, (_, i) => `sgxtcbcomp${String(i + 1).padStart(2, '0')}svn`);

function svn(v: unknown, max: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw fail('collateral.malformed', `${what} must be an integer from 0 to ${max}`, { field: what });
  return v;
}

/** Reads a PCS `pckcerts` array (`[{tcb: {sgxtcbcompNNsvn…, pcesvn}, tcbm, cert}]`). */
export function parsePckCerts(json: unknown): PckCertEntry[] {
  if (!Array.isArray(json)) throw fail('collateral.malformed', 'pckcerts must be a JSON array');
  if (json.length > 1024) throw fail('collateral.malformed', 'pckcerts holds more than 1024 entries');
  return json.map((e, n) => {
    const o = e as { tcb?: Record<string, unknown>; tcbm?: unknown; cert?: unknown };
    if (typeof o !== 'object' || o === null || typeof o.tcb !== 'object' || o.tcb === null) throw fail('collateral.malformed', `pckcerts[${n}] lacks tcb`);
    if (typeof o.tcbm !== 'string' || !/^[0-9a-fA-F]{36}$/.test(o.tcbm)) throw fail('collateral.malformed', `pckcerts[${n}].tcbm must be 36 hex characters`);
    if (typeof o.cert !== 'string') throw fail('collateral.malformed', `pckcerts[${n}].cert must be a string`);
    const tcb = o.tcb;
    let cert: string | undefined;
    if (o.cert !== 'Not available') {
      try {
        cert = decodeURIComponent(o.cert);
      } catch {
        throw fail('collateral.malformed', `pckcerts[${n}].cert is not URL-encoded PEM`);
      }
    }
    return { components: COMPONENT_KEYS.map((k) => svn(tcb[k], 255, `pckcerts[${n}].tcb.${k}`)), pcesvn: svn(tcb.pcesvn, 0xffff, `pckcerts[${n}].tcb.pcesvn`), tcbm: o.tcbm.toUpperCase(), cert };
  });
}

/** The TCB a PCK certificate was issued for, from its SGX extension. */
export function tcbOfPckCert(pem: string): { components: number[]; pcesvn: number; fmspc: string; pceId: string; ppid: string } {
  const der = pemToDer(pem)[0];
  if (!der) throw fail('collateral.malformed', 'PCK certificate is not PEM');
  const ext = parsePckSgxExtension(parseCertificate(der));
  return { components: [...ext.sgxTcbComponents], pcesvn: ext.pcesvn, fmspc: ext.fmspc.toUpperCase(), pceId: ext.pceId.toUpperCase(), ppid: ext.ppid };
}

type Order = 'lower' | 'greaterOrEqual' | 'incomparable';

/** Component-wise order of two TCBs (SGX components and PCESVN), as TCB level matching uses it. */
function compareTcb(a: readonly number[], aPce: number, b: readonly number[], bPce: number): Order {
  let lower = aPce < bPce;
  let higher = aPce > bPce;
  for (let i = 0; i < 16; i++) {
    if ((a[i] ?? 0) < (b[i] ?? 0)) lower = true;
    if ((a[i] ?? 0) > (b[i] ?? 0)) higher = true;
  }
  if (lower && higher) return 'incomparable';
  return lower ? 'lower' : 'greaterOrEqual';
}

/** A TCB level of the platform's TCB info (its order, highest first, breaks ties between certificates). */
export interface SelectionLevel {
  readonly components: readonly number[];
  readonly pcesvn: number;
}

/**
 * Picks the certificate a platform at a raw TCB should use, as Intel's PCK Cert Selection library does
 * (tools/PCKCertSelection, `PCKSorter`): each certificate is filed under the first (highest) TCB level
 * of the TCB info it reaches, certificates within a level highest first; the first one the raw TCB
 * reaches wins. Without TCB levels every certificate files under one level. For TCB type 0 the raw
 * CPUSVN bytes are the components. Returns the index into `entries`, or undefined when none fits.
 */
export function selectPckCert(raw: { cpusvn: string; pcesvn: number }, entries: readonly PckCertEntry[], levels: readonly SelectionLevel[] = []): number | undefined {
  const rawComponents = [...Buffer.from(raw.cpusvn, 'hex')];
  if (rawComponents.length !== 16) throw fail('request.invalid', 'cpusvn must be 16 bytes', { parameter: 'cpusvn' });
  const buckets: number[][] = Array.from({ length: levels.length + 1 }, () => []);
  entries.forEach((e, i) => {
    if (e.cert === undefined) return;
    let b = levels.findIndex((l) => compareTcb(e.components, e.pcesvn, l.components, l.pcesvn) === 'greaterOrEqual');
    if (b < 0) b = levels.length;
    const bucket = buckets[b]!;
    const at = bucket.findIndex((j) => compareTcb(e.components, e.pcesvn, entries[j]!.components, entries[j]!.pcesvn) === 'greaterOrEqual');
    if (at < 0) bucket.push(i);
    else bucket.splice(at, 0, i);
  });
  for (const bucket of buckets) {
    for (const i of bucket) {
      if (compareTcb(rawComponents, raw.pcesvn, entries[i]!.components, entries[i]!.pcesvn) === 'greaterOrEqual') return i;
    }
  }
  return undefined;
}
