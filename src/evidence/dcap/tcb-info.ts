import { fail } from '../../core/errors.js';

/**
 * Intel TCB info (PCS API v3 → TCB info v2; API v4 → v3 with `id` SGX|TDX) and enclave identity v2,
 * parsed from the exact signed JSON bytes. Field names follow the PCS JSON (evidence-and-collateral §2.3).
 */

export const TCB_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
] as const;
export type TcbStatus = (typeof TCB_STATUSES)[number];

export interface TcbLevel {
  readonly sgxtcbcomponents: readonly number[];
  readonly pcesvn: number;
  /** TDX TCB info only. */
  readonly tdxtcbcomponents?: readonly number[];
  readonly tcbDate: string;
  readonly tcbStatus: TcbStatus;
  readonly advisoryIDs: readonly string[];
}

export interface IsvsvnLevel {
  readonly isvsvn: number;
  readonly tcbDate: string;
  readonly tcbStatus: TcbStatus;
  readonly advisoryIDs: readonly string[];
}

export interface TdxModule {
  readonly mrsigner: string;
  readonly attributes: string;
  readonly attributesMask: string;
}

export interface TdxModuleIdentity extends TdxModule {
  readonly id: string;
  readonly tcbLevels: readonly IsvsvnLevel[];
}

export interface TcbInfo {
  readonly id: 'SGX' | 'TDX';
  readonly version: number;
  readonly issueDate: Date;
  readonly nextUpdate: Date;
  /** Lowercase hex. */
  readonly fmspc: string;
  readonly pceId: string;
  readonly tcbType: number;
  readonly tcbEvaluationDataNumber: number;
  readonly tcbLevels: readonly TcbLevel[];
  readonly tdxModule?: TdxModule;
  readonly tdxModuleIdentities?: readonly TdxModuleIdentity[];
}

export interface EnclaveIdentity {
  readonly id: string;
  readonly version: number;
  readonly issueDate: Date;
  readonly nextUpdate: Date;
  readonly tcbEvaluationDataNumber: number;
  /** The 4 bytes of hex as a little-endian u32, as the report's MISCSELECT is read. */
  readonly miscselect: number;
  readonly miscselectMask: number;
  /** 16 bytes. */
  readonly attributes: Uint8Array;
  readonly attributesMask: Uint8Array;
  /** Lowercase hex, 32 bytes. */
  readonly mrsigner: string;
  readonly isvprodid: number;
  readonly tcbLevels: readonly IsvsvnLevel[];
}

type Json = Record<string, unknown>;

function bad(what: string, field: string): never {
  throw fail('collateral.malformed', `${what}: field "${field}" is missing or invalid`, { structure: what, field });
}

function obj(v: unknown, what: string, field: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(what, field);
  return v as Json;
}

function int(o: Json, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) bad(what, key);
  return v;
}

function str(o: Json, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== 'string') bad(what, key);
  return v;
}

function hex(o: Json, key: string, what: string, bytes: number): string {
  const v = str(o, key, what);
  if (v.length !== bytes * 2 || !/^[0-9a-fA-F]*$/.test(v)) bad(what, key);
  return v.toLowerCase();
}

/** 4 bytes of hex as the little-endian u32 a report holds them in (QVL EnclaveReportVerifier::vectorToUint32). */
function u32le(hexText: string): number {
  return Buffer.from(hexText, 'hex').readUInt32LE(0);
}

function date(o: Json, key: string, what: string): Date {
  const d = new Date(str(o, key, what));
  if (Number.isNaN(d.getTime())) bad(what, key);
  return d;
}

/** The statuses of an enclave identity or TDX module level (QVL: VALID_MODULE_TCB_STATUSES, EnclaveIdentityV2). */
const ISVSVN_STATUSES: readonly TcbStatus[] = ['UpToDate', 'OutOfDate', 'Revoked'];

function status(o: Json, what: string, allowed: readonly TcbStatus[] = TCB_STATUSES): TcbStatus {
  const s = o.tcbStatus;
  if (typeof s !== 'string' || !(allowed as readonly string[]).includes(s)) bad(what, 'tcbStatus');
  return s as TcbStatus;
}

function advisories(o: Json, what: string): string[] {
  const a = o.advisoryIDs;
  if (a === undefined) return [];
  if (!Array.isArray(a) || !a.every((x) => typeof x === 'string')) bad(what, 'advisoryIDs');
  return a as string[];
}

function components(v: unknown, what: string, field: string): number[] {
  if (!Array.isArray(v) || v.length !== 16) bad(what, field);
  return v.map((c) => int(obj(c, what, field), 'svn', `${what}.${field}`));
}

function parseJson(bytes: Uint8Array, what: string): Json {
  try {
    return obj(JSON.parse(Buffer.from(bytes).toString('utf8')), what, '(root)');
  } catch (e) {
    if (e instanceof SyntaxError) throw fail('collateral.malformed', `${what} is not valid JSON`, { structure: what });
    throw e;
  }
}

