import type { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { isConclaveError } from '../core/errors.js';
import { openDatabase } from '../storage/open.js';
import { MIGRATIONS } from '../storage/migrations/index.js';
import { CliError, defaultFormat, printResult } from './output.js';

/**
 * `conclave db migrate`: applies pending schema migrations out of band, for operators who do not let
 * replicas migrate at start. Safe to run while replicas start: PostgreSQL migrations run under an
 * advisory lock, SQLite ones under the write lock, and each applies once.
 */
export function registerDb(program: Command): void {
  const db = program.command('db').description('store administration');
  db.command('migrate')
    .description('apply pending schema migrations to the store and exit')
    .option('--db <url>', 'store: sqlite:PATH (default sqlite:<data-dir>/conclave.db) or postgres://…')
    .option('--data-dir <dir>', 'data directory (locates the default SQLite store)')
    .option('--config <file>', 'JSON or YAML config file')
    .option('--output <format>', 'json|table')
    .action(async (flags: { db?: string; dataDir?: string; config?: string; output?: string }) => {
      let config: ReturnType<typeof loadConfig>;
      try {
        config = loadConfig({ flags: { ...flags, output: undefined }, env: process.env });
      } catch (e) {
        throw new CliError((e as Error).message, 'check --db (sqlite:PATH or postgres://…) and --data-dir', 2);
      }
      const format = flags.output === 'json' || flags.output === 'table' ? flags.output : defaultFormat();
      let store: Awaited<ReturnType<typeof openDatabase>> | undefined;
      try {
        store = await openDatabase(config.db, { poolSize: 2 });
        const applied = await store.migrate(MIGRATIONS);
        const latest = Math.max(...MIGRATIONS.map((m) => m.id));
        printResult({ store: store.dialect, applied, latestMigration: latest }, format);
      } catch (e) {
        if (isConclaveError(e, 'store.unavailable')) throw new CliError(e.message, 'is the store running and the --db URL right?', 1);
        throw e;
      } finally {
        await store?.close();
      }
    });
}
