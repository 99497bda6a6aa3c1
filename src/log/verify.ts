/**
 * Verification of a whole log from its store (`conclave audit verify`, GET /admin/vault/audit/verify):
 * recompute the tree from the entries, check each stored tree node and every stored signed head against
 * it, and the migrated prefix against the audit hash chain it came from. The work goes page by page,
 * with a turn of the event loop between pages, so a large log never holds the loop for long (#14 item 10).
 *
 * All heads are checked against the one tree recomputed from the one sequence of entries, so any two
 * of them are consistent (each is a prefix of the next); a head that is not is reported at its size.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { type ConclaveError, type ErrorCode, fail, isConclaveError } from '../core/errors.js';
import { nextTurn } from '../core/turns.js';
import { CompactRange, hashLeafText, type NodeId } from './merkle.js';
import type { LogReader, StoredLeaf } from './ports.js';
import { checkTreeHead, logKeyId, type SignedTreeHead } from './tree-head.js';

export interface LogVerification {
  readonly ok: true;
  /** Sequenced entries, all verified. */
  readonly entries: number;
  /** Signed heads, all verified. */
  readonly heads: number;
  readonly treeSize: number;
  /** Hex root of the latest head. */
  readonly rootHash: string;
  /** Entries stored but not yet in a signed head (the next batch takes them). */
  readonly pending: number;
  /** Every stored entry: `entries` + `pending`. */
  readonly records: number;
  /** The migrated audit chain: its record count and head hash (hex), verified as entries 0…records−1. */
  readonly chain: { readonly records: number; readonly head: string };
}

export interface LogVerificationFailure {
  readonly ok: false;
  readonly code: ErrorCode;
  readonly message: string;
  readonly detail?: Readonly<Record<string, unknown>>;
  /** Entries verified before the failure. */
  readonly entries: number;
}

const PAGE = 2000;
const GENESIS = '0'.repeat(64);

export interface VerifyOptions {
  /**
   * Heads the verifier kept from before (a monitor's state, a release's inclusion proof, an earlier
   * GET /log/sth): each must be signed by a trusted key and have the recomputed root at its size. The
   * store alone cannot show that the log was cut back to an earlier head; a head kept from before can.
   */
  readonly knownHeads?: readonly SignedTreeHead[];
}

/**
 * Checks the log `reader` holds; every head must be signed by one of the trusted log keys `keys` (the one
 * its key id names). Never throws a verification failure: it returns it.
 */
