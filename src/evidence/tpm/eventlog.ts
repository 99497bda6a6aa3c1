/**
 * The TCG PC Client crypto-agile event log (TCG PC Client Platform Firmware Profile 1.05 §10): parse,
 * replay into PCR values, compare with a verified quote, and read the few events whose meaning the
 * attestation claims need (UEFI SecureBoot, Windows boot configuration "SIPA" events). Event logs are
 * little-endian (UEFI); an event's data is trusted only when its PCR replays to the quoted value and its
 * digest is the hash of that data.
 */
import { createHash } from 'node:crypto';
import { ByteReader, equalBytes, toHex } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import type { TpmQuote } from './quote.js';
import { hashAlg, TPM_ALG } from './structures.js';

/** Event types used here (PFP §10.4.1). */
export const EV = {
  NO_ACTION: 0x00000003,
  SEPARATOR: 0x00000004,
  EVENT_TAG: 0x00000006,
  EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EFI_VARIABLE_BOOT: 0x80000002,
  EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EFI_ACTION: 0x80000007,
  EFI_VARIABLE_AUTHORITY: 0x800000e0,
} as const;

/** Bounds on the work one log may cause (an Azure CVM boot log has a few hundred events). */
const MAX_EVENTS = 10_000;
const MAX_EVENT_DATA = 1 << 20;

export interface TcgEvent {
  readonly pcr: number;
  readonly type: number;
  /** Digest per bank (TPM_ALG_ID → digest). */
  readonly digests: ReadonlyMap<number, Uint8Array>;
  readonly data: Uint8Array;
  /** Offset of the event in the log, for error details. */
  readonly offset: number;
}

export interface TcgEventLog {
  /** The banks the Spec ID event declares, with their digest sizes. */
  readonly algorithms: ReadonlyMap<number, number>;
  readonly events: readonly TcgEvent[];
  /** Locality of the StartupLocality EV_NO_ACTION event (PCR 0 starts at …00‖locality). */
  readonly startupLocality: number;
}

const SPEC_ID_SIGNATURE = Buffer.from('Spec ID Event03\0', 'latin1');
const STARTUP_LOCALITY_SIGNATURE = Buffer.from('StartupLocality\0', 'latin1');

/** Parses a crypto-agile (TCG 2.0) event log; a SHA-1-only (TCG 1.2 format) log is `tpm.unsupported`. */
export function parseTcgEventLog(bytes: Uint8Array): TcgEventLog {
  const r = new ByteReader(bytes, 'TCG event log', 'tpm.truncated');
  // The first event is in the SHA-1 TCG_PCClientPCREvent format and carries the Spec ID event (§10.4.5.1).
  const firstPcr = r.u32('event[0].pcrIndex');
  const firstType = r.u32('event[0].eventType');
  r.skip('event[0].digest', 20);
  const firstSize = r.u32('event[0].eventSize');
  if (firstSize > MAX_EVENT_DATA) throw fail('tpm.malformed', 'the first event is implausibly large', { eventSize: firstSize });
  const spec = new ByteReader(r.view_('event[0].event', firstSize), 'TCG_EfiSpecIDEvent', 'tpm.truncated');
  const signature = spec.view_('signature', 16);
  if (firstPcr !== 0 || firstType !== EV.NO_ACTION || !equalBytes(signature, SPEC_ID_SIGNATURE)) {
    throw fail('tpm.unsupported', 'the event log is not in the crypto-agile format (no "Spec ID Event03" first event)');
  }
  spec.skip('platformClass', 4);
  spec.skip('specVersion', 3);
  spec.u8('uintnSize');
  const count = spec.u32('numberOfAlgorithms');
  if (count === 0 || count > 8) throw fail('tpm.malformed', `the Spec ID event declares ${count} algorithms`, { count });
  const algorithms = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    const alg = spec.u16(`digestSizes[${i}].algorithmId`);
    const size = spec.u16(`digestSizes[${i}].digestSize`);
    if (size === 0 || size > 64) throw fail('tpm.malformed', `digest size ${size} is implausible`, { alg, size });
    algorithms.set(alg, size);
  }

  const events: TcgEvent[] = [];
  let startupLocality = 0;
  while (r.remaining > 0) {
    if (events.length >= MAX_EVENTS) throw fail('tpm.malformed', `the event log has more than ${MAX_EVENTS} events`);
    const offset = r.offset;
    // Firmware may pad the log buffer with 0xFF or zeros after the last event.
    if (r.remaining < 8 || isPadding(bytes.subarray(offset))) break;
    const pcr = r.u32('pcrIndex');
    const type = r.u32('eventType');
    const n = r.u32('digests.count');
    if (n !== algorithms.size) throw fail('tpm.malformed', `an event at offset ${offset} has ${n} digests, the log declares ${algorithms.size} banks`, { offset });
    const digests = new Map<number, Uint8Array>();
    for (let i = 0; i < n; i++) {
      const alg = r.u16('digests.hashAlg');
      const size = algorithms.get(alg);
      if (size === undefined || digests.has(alg)) throw fail('tpm.malformed', `an event at offset ${offset} has a digest of an undeclared or repeated bank 0x${alg.toString(16)}`, { offset, alg });
      digests.set(alg, r.bytesCopy('digests.digest', size));
    }
    const size = r.u32('eventSize');
    if (size > MAX_EVENT_DATA) throw fail('tpm.malformed', `an event at offset ${offset} is implausibly large`, { offset, eventSize: size });
    const data = r.bytesCopy('event', size);
    if (pcr > 31) throw fail('tpm.malformed', `an event at offset ${offset} names PCR ${pcr}`, { offset, pcr });
    if (type === EV.NO_ACTION && data.byteLength >= 17 && equalBytes(data.subarray(0, 16), STARTUP_LOCALITY_SIGNATURE)) startupLocality = data[16]!;
    events.push({ pcr, type, digests, data, offset });
  }
  return { algorithms, events, startupLocality };
}

