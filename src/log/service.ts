/**
 * The log's read API (GET /log/…): the latest signed head, inclusion and consistency proofs (RFC 9162
 * §2.1.3, §2.1.4) served from the stored perfect subtrees, and pages of entries. Every size a proof
 * names must be at most the latest signed head's, so a client can always check it against a head.
 */
import { fail } from '../core/errors.js';
import { consistencyRanges, hashRanges, inclusionRanges } from './merkle.js';
import type { LogReader } from './ports.js';
import { type SignedTreeHead, type TreeHeadWire, treeHeadToWire } from './tree-head.js';

/** The most entries one GET /log/entries returns (a larger range is cut, as RFC 6962 get-entries does). */
export const MAX_ENTRIES_PAGE = 1000;

export interface InclusionProofWire {
  readonly leafIndex: number;
  readonly treeSize: number;
  readonly leafHash: string;
  readonly inclusionPath: string[];
  /** The head the proof is for, when the caller did not name a size (the latest). */
  readonly sth?: TreeHeadWire;
}

export interface ConsistencyProofWire {
  readonly from: number;
  readonly to: number;
  readonly consistencyPath: string[];
}

export interface EntryWire {
  readonly index: number;
  readonly leafHash: string;
  /** The exact text whose RFC 9162 leaf hash is `leafHash` (canonical JSON of an audit record). */
  readonly entry: string;
}

const HEX_HASH = /^[0-9a-f]{64}$/;

/** A non-negative integer query parameter; `log.range_invalid` otherwise. */
export function parseIndex(raw: string | null | undefined, field: string): number | undefined {
  if (raw === null || raw === undefined) return undefined;
  if (!/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(Number(raw))) throw fail('log.range_invalid', `${field} must be a non-negative integer`, { field, value: raw.slice(0, 40) });
  return Number(raw);
}

export function createLogService(reader: LogReader) {
  async function latest(): Promise<SignedTreeHead> {
    const head = await reader.latestHead();
    if (!head) throw fail('log.unavailable', 'the log has no signed tree head yet');
    return head;
  }

  function bounded(size: number, head: SignedTreeHead, field: string): void {
    if (size > head.treeSize) throw fail('log.range_invalid', `${field} ${size} is beyond the latest signed tree head (size ${head.treeSize})`, { field, value: size, treeSize: head.treeSize });
  }

  const hex = (b: Buffer) => b.toString('hex');

  return {
    async sth(): Promise<TreeHeadWire> {
      return treeHeadToWire(await latest());
    },

    /** The inclusion proof of the entry with `leafHash` (hex) in the tree of `size` (default: the latest head, returned with it). */
    async inclusion(leafHashHex: string | undefined, size: number | undefined): Promise<InclusionProofWire> {
      if (leafHashHex === undefined || !HEX_HASH.test(leafHashHex)) throw fail('log.range_invalid', 'leaf must be a leaf hash (64 lowercase hex digits)', { field: 'leaf' });
      const head = await latest();
      const treeSize = size ?? head.treeSize;
      bounded(treeSize, head, 'size');
      const leafHash = Buffer.from(leafHashHex, 'hex');
      const found = await reader.findLeaf(leafHash);
      if (!found || found.index === null || found.index >= treeSize) {
        const sequenced = found !== undefined && found.index !== null;
        throw fail('log.leaf_not_found', found === undefined ? 'no log entry has this leaf hash' : sequenced ? `the entry is at index ${found.index}, not in a tree of size ${treeSize}` : 'the entry is stored but not yet sequenced; retry within the batch interval', {
          leaf: leafHashHex,
          sequenced,
          treeSize,
        });
      }
      const path = await hashRanges(inclusionRanges(found.index, treeSize), (n) => reader.readNodes(n));
      return { leafIndex: found.index, treeSize, leafHash: leafHashHex, inclusionPath: path.map(hex), ...(size === undefined ? { sth: treeHeadToWire(head) } : {}) };
    },

    async consistency(from: number | undefined, to: number | undefined): Promise<ConsistencyProofWire> {
      if (from === undefined || to === undefined) throw fail('log.range_invalid', 'from and to are required', { field: from === undefined ? 'from' : 'to' });
      const head = await latest();
      bounded(to, head, 'to');
      if (from < 1 || from > to) throw fail('log.range_invalid', `from must be from 1 to ${to} (a proof from the empty tree proves nothing)`, { field: 'from', value: from, to });
      const path = from === to ? [] : await hashRanges(consistencyRanges(from, to), (n) => reader.readNodes(n));
      return { from, to, consistencyPath: path.map(hex) };
    },

    /** Entries start…end (inclusive, as RFC 6962 get-entries), at most {@link MAX_ENTRIES_PAGE}. */
    async entries(start: number | undefined, end: number | undefined): Promise<{ entries: EntryWire[] }> {
      if (start === undefined || end === undefined) throw fail('log.range_invalid', 'start and end are required', { field: start === undefined ? 'start' : 'end' });
      if (start > end) throw fail('log.range_invalid', `start ${start} is after end ${end}`, { field: 'start', start, end });
      const head = await latest();
      if (start >= head.treeSize) throw fail('log.range_invalid', `start ${start} is beyond the latest signed tree head (size ${head.treeSize})`, { field: 'start', start, treeSize: head.treeSize });
      const last = Math.min(end, head.treeSize - 1, start + MAX_ENTRIES_PAGE - 1);
      const rows = await reader.leaves(start, last - start + 1);
      return { entries: rows.filter((r) => r.index <= last).map((r) => ({ index: r.index, leafHash: hex(r.leafHash), entry: r.entry })) };
    },
  };
}

export type LogService = ReturnType<typeof createLogService>;