export async function verifyLog(reader: LogReader, keys: readonly KeyObject[], options: VerifyOptions = {}): Promise<LogVerification | LogVerificationFailure> {
  const byId = new Map(keys.map((k) => [logKeyId(k), k]));
  let entries = 0;
  try {
    const known = [...(options.knownHeads ?? [])].sort((a, b) => a.treeSize - b.treeSize);
    for (const h of known) {
      const key = byId.get(h.keyId);
      if (!key) throw fail('log.signature_invalid', `the kept head of size ${h.treeSize} names log key ${h.keyId}, which is not a trusted log key`, { treeSize: h.treeSize, keyId: h.keyId });
      checkTreeHead(h, key);
    }
    /** A kept head of the size the tree has now must have its root. */
    const checkKnown = () => {
      while (known.length > 0 && known[0]!.treeSize === range.size) {
        const h = known.shift()!;
        if (!range.root().equals(h.rootHash)) {
          throw fail('log.inconsistent', `the kept head of size ${h.treeSize} has another root than the tree recomputed from the entries: the log forked or was rewritten since`, { treeSize: h.treeSize, kept: h.rootHash.toString('hex'), recomputed: range.root().toString('hex') });
        }
      }
    };
    const range = new CompactRange();
    const chain = { records: 0, head: GENESIS };
    let chainPage: { seq: number; record: string; prevHash: string; hash: string }[] = [];
    let chainDone = false;
    let heads = 0;
    let headPage: SignedTreeHead[] = await reader.heads(0, PAGE);
    let lastHead: SignedTreeHead | undefined;

    const checkHead = (h: SignedTreeHead) => {
      if (!range.root().equals(h.rootHash)) {
        throw fail('log.root_mismatch', `the signed head of size ${h.treeSize} does not match the tree recomputed from the entries (entries reordered or replaced, or a forked head)`, { treeSize: h.treeSize, signed: h.rootHash.toString('hex'), recomputed: range.root().toString('hex') });
      }
      const key = byId.get(h.keyId);
      if (!key) throw fail('log.signature_invalid', `the signed head of size ${h.treeSize} names log key ${h.keyId}, which is not a trusted log key`, { treeSize: h.treeSize, keyId: h.keyId, trusted: [...byId.keys()] });
      checkTreeHead(h, key);
      if (lastHead && h.timestamp < lastHead.timestamp) throw fail('log.inconsistent', `the signed head of size ${h.treeSize} is older than the head of size ${lastHead.treeSize}`, { treeSize: h.treeSize, previous: lastHead.treeSize });
      lastHead = h;
      heads++;
    };
    const nextHead = async (): Promise<SignedTreeHead | undefined> => {
      if (headPage.length === 0) return undefined;
      const h = headPage[0]!;
      if (h.treeSize === range.size) {
        headPage.shift();
        if (headPage.length === 0) headPage = await reader.heads(h.treeSize + 1, PAGE);
      }
      return h;
    };

    // A head of the empty tree comes before any entry.
    for (let h = await nextHead(); h && h.treeSize === 0; h = await nextHead()) checkHead(h);
    checkKnown();

    // Entries beyond the latest head are not signed yet (the next batch signs them): they are counted, not checked.
    const signedSize = (await reader.latestHead())?.treeSize ?? 0;
    while (range.size < signedSize) {
      const page = await reader.leaves(range.size, Math.min(PAGE, signedSize - range.size));
      if (page.length === 0) throw fail('log.entry_missing', `log entry ${range.size} is missing (the latest signed head covers ${signedSize})`, { index: range.size, treeSize: signedSize });
      const completed = new Map<number, { from: number; hashes: Buffer[] }>();
      for (const leaf of page) {
        if (leaf.index !== range.size) throw fail('log.entry_missing', `log entry ${range.size} is missing (the next stored is ${leaf.index})`, { index: range.size });
        if (!hashLeafText(leaf.entry).equals(leaf.leafHash)) throw fail('log.entry_mismatch', `log entry ${leaf.index} does not hash to its leaf hash (changed)`, { index: leaf.index });
        if (!chainDone) {
          if (chainPage.length === 0) chainPage = await reader.chain(chain.records + 1, PAGE);
          if (chainPage.length === 0) chainDone = true;
          else checkChained(leaf, chainPage.shift()!, chain);
        }
        range.append(leaf.leafHash, (node, hash) => {
          const run = completed.get(node.level);
          if (run) run.hashes.push(hash);
          else completed.set(node.level, { from: node.index, hashes: [hash] });
        });
        entries++;
        for (let h = await nextHead(); h && h.treeSize === range.size; h = await nextHead()) checkHead(h);
        checkKnown();
      }
      await checkNodes(reader, completed);
      await nextTurn();
    }
    if (known.length > 0) {
      const h = known.at(-1)!;
      throw fail('log.inconsistent', `the kept head of size ${h.treeSize} is larger than the log's latest signed head (${signedSize}): entries and heads were deleted since`, { treeSize: h.treeSize, latest: signedSize });
    }
    // Chain records not yet taken into the log (a sequencer has not run since the migration) must still
    // link; the only entries with an index beyond the latest head are those records, awaiting their batch.
    let beyond = await reader.leaves(signedSize, PAGE);
    for (let index = signedSize; ; index++) {
      if (beyond.length === 0) beyond = await reader.leaves(index, PAGE);
      const leaf = beyond.shift();
      if (!chainDone && chainPage.length === 0) {
        await nextTurn();
        chainPage = await reader.chain(chain.records + 1, PAGE);
        if (chainPage.length === 0) chainDone = true;
      }
      if (chainDone) {
        if (leaf) {
          // A batch that committed after the latest head was read signs this entry: a newer head, not a
          // deleted one (the log is verified up to the head read first; the next verify goes further).
          if (((await reader.latestHead())?.treeSize ?? 0) > leaf.index) break;
          throw fail('log.head_missing', `log entry ${leaf.index} has an index but no signed head covers it (the latest is of size ${signedSize}), and it is not an audit-chain record awaiting migration: a signed head was deleted`, { index: leaf.index, treeSize: signedSize });
        }
        break;
      }
      const rec = chainPage.shift()!;
      if (leaf?.index !== index) throw fail('log.entry_missing', `log entry ${index}, migrated from audit chain record ${rec.seq}, is missing`, { index, seq: rec.seq });
      checkChained(leaf, rec, chain);
    }
    const pending = await reader.pendingCount(signedSize);
    return {
      ok: true,
      records: entries + pending,
      entries,
      heads,
      treeSize: lastHead?.treeSize ?? 0,
      rootHash: (lastHead?.rootHash ?? range.root()).toString('hex'),
      pending,
      chain,
    };
  } catch (e) {
    if (!isConclaveError(e) || !e.code.startsWith('log.')) throw e;
    const err = e as ConclaveError;
    return { ok: false, code: err.code, message: err.message, ...(err.detail ? { detail: err.detail } : {}), entries };
  }
}

/** Entry `index` of the migrated prefix must be chain record seq = index + 1, verbatim, and the chain must link. */
function checkChained(leaf: StoredLeaf, rec: { seq: number; record: string; prevHash: string; hash: string }, chain: { records: number; head: string }): void {
  const index = leaf.index;
  if (rec.seq !== index + 1) throw fail('log.entry_missing', `audit chain record ${index + 1} is missing (the next stored is ${rec.seq})`, { index, seq: index + 1 });
  if (rec.prevHash !== chain.head || createHash('sha256').update(rec.prevHash).update(rec.record).digest('hex') !== rec.hash) {
    throw fail('log.entry_mismatch', `audit chain record ${rec.seq} does not link to its predecessor or does not match its hash`, { index, seq: rec.seq });
  }
  if (rec.record !== leaf.entry) throw fail('log.entry_mismatch', `log entry ${index} differs from audit chain record ${rec.seq} it was migrated from`, { index, seq: rec.seq });
  chain.records = rec.seq;
  chain.head = rec.hash;
}

/** The perfect nodes a page completed must be stored as computed: they are what proofs are served from. */
async function checkNodes(reader: LogReader, completed: Map<number, { from: number; hashes: Buffer[] }>): Promise<void> {
  for (const [level, run] of completed) {
    const stored = await reader.levelNodes(level, run.from, run.from + run.hashes.length - 1);
    for (let i = 0; i < run.hashes.length; i++) {
      const node: NodeId = { level, index: run.from + i };
      const s = stored[i];
      if (!s || s.index !== node.index || !s.hash.equals(run.hashes[i]!)) {
        throw fail('log.root_mismatch', `stored tree node (level ${level}, index ${node.index}) is ${s && s.index === node.index ? 'wrong' : 'missing'}: proofs served from it would not verify`, { level, index: node.index });
      }
    }
  }
}
