import type { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { isConclaveError } from '../core/errors.js';
import { createPkcs11KeyProtector } from '../hsm/pkcs11.js';
import { parsePkcs11Spec } from '../hsm/pkcs11-spec.js';
import { unpinTokenServiceKey } from '../hsm/service-keys.js';
import { openDatabase } from '../storage/open.js';
import { CliError, defaultFormat, printResult } from './output.js';

/**
 * `conclave hsm info`: what the configured PKCS#11 token is and can do — library and token, the
 * mechanism list, the release wrap path and which OAEP hashes the token accepts (docs/hsm.md).
 */
export function registerHsm(program: Command): void {
  const hsm = program.command('hsm').description('PKCS#11 key protection');
  hsm
    .command('info')
    .description('show the PKCS#11 library, token, mechanisms and the key release wrap path')
    .option('--hsm <spec>', 'pkcs11:module=PATH;token=LABEL;pin-source=file:PATH|env:VAR (default: config key hsm / CONCLAVE_HSM)')
    .option('--config <file>', 'JSON or YAML config file')
    .option('--output <format>', 'json|table')
    .action(async (flags: { hsm?: string; config?: string; output?: string }) => {
      const format = flags.output === 'json' || flags.output === 'table' ? flags.output : defaultFormat();
      let spec: ReturnType<typeof parsePkcs11Spec>;
      try {
        const config = loadConfig({ flags: { ...flags, output: undefined }, env: process.env });
        if (config.hsm === undefined) throw new CliError('no HSM is configured', 'pass --hsm pkcs11:module=PATH;token=LABEL;pin-source=env:VAR (or set CONCLAVE_HSM)', 2);
        spec = parsePkcs11Spec(config.hsm);
      } catch (e) {
        if (e instanceof CliError) throw e;
        throw new CliError((e as Error).message, 'the spec is pkcs11:module=PATH;token=LABEL;pin-source=file:PATH|env:VAR', 2);
      }
      let provider: Awaited<ReturnType<typeof createPkcs11KeyProtector>> | undefined;
      try {
        provider = await createPkcs11KeyProtector(spec);
        printResult(await provider.info(), format);
      } catch (e) {
        if (isConclaveError(e, 'config.invalid')) throw new CliError(e.message, 'check the module path and the PIN source', 2);
        if (isConclaveError(e, 'hsm.unavailable')) throw new CliError(e.message, 'is the token present and its label and PIN right?', 1);
        throw e;
      } finally {
        await provider?.close();
      }
    });
  hsm
    .command('unpin-service-key')
    .description('forget the stored certificate that pins a token-held service key (after re-initialising the token on purpose); the next start certifies the key the token holds')
    .argument('<name>', 'service key name, e.g. release-signing:vault.example.com')
    .option('--db <url>', 'store: sqlite:PATH (default sqlite:<data-dir>/conclave.db) or postgres://…')
    .option('--data-dir <dir>', 'data directory (locates the default SQLite store)')
    .option('--config <file>', 'JSON or YAML config file')
    .option('--output <format>', 'json|table')
    .action(async (name: string, flags: { db?: string; dataDir?: string; config?: string; output?: string }) => {
      const format = flags.output === 'json' || flags.output === 'table' ? flags.output : defaultFormat();
      let config: ReturnType<typeof loadConfig>;
      try {
        config = loadConfig({ flags: { ...flags, output: undefined }, env: process.env });
      } catch (e) {
        throw new CliError((e as Error).message, 'check --db (sqlite:PATH or postgres://…) and --data-dir', 2);
      }
      const store = await openDatabase(config.db, { poolSize: 1 });
      try {
        const unpinned = await unpinTokenServiceKey(store, name);
        if (!unpinned) throw new CliError(`no pinned token service key named ${name}`, 'the name is what the refusal to start named, e.g. release-signing:vault.example.com', 1);
        printResult({ unpinned: name, next: 'the next start certifies the key the token holds (it must be sensitive and never extractable)' }, format);
      } finally {
        await store.close();
      }
    });
}
