/**
 * What an external monitor checks of a log over time (`conclave log monitor`, docs/audit.md): every head
 * it is served is signed by the log key, and grows consistently from the largest head it has seen,
 * proven by a consistency proof (RFC 9162 §2.1.4) the log must provide. Two roots for one size, a head
 * that cannot be proven to extend the last one, or a missing proof is an alert: the log (or one of its
 * replicas) has shown someone a history it cannot reconcile with the one it showed the monitor. So is
 * a head out of time: the sequencer never dates a head before the last one (src/log/sequencer.ts), so a
 * larger head dated earlier than a smaller one, or one dated beyond the monitor's clock (plus skew),
 * is a head signed out of the one sequence.
 */
import type { KeyObject } from 'node:crypto';
import { type ErrorCode, isConclaveError } from '../core/errors.js';
import { verifyConsistency } from './merkle.js';
import { checkTreeHead, parseHashList, parseTreeHeadWire, type SignedTreeHead, type TreeHeadWire, treeHeadToWire } from './tree-head.js';

/** How the monitor reaches one log endpoint (a replica's URL). */
export interface MonitoredLog {
  readonly name: string;
  /** GET /log/sth (the parsed JSON). */
  sth(): Promise<unknown>;
  /** GET /log/proof/consistency?from&to (the parsed JSON). */
  consistency(from: number, to: number): Promise<unknown>;
}

export type MonitorAlert = 'signature_invalid' | 'head_malformed' | 'fork' | 'inconsistent' | 'consistency_missing' | 'timestamp_backwards' | 'timestamp_future';

/** How far ahead of the monitor's clock a head may be dated (clocks differ a little). */
export const MAX_HEAD_CLOCK_SKEW_MS = 5 * 60_000;

export type MonitorEvent =
  | { readonly kind: 'head'; readonly log: string; readonly sth: TreeHeadWire; readonly grewFrom?: number }
  | { readonly kind: 'stale'; readonly log: string; readonly sth: TreeHeadWire; readonly latest: number }
  | { readonly kind: 'alert'; readonly log: string; readonly alert: MonitorAlert; readonly code: ErrorCode; readonly message: string; readonly sth?: TreeHeadWire; readonly previous?: TreeHeadWire };

async function proven(log: MonitoredLog, older: SignedTreeHead, newer: SignedTreeHead): Promise<MonitorEvent | undefined> {
  let path: Buffer[];
  try {
    path = parseHashList(((await log.consistency(older.treeSize, newer.treeSize)) as { consistencyPath?: unknown }).consistencyPath, 'consistencyPath');
  } catch (e) {
    const message = `no consistency proof from size ${older.treeSize} to ${newer.treeSize}: ${(e as Error).message}`;
    return { kind: 'alert', log: log.name, alert: 'consistency_missing', code: 'log.inconsistent', message, sth: treeHeadToWire(newer), previous: treeHeadToWire(older) };
  }
  if (!verifyConsistency(older.treeSize, newer.treeSize, older.rootHash, newer.rootHash, path)) {
    return { kind: 'alert', log: log.name, alert: 'inconsistent', code: 'log.inconsistent', message: `the head of size ${newer.treeSize} does not extend the head of size ${older.treeSize}: the log forked`, sth: treeHeadToWire(newer), previous: treeHeadToWire(older) };
  }
  return undefined;
}

/** A head whose time contradicts its size against the last head seen, or the monitor's clock `nowMs`. */
function outOfTime(log: MonitoredLog, sth: SignedTreeHead, prev: SignedTreeHead | undefined, nowMs: number): MonitorEvent | undefined {
  const at = (h: SignedTreeHead) => `${new Date(h.timestamp).toISOString()} (size ${h.treeSize})`;
  const alert = (alert: MonitorAlert, message: string): MonitorEvent => ({ kind: 'alert', log: log.name, alert, code: 'log.inconsistent', message, sth: treeHeadToWire(sth), ...(prev ? { previous: treeHeadToWire(prev) } : {}) });
  if (sth.timestamp > nowMs + MAX_HEAD_CLOCK_SKEW_MS) return alert('timestamp_future', `the head is dated ${at(sth)}, ahead of the monitor's clock ${new Date(nowMs).toISOString()}`);
  if (prev && ((sth.treeSize > prev.treeSize && sth.timestamp < prev.timestamp) || (sth.treeSize < prev.treeSize && sth.timestamp > prev.timestamp))) {
    return alert('timestamp_backwards', `the head dated ${at(sth)} and the head dated ${at(prev)} put the tree's growth back in time`);
  }
  return undefined;
}

/**
 * Fetches one head from `log` and checks it against `latest` (the largest verified head so far, if any)
 * and the monitor's clock `nowMs`. Returns the event and the new largest head. Fetch failures of the head
 * itself are thrown (the caller retries: a log that cannot be reached is not yet a misbehaving one).
 */
export async function checkLog(log: MonitoredLog, key: KeyObject, latest: TreeHeadWire | undefined, nowMs: number): Promise<{ event: MonitorEvent; latest: TreeHeadWire | undefined }> {
  const raw = await log.sth();
  let sth: SignedTreeHead;
  try {
    sth = parseTreeHeadWire(raw);
    checkTreeHead(sth, key);
  } catch (e) {
    if (!isConclaveError(e)) throw e;
    const alert: MonitorAlert = e.code === 'log.head_malformed' ? 'head_malformed' : 'signature_invalid';
    return { event: { kind: 'alert', log: log.name, alert, code: e.code, message: e.message }, latest };
  }
  const wire = treeHeadToWire(sth);
  const prev = latest ? parseTreeHeadWire(latest) : undefined;
  const late = outOfTime(log, sth, prev, nowMs);
  if (late) return { event: late, latest };
  if (!latest || !prev) return { event: { kind: 'head', log: log.name, sth: wire }, latest: wire };
  if (sth.treeSize === prev.treeSize) {
    if (!sth.rootHash.equals(prev.rootHash)) {
      return { event: { kind: 'alert', log: log.name, alert: 'fork', code: 'log.inconsistent', message: `two roots for tree size ${sth.treeSize}: ${prev.rootHash.toString('hex')} and ${sth.rootHash.toString('hex')}`, sth: wire, previous: latest }, latest };
    }
    // The sequencer signs a head only when the tree grows: one head per size. Another time for the same
    // size is a second signature (one dated back would date everything the tree holds earlier).
    if (sth.timestamp !== prev.timestamp) {
      const at = (h: SignedTreeHead) => new Date(h.timestamp).toISOString();
      return { event: { kind: 'alert', log: log.name, alert: 'fork', code: 'log.inconsistent', message: `two heads for tree size ${sth.treeSize}: dated ${at(prev)} and ${at(sth)}`, sth: wire, previous: latest }, latest };
    }
    return { event: { kind: 'head', log: log.name, sth: wire }, latest };
  }
  if (sth.treeSize < prev.treeSize) {
    // An older head (a replica that has not caught up): fine only if the newer one extends it.
    const bad = sth.treeSize === 0 ? undefined : await proven(log, sth, prev);
    return { event: bad ?? { kind: 'stale', log: log.name, sth: wire, latest: prev.treeSize }, latest };
  }
  const bad = prev.treeSize === 0 ? undefined : await proven(log, prev, sth);
  if (bad) return { event: bad, latest };
  return { event: { kind: 'head', log: log.name, sth: wire, grewFrom: prev.treeSize }, latest: wire };
}