function isvsvnLevels(v: unknown, what: string): IsvsvnLevel[] {
  if (!Array.isArray(v) || v.length === 0) bad(what, 'tcbLevels');
  return v.map((l) => {
    const level = obj(l, what, 'tcbLevels');
    return {
      isvsvn: int(obj(level.tcb, what, 'tcb'), 'isvsvn', what),
      tcbDate: str(level, 'tcbDate', what),
      tcbStatus: status(level, what, ISVSVN_STATUSES),
      advisoryIDs: advisories(level, what),
    };
  });
}

/** Parses the signed `tcbInfo` value (v2 or v3). */
export function parseTcbInfo(signed: Uint8Array): TcbInfo {
  const what = 'tcbInfo';
  const t = parseJson(signed, what);
  const version = int(t, 'version', what);
  if (version !== 2 && version !== 3) throw fail('collateral.malformed', `tcbInfo version ${version} is not supported`, { field: 'version', version });
  const id = version === 2 ? 'SGX' : str(t, 'id', what);
  if (id !== 'SGX' && id !== 'TDX') bad(what, 'id');
  const levelsRaw = t.tcbLevels;
  if (!Array.isArray(levelsRaw) || levelsRaw.length === 0) bad(what, 'tcbLevels');
  const tcbLevels: TcbLevel[] = levelsRaw.map((l) => {
    const level = obj(l, what, 'tcbLevels');
    const tcb = obj(level.tcb, what, 'tcb');
    let sgx: number[];
    if (version === 2) {
      sgx = [];
      for (let i = 1; i <= 16; i++) sgx.push(int(tcb, `sgxtcbcomp${String(i).padStart(2, '0')}svn`, what));
    } else sgx = components(tcb.sgxtcbcomponents, what, 'sgxtcbcomponents');
    return {
      sgxtcbcomponents: sgx,
      pcesvn: int(tcb, 'pcesvn', what),
      ...(id === 'TDX' ? { tdxtcbcomponents: components(tcb.tdxtcbcomponents, what, 'tdxtcbcomponents') } : {}),
      tcbDate: str(level, 'tcbDate', what),
      tcbStatus: status(level, what),
      advisoryIDs: advisories(level, what),
    };
  });
  const module = (m: unknown, field: string): TdxModule => {
    const o = obj(m, what, field);
    return { mrsigner: hex(o, 'mrsigner', what, 48), attributes: hex(o, 'attributes', what, 8), attributesMask: hex(o, 'attributesMask', what, 8) };
  };
  let tdxModule: TdxModule | undefined;
  let tdxModuleIdentities: TdxModuleIdentity[] | undefined;
  if (id === 'TDX') {
    if (t.tdxModule !== undefined) tdxModule = module(t.tdxModule, 'tdxModule');
    if (t.tdxModuleIdentities !== undefined) {
      if (!Array.isArray(t.tdxModuleIdentities)) bad(what, 'tdxModuleIdentities');
      tdxModuleIdentities = t.tdxModuleIdentities.map((m) => {
        const o = obj(m, what, 'tdxModuleIdentities');
        return { id: str(o, 'id', what), ...module(o, 'tdxModuleIdentities'), tcbLevels: isvsvnLevels(o.tcbLevels, `${what}.tdxModuleIdentities`) };
      });
    }
  }
  return {
    id,
    version,
    issueDate: date(t, 'issueDate', what),
    nextUpdate: date(t, 'nextUpdate', what),
    fmspc: hex(t, 'fmspc', what, 6),
    pceId: hex(t, 'pceId', what, 2),
    // The only component comparison Intel defines (component-wise ≥, as tcb.ts matches).
    tcbType: int(t, 'tcbType', what) === 0 ? 0 : bad(what, 'tcbType'),
    tcbEvaluationDataNumber: int(t, 'tcbEvaluationDataNumber', what),
    tcbLevels,
    ...(tdxModule ? { tdxModule } : {}),
    ...(tdxModuleIdentities ? { tdxModuleIdentities } : {}),
  };
}

/** Parses the signed `enclaveIdentity` value (version 2; QE, TD_QE, QVE, QAE). */
export function parseEnclaveIdentity(signed: Uint8Array): EnclaveIdentity {
  const what = 'enclaveIdentity';
  const e = parseJson(signed, what);
  const version = int(e, 'version', what);
  if (version !== 2 && version !== 3) throw fail('collateral.malformed', `enclaveIdentity version ${version} is not supported`, { field: 'version', version });
  return {
    id: str(e, 'id', what),
    version,
    issueDate: date(e, 'issueDate', what),
    nextUpdate: date(e, 'nextUpdate', what),
    tcbEvaluationDataNumber: int(e, 'tcbEvaluationDataNumber', what),
    miscselect: u32le(hex(e, 'miscselect', what, 4)),
    miscselectMask: u32le(hex(e, 'miscselectMask', what, 4)),
    attributes: new Uint8Array(Buffer.from(hex(e, 'attributes', what, 16), 'hex')),
    attributesMask: new Uint8Array(Buffer.from(hex(e, 'attributesMask', what, 16), 'hex')),
    mrsigner: hex(e, 'mrsigner', what, 32),
    isvprodid: int(e, 'isvprodid', what),
    tcbLevels: isvsvnLevels(e.tcbLevels, what),
  };
}
