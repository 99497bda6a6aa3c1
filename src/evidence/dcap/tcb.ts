import type { EnclaveIdentity, IsvsvnLevel, TcbInfo, TcbLevel, TcbStatus, TdxModule, TdxModuleIdentity } from './tcb-info.js';

/**
 * TCB level matching and status composition, after Intel's QVL (`TcbLevelCheck.cpp`,
 * `TdxModuleCheck.cpp`, `TDRelaunchCheck.cpp`, `QuoteVerifier.cpp` converge*; evidence-and-collateral
 * §2.4 steps 9–13). Where QVL and dcap-qvl differ, QVL is followed (docs/dcap.md).
 */

export type QuoteStatus = TcbStatus | 'TDRelaunchAdvised' | 'TDRelaunchAdvisedConfigurationNeeded';

/** Every PCK SGX component ≥ the level's and PCESVN ≥ the level's (QVL isCpuSvnHigherOrEqual). */
function sgxMeets(level: TcbLevel, components: readonly number[], pcesvn: number): boolean {
  for (let i = 0; i < 16; i++) if (components[i]! < level.sgxtcbcomponents[i]!) return false;
  return pcesvn >= level.pcesvn;
}

/**
 * TEE_TCB_SVN ≥ the level's tdxtcbcomponents. When TEE_TCB_SVN[1] (module major version) is non-zero,
 * indices 0 and 1 describe the module, which the module identity judges instead (QVL isTdxTcbHigherOrEqual).
 */
function tdxMeets(level: TcbLevel, teeTcbSvn: Uint8Array): boolean {
  const tdx = level.tdxtcbcomponents;
  if (!tdx) return false;
  const from = teeTcbSvn[1]! > 0 ? 2 : 0;
  for (let i = from; i < 16; i++) if (teeTcbSvn[i]! < tdx[i]!) return false;
  return true;
}

/** The first level (Intel serves them in descending order) that the platform meets, SGX components only. */
export function matchSgxTcbLevel(info: TcbInfo, components: readonly number[], pcesvn: number): TcbLevel | undefined {
  return info.tcbLevels.find((l) => sgxMeets(l, components, pcesvn));
}

/** The first level meeting both the SGX components of the PCK and the TDX components of TEE_TCB_SVN. */
export function matchTdxTcbLevel(info: TcbInfo, components: readonly number[], pcesvn: number, teeTcbSvn: Uint8Array): TcbLevel | undefined {
  return info.tcbLevels.find((l) => sgxMeets(l, components, pcesvn) && tdxMeets(l, teeTcbSvn));
}

/** The QE level: highest isvsvn not above the QE's ISVSVN (QVL EnclaveReportVerifier). */
export function matchIsvsvnLevel(levels: readonly IsvsvnLevel[], isvsvn: number): IsvsvnLevel | undefined {
  return [...levels].sort((a, b) => b.isvsvn - a.isvsvn).find((l) => isvsvn >= l.isvsvn);
}

export function matchQeTcbLevel(identity: EnclaveIdentity, isvsvn: number): IsvsvnLevel | undefined {
  return matchIsvsvnLevel(identity.tcbLevels, isvsvn);
}

/**
 * The module expectations for a TD: `TDX_%02X` of TEE_TCB_SVN[1] when non-zero, else `tdxModule`. A
 * module of major version > 0 needs its identity (QVL 4.1.2.4.11): the platform levels skip
 * TEE_TCB_SVN[0..1], so without one nothing would judge the module's SVN.
 */
export function selectTdxModule(info: TcbInfo, teeTcbSvn: Uint8Array): { id: string; module: TdxModule; identity?: TdxModuleIdentity } | undefined {
  const major = teeTcbSvn[1]!;
  if (major > 0) {
    const id = `TDX_${major.toString(16).toUpperCase().padStart(2, '0')}`;
    const identity = info.tdxModuleIdentities?.find((m) => m.id.toUpperCase() === id);
    return identity ? { id, module: identity, identity } : undefined;
  }
  return info.tdxModule ? { id: 'TDX_00', module: info.tdxModule } : undefined;
}