function isPadding(rest: Uint8Array): boolean {
  const b = rest[0];
  if (b !== 0xff && b !== 0x00) return false;
  for (let i = 0; i < rest.byteLength; i++) if (rest[i] !== b) return false;
  return true;
}

/** Replays the log into PCR values of one bank (EV_NO_ACTION events are not extended, PFP §10.4.5). */
export function replayTcgEventLog(log: TcgEventLog, bank: number): Map<number, Uint8Array> {
  const h = hashAlg(bank, 'event log bank');
  if (!log.algorithms.has(bank)) throw fail('tpm.eventlog_mismatch', `the event log has no ${h.name} bank`, { bank });
  const pcrs = new Map<number, Uint8Array>();
  for (const e of log.events) {
    if (e.type === EV.NO_ACTION) continue;
    let current = pcrs.get(e.pcr);
    if (!current) {
      current = new Uint8Array(h.size);
      if (e.pcr === 0) current[h.size - 1] = log.startupLocality;
    }
    pcrs.set(e.pcr, new Uint8Array(createHash(h.name).update(current).update(e.digests.get(bank)!).digest()));
  }
  return pcrs;
}

/**
 * PCRs Windows measures its boot configuration (SIPA events: debuggers, signing, code integrity) into: 11
 * (BitLocker access control), 12 (data and volatile events), 13 (boot modules), 14 (boot authorities).
 */
export const BOOT_CONFIGURATION_PCRS: readonly number[] = [11, 12, 13, 14];

/** PCRs whose replay must equal the quote: the firmware and boot-loader PCRs (PFP §3.3.4) that MAA attests. */
export const BOOT_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7];

export interface EventLogReplay {
  readonly log: TcgEventLog;
  readonly bank: number;
  /** Quoted PCRs whose value the log reproduces: their events can be trusted. */
  readonly replayedPcrs: readonly number[];
  /**
   * Quoted PCRs the log does not reproduce: some of their events are not in the log. A PCR quoted only in
   * another bank than `bank` counts here too (the log is replayed in `bank` alone, so nothing shows its
   * events are all there).
   */
  readonly unreplayedPcrs: readonly number[];
}

/**
 * Replays the log and compares with the verified quote: every quoted boot PCR (0–7) must equal its
 * replay (a PCR the log never extends replays to its reset value); other quoted PCRs count as replayed
 * only when they match (the OS may extend them after the firmware log ends).
 */
