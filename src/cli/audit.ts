/**
 * `conclave audit verify`: recomputes the transparency log from the store and checks every signed head.
 * Only with `--log-key` does it prove anything against whoever can write the store: without it, it
 * trusts the log keys the store holds, which that writer can replace (and re-sign a rewritten log), so
 * it says so on stderr and in the result (`trustedBy: 'store'`).
 */
import { readFileSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { parseTreeHeadWire, type SignedTreeHead } from '../log/tree-head.js';
import { verifyLog } from '../log/verify.js';
import { createLogStore, storedLogKeys } from '../storage/log-store.js';
import { openDatabase } from '../storage/open.js';
import { CliError, defaultFormat, type OutputFormat, printResult } from './output.js';

/** A head kept from before: a signed tree head as JSON, or an object holding one as `sth` (monitor state, release inclusion). */
function readHead(path: string): SignedTreeHead {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliError(`cannot read the head ${path}: ${(e as Error).message}`, 'pass a JSON file holding a signed tree head (GET /log/sth) or a monitor state', 2);
  }
  const o = v as { sth?: unknown } | null;
  try {
    return parseTreeHeadWire(o && typeof o === 'object' && 'sth' in o ? o.sth : v);
  } catch (e) {
    throw new CliError(`${path}: ${(e as Error).message}`, 'pass a JSON file holding a signed tree head (GET /log/sth) or a monitor state', 2);
  }
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the vault audit log (the transparency log)');
  audit
    .command('verify')
    .description('recompute the log tree from its entries, check every stored signed tree head and tree node, and the migrated audit chain; exit 1 naming the first failure')
    .option('--data-dir <dir>', 'data directory (default ./data, env CONCLAVE_DATA_DIR)')
    .option('--db <url>', 'store: sqlite:PATH or postgres://… (default sqlite:<data-dir>/conclave.db)')
    .option('--log-key <pem-file...>', 'trusted log public key(s) (GET /log/key, recorded when the log started); without it, the log keys the store holds, which whoever can write the store can replace (a warning, trustedBy: store)')
    .option('--head <json-file...>', 'signed tree head(s) kept from before (GET /log/sth, a `log monitor --state` file, a release inclusion): each must have the recomputed root at its size, which catches a log cut back to an earlier head')
    .option('-o, --output <format>', 'json or table')
    .addHelpText('after', '\nExamples:\n  conclave audit verify --data-dir ./data --log-key log-key.pem\n  conclave audit verify --db postgres://… --log-key log-key.pem --head monitor.json\n')
    .action(async (f: { dataDir?: string; db?: string; logKey?: string[]; head?: string[]; output?: OutputFormat }) => {
      const dataDir = resolve(f.dataDir ?? process.env.CONCLAVE_DATA_DIR ?? './data');
      const url = f.db ?? process.env.CONCLAVE_DB ?? `sqlite:${resolve(dataDir, 'conclave.db')}`;
      let keys: KeyObject[] | undefined;
      try {
        keys = f.logKey?.map((p) => createPublicKey(readFileSync(p)));
      } catch (e) {
        throw new CliError(`cannot read the log key: ${(e as Error).message}`, 'pass the PEM public key that GET /log/key returned', 2);
      }
      const knownHeads = (f.head ?? []).map(readHead);
      const trustedBy = keys ? 'log-key' : 'store';
      if (!keys) {
        process.stderr.write(
          'warning: no --log-key: trusting the log keys the store holds. Whoever can write the store can replace them and re-sign a rewritten log, so this proves only that the store is self-consistent. Pass the key GET /log/key returned when the log started: --log-key log-key.pem\n',
        );
      }
      const db = await openDatabase(url, { poolSize: 1 });
      try {
        const result = await verifyLog(createLogStore(db), keys ?? (await storedLogKeys(db)), { knownHeads });
        if (!result.ok) throw new CliError(`log verification failed (${result.code}): ${result.message} (${result.entries} entries verified before it)`, 'restore the log tables from a backup and investigate', 1);
        printResult({ ...result, trustedBy }, f.output ?? defaultFormat());
      } finally {
        await db.close();
      }
    });
}