/** A platform status worsened by an OutOfDate / Revoked component (QVL convergeTcbStatusWith*). */
export function converge(platform: QuoteStatus, component: TcbStatus): QuoteStatus {
  if (component === 'Revoked') return 'Revoked';
  if (component !== 'OutOfDate' && component !== 'OutOfDateConfigurationNeeded') return platform;
  switch (platform) {
    case 'UpToDate':
    case 'SWHardeningNeeded':
      return 'OutOfDate';
    case 'ConfigurationNeeded':
    case 'ConfigurationAndSWHardeningNeeded':
      return 'OutOfDateConfigurationNeeded';
    default:
      return platform;
  }
}

const RELAUNCH_SGX_OK: ReadonlySet<QuoteStatus> = new Set(['UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded']);
const CONFIGURATION_NEEDED: ReadonlySet<QuoteStatus> = new Set(['ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded', 'OutOfDateConfigurationNeeded', 'TDRelaunchAdvisedConfigurationNeeded']);

/**
 * TD report 1.5 only (QVL TDRelaunchCheck): the platform is current and only the running TDX module is
 * out of date, but the module already installed (TEE_TCB_SVN2) meets the latest level, so relaunching the
 * TD fixes it. Returns the relaunch status, or undefined when the rule does not apply.
 */
export function tdRelaunchStatus(args: {
  readonly info: TcbInfo;
  readonly sgxStatus: TcbStatus;
  readonly tdxStatus: QuoteStatus;
  readonly moduleStatus: TcbStatus | undefined;
  readonly qeStatus: TcbStatus;
  readonly teeTcbSvn2: Uint8Array;
}): QuoteStatus | undefined {
  const { info, sgxStatus, tdxStatus, moduleStatus, qeStatus, teeTcbSvn2 } = args;
  if (qeStatus === 'OutOfDate' || qeStatus === 'OutOfDateConfigurationNeeded' || qeStatus === 'Revoked') return undefined;
  if (!RELAUNCH_SGX_OK.has(sgxStatus)) return undefined;
  if (tdxStatus !== 'OutOfDate' && tdxStatus !== 'OutOfDateConfigurationNeeded') return undefined;
  if (moduleStatus !== 'OutOfDate') return undefined;
  const latest = info.tcbLevels[0]?.tdxtcbcomponents;
  if (!latest) return undefined;
  let moduleOk: boolean;
  if (teeTcbSvn2[1] === 0) moduleOk = teeTcbSvn2[0]! >= latest[0]!;
  else {
    const id = `TDX_${teeTcbSvn2[1]!.toString(16).toUpperCase().padStart(2, '0')}`;
    const identity = info.tdxModuleIdentities?.find((m) => m.id.toUpperCase() === id);
    const top = identity ? Math.max(...identity.tcbLevels.map((l) => l.isvsvn)) : Number.POSITIVE_INFINITY;
    moduleOk = teeTcbSvn2[0]! >= top;
  }
  if (!moduleOk || teeTcbSvn2[2]! < latest[2]!) return undefined;
  // Configuration still needed when either the SGX-only or the TDX status says so (QVL isConfigurationNeeded).
  const configurationNeeded = CONFIGURATION_NEEDED.has(sgxStatus) || CONFIGURATION_NEEDED.has(tdxStatus);
  return configurationNeeded ? 'TDRelaunchAdvisedConfigurationNeeded' : 'TDRelaunchAdvised';
}

/** Advisory IDs of several levels, first occurrence order, without duplicates. */
export function unionAdvisories(...lists: readonly (readonly string[] | undefined)[]): string[] {
  const out = new Set<string>();
  for (const l of lists) for (const a of l ?? []) out.add(a);
  return [...out];
}