export function checkEventLog(log: TcgEventLog, quote: TpmQuote): EventLogReplay {
  const banks = new Set(quote.pcrs.map((p) => p.hashAlg));
  const bank = banks.has(TPM_ALG.SHA256) ? TPM_ALG.SHA256 : [...banks][0]!;
  const replay = replayTcgEventLog(log, bank);
  const size = hashAlg(bank).size;
  const replayed: number[] = [];
  const unreplayed: number[] = [];
  const otherBanks: number[] = [];
  for (const q of quote.pcrs) {
    if (q.hashAlg !== bank) {
      otherBanks.push(q.index);
      continue;
    }
    let expected = replay.get(q.index);
    if (!expected) {
      expected = new Uint8Array(size);
      if (q.index === 0) expected[size - 1] = log.startupLocality;
    }
    if (equalBytes(expected, q.value)) replayed.push(q.index);
    else if (BOOT_PCRS.includes(q.index)) {
      throw fail('tpm.eventlog_mismatch', `replaying the event log gives another PCR ${q.index} than the quote`, { pcr: q.index, quoted: toHex(q.value), replayed: toHex(expected) });
    } else unreplayed.push(q.index);
  }
  for (const i of otherBanks) if (!replayed.includes(i) && !unreplayed.includes(i)) unreplayed.push(i);
  return { log, bank, replayedPcrs: replayed, unreplayedPcrs: unreplayed };
}

/** EFI_GLOBAL_VARIABLE {8BE4DF61-93CA-11D2-AA0D-00E098032B8C} as stored (UEFI GUID byte order). */
const EFI_GLOBAL_VARIABLE = Buffer.from('61dfe48bca93d211aa0d00e098032b8c', 'hex');

/** UEFI_VARIABLE_DATA (PFP §10.2.6): GUID, name length, data length, UTF-16LE name, data. */
function parseUefiVariable(data: Uint8Array): { guid: Uint8Array; name: string; value: Uint8Array } {
  const r = new ByteReader(data, 'UEFI_VARIABLE_DATA', 'tpm.eventlog_mismatch');
  const guid = r.view_('VariableName', 16);
  const nameLen = Number(r.u64('UnicodeNameLength'));
  const dataLen = Number(r.u64('VariableDataLength'));
  if (nameLen > 1024 || dataLen > MAX_EVENT_DATA) throw fail('tpm.eventlog_mismatch', 'a UEFI variable event has implausible lengths');
  const name = Buffer.from(r.view_('UnicodeName', nameLen * 2)).toString('utf16le');
  return { guid, name, value: r.view_('VariableData', dataLen) };
}

/** Windows boot configuration events (SIPA, wbcl.h) carried in EV_EVENT_TAG events. */
const SIPA = {
  ELAM_AGGREGATION: 0x40010002,
  BOOTDEBUGGING: 0x00040001,
  OSKERNELDEBUG: 0x00050001,
  CODEINTEGRITY: 0x00050002,
  TESTSIGNING: 0x00050003,
  HYPERVISOR_DEBUG: 0x0005000d,
  FLIGHTSIGNING: 0x00050021,
  VBS_HVCI_POLICY: 0x000a0007,
} as const;

function walkSipa(data: Uint8Array, visit: (type: number, value: Uint8Array) => void, depth = 0): void {
  if (depth > 8) throw fail('tpm.eventlog_mismatch', 'Windows boot configuration events are nested too deeply');
  const r = new ByteReader(data, 'SIPA event', 'tpm.eventlog_mismatch');
  while (r.remaining >= 8) {
    const type = r.u32('SipaEventType');
    const value = r.view_('SipaEventData', r.u32('SipaEventDataSize'));
    visit(type, value);
    // Container events (SIPAEVENTTYPE_CONTAINER) hold further SIPA events.
    if ((type & 0x000f0000) === 0x00010000) walkSipa(value, visit, depth + 1);
  }
}

function leUint(b: Uint8Array): number {
  let v = 0;
  for (let i = Math.min(b.byteLength, 6) - 1; i >= 0; i--) v = v * 256 + b[i]!;
  return v;
}

