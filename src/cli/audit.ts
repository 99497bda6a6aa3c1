/** `conclave audit verify`: checks the vault's hash-chained audit log directly in the store. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { readAuditRows } from '../storage/vault-store.js';
import { openDatabase } from '../storage/open.js';
import { verifyAuditChain } from '../vault/audit.js';
import { CliError, defaultFormat, type OutputFormat, printResult } from './output.js';

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the vault audit log');
  audit
    .command('verify')
    .description('verify the audit hash chain; exit 1 naming the first bad sequence number')
    .option('--data-dir <dir>', 'data directory (default ./data, env CONCLAVE_DATA_DIR)')
    .option('--db <url>', 'store: sqlite:PATH or postgres://… (default sqlite:<data-dir>/conclave.db)')
    .option('-o, --output <format>', 'json or table')
    .action(async (f: { dataDir?: string; db?: string; output?: OutputFormat }) => {
      const dataDir = resolve(f.dataDir ?? process.env.CONCLAVE_DATA_DIR ?? './data');
      const url = f.db ?? process.env.CONCLAVE_DB ?? `sqlite:${resolve(dataDir, 'conclave.db')}`;
      const db = await openDatabase(url, { poolSize: 1 });
      try {
        const result = verifyAuditChain(await readAuditRows(db));
        if (!result.ok) throw new CliError(`audit chain broken at sequence ${result.badSeq}: ${result.reason} (${result.count} records verified before it)`, 'restore the audit table from a backup and investigate', 1);
        printResult({ ok: true, records: result.count, head: result.head }, f.output ?? defaultFormat());
      } finally {
        await db.close();
      }
    });
}