/** What the boot log says about the boot configuration, from events of replayed PCRs only. */
export interface BootConfiguration {
  /** UEFI SecureBoot variable (PCR 7); undefined when PCR 7 was not replayed or the log has no such event. */
  readonly secureBoot: boolean | undefined;
  /** Whether Windows boot configuration (SIPA) events were seen. */
  readonly windowsEvents: boolean;
  /**
   * False when the log holds boot configuration events (EV_EVENT_TAG) in PCRs that were not quoted or do
   * not replay, or when a quoted boot configuration PCR (11–14) does not replay at all (events of it are
   * missing from the log, and a missing one may be the event that enables a debugger): the flags below then
   * cannot vouch that nothing is enabled.
   */
  readonly complete: boolean;
  readonly bootDebugging: boolean;
  readonly kernelDebugging: boolean;
  readonly hypervisorDebugging: boolean;
  readonly testSigning: boolean;
  readonly flightSigning: boolean;
  /** Code integrity enforcement was measured as on. */
  readonly codeIntegrity: boolean;
  readonly elam: boolean;
  readonly hvciPolicy: number;
}

function checkDigest(e: TcgEvent): void {
  for (const [alg, digest] of e.digests) {
    if (!equalBytes(digest, new Uint8Array(createHash(hashAlg(alg).name).update(e.data).digest()))) {
      throw fail('tpm.eventlog_mismatch', `the event at offset ${e.offset} (PCR ${e.pcr}) does not hash to its digest, so its content cannot be trusted`, { offset: e.offset, pcr: e.pcr });
    }
  }
}

/** Reads the boot configuration from the events of replayed PCRs, checking each interpreted event's digest. */
export function readBootConfiguration(replay: EventLogReplay): BootConfiguration {
  const trusted = new Set(replay.replayedPcrs);
  let secureBoot: boolean | undefined;
  const flags = { windowsEvents: false, bootDebugging: false, kernelDebugging: false, hypervisorDebugging: false, testSigning: false, flightSigning: false, codeIntegrity: false, elam: false, hvciPolicy: 0 };
  // A quoted PCR Windows measures its boot configuration into that the log does not reproduce had events the
  // log leaves out: whatever they said (a debugger on) is unknown. Others (PCR 10 of IMA, 16–23) are not read here.
  let complete = !replay.unreplayedPcrs.some((p) => BOOT_CONFIGURATION_PCRS.includes(p));
  for (const e of replay.log.events) {
    if (!trusted.has(e.pcr)) {
      if (e.type === EV.EVENT_TAG || e.type === EV.EFI_VARIABLE_DRIVER_CONFIG) complete = false;
      continue;
    }
    if (e.type === EV.EFI_VARIABLE_DRIVER_CONFIG && e.pcr === 7) {
      const v = parseUefiVariable(e.data);
      if (v.name === 'SecureBoot' && equalBytes(v.guid, EFI_GLOBAL_VARIABLE)) {
        checkDigest(e);
        secureBoot = v.value.byteLength === 1 && v.value[0] === 1;
      }
    } else if (e.type === EV.EVENT_TAG) {
      checkDigest(e);
      walkSipa(e.data, (type, value) => {
        flags.windowsEvents = true;
        const on = value.byteLength > 0 && value[0] !== 0;
        if (type === SIPA.BOOTDEBUGGING) flags.bootDebugging ||= on;
        else if (type === SIPA.OSKERNELDEBUG) flags.kernelDebugging ||= on;
        else if (type === SIPA.HYPERVISOR_DEBUG) flags.hypervisorDebugging ||= on;
        else if (type === SIPA.TESTSIGNING) flags.testSigning ||= on;
        else if (type === SIPA.FLIGHTSIGNING) flags.flightSigning ||= on;
        else if (type === SIPA.CODEINTEGRITY) flags.codeIntegrity = on;
        else if (type === SIPA.ELAM_AGGREGATION) flags.elam = true;
        else if (type === SIPA.VBS_HVCI_POLICY) flags.hvciPolicy = leUint(value);
      });
    }
  }
  return { secureBoot, complete, ...flags };
}
