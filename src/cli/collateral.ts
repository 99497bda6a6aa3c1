import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { decodeBundle, encodeBundle } from '../collateral/cache/bundle.js';
import { verifyCollateralItem } from '../collateral/cache/verify.js';
import { createCollateralService } from '../collateral/service.js';
import { loadConfig } from '../config/config.js';
import { fail, isConclaveError } from '../core/errors.js';
import { openDatabase } from '../storage/open.js';
import { createCollateralStore } from '../storage/collateral-store.js';
import { MIGRATIONS } from '../storage/migrations/index.js';
import { createCollateralUpstream } from '../upstream/collateral-upstream.js';
import type { HttpClient } from '../upstream/http.js';
import { createServerClient } from './client.js';
import { CliError, defaultFormat, printResult } from './output.js';
import { qcnlConfig, trustInstructions } from './qcnl-config.js';
import { writePrivateFile } from './files.js';

interface StoreFlags {
  dataDir?: string;
  db?: string;
}

async function openStore(flags: StoreFlags) {
  const config = loadConfig({ flags: { dataDir: flags.dataDir, db: flags.db }, env: process.env });
  const db = await openDatabase(config.db);
  await db.migrate(MIGRATIONS);
  return { db, store: createCollateralStore(db) };
}

/** The HTTP client of a command that works on the store alone: any request is refused. */
const OFFLINE_HTTP: HttpClient = {
  request: () => Promise.reject(fail('collateral.not_found', 'offline: no upstream is asked')),
  get: () => Promise.reject(fail('collateral.not_found', 'offline: no upstream is asked')),
  inFlight: () => 0,
  close: () => {},
};

/** A progress bar on a TTY, a plain count line otherwise (logs stay readable). */
function progress(label: string, total: number) {
  const tty = process.stderr.isTTY;
  let last = -1;
  return (done: number) => {
    if (tty) {
      const width = 30;
      const filled = Math.round((done / Math.max(total, 1)) * width);
      process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
      if (done === total) process.stderr.write('\n');
    } else if (done === total || done - last >= 100) {
      last = done;
      process.stderr.write(`${label}: ${done}/${total}\n`);
    }
  };
}

interface AdminFlags {
  url: string;
  dataDir?: string;
  caFile?: string;
}

/** Calls the admin API as the administrator: the CLI's one client and credential resolution (client.ts). */
async function adminCall(flags: AdminFlags, method: string, path: string, body?: unknown): Promise<unknown> {
  const client = createServerClient({ url: flags.url, ...(flags.dataDir ? { dataDir: flags.dataDir } : {}), ...(flags.caFile ? { ca: flags.caFile } : {}) });
  return (await client.call(method, path, body)) ?? {};
}

function jsonArg(v: string): unknown {
  try {
    return JSON.parse(existsSync(v) ? readFileSync(v, 'utf8') : v);
  } catch {
    throw new CliError(`${v} is neither a JSON file nor JSON text`, 'e.g. --set \'{"minAgeDays":30,"pinned":{"sgx":17}}\'', 2);
  }
}

/** `conclave collateral import|export|status|baseline|refresh|qcnl-config`. */
export function registerCollateral(program: Command): void {
  const c = program.command('collateral').description('collateral cache: offline bundles, status, TCB baseline, refresh');
  const storeOpts = (cmd: Command) => cmd.option('--data-dir <dir>', 'data directory (default ./data)').option('--db <url>', 'store URL (default sqlite:<data-dir>/conclave.db)');
  const adminOpts = (cmd: Command) =>
    cmd.requiredOption('--url <url>', 'base URL of conclave serve').option('--data-dir <dir>', 'data directory holding admin.json and tls/ca.pem').option('--ca-file <file>', 'CA certificate to trust').option('--output <format>', 'json|table');

  storeOpts(c.command('export <file>').description('write every cached item (bodies, headers, signatures) to an offline bundle')).action(async (file: string, flags: StoreFlags) => {
    const { db, store } = await openStore(flags);
    try {
      const items = await store.itemsSince(0);
      writePrivateFile(file, encodeBundle(items, new Date()));
      process.stderr.write(`exported ${items.length} items to ${file}\n`);
    } finally {
      await db.close();
    }
  });

  storeOpts(c.command('import <file>').description('verify every item of a bundle against the vendor roots, then store all of them in one transaction')).action(async (file: string, flags: StoreFlags) => {
    const items = decodeBundle(readFileSync(file, 'utf8'));
    const tick = progress('verifying', items.length);
    items.forEach((i, n) => {
      try {
        verifyCollateralItem({ ...i, version: 0 });
      } catch (e) {
        throw new CliError(isConclaveError(e) ? e.message : String(e), 'nothing was imported', 1);
      }
      tick(n + 1);
    });
    const { db, store } = await openStore(flags);
    try {
      // The guard POST /admin/collateral/bundle applies (collateral/admin.ts importBundle): each item is what its
      // signed content makes it (key, scope, dates, pckcerts labels), none older than the stored copy. Offline:
      // nothing here asks an upstream.
      const svc = createCollateralService({ mode: 'offline', store, upstream: createCollateralUpstream({ http: OFFLINE_HTTP }), now: () => new Date(), logger: { warn: () => {} } });
      try {
        await svc.importItems(items);
      } catch (e) {
        // One transaction: whatever refused it (an item older than the stored copy included), nothing was stored.
        if (isConclaveError(e)) throw new CliError(e.message, 'nothing was imported', 1);
        throw e;
      }
      process.stderr.write(`imported ${items.length} items\n`);
    } finally {
      await db.close();
    }
  });

  adminOpts(c.command('status').description('what is cached, from where, its age and next refresh')).action(async (flags: AdminFlags & { output?: string }) => {
    const r = (await adminCall(flags, 'GET', '/admin/collateral/status')) as { items: Record<string, unknown>[] };
    const fmt = (flags.output as 'json' | 'table' | undefined) ?? defaultFormat();
    printResult(fmt === 'table' ? r.items.map((i) => ({ key: i.key, source: i.source, ageSeconds: i.ageSeconds, nextUpdate: i.nextUpdate, stale: i.stale })) : r, fmt);
  });

  adminOpts(c.command('baseline').description('show the TCB baseline; --dry-run or --set a candidate policy'))
    .option('--set <json|file>', 'set the policy')
    .option('--dry-run <json|file>', 'show which recently seen platforms change status under a candidate policy')
    .action(async (flags: AdminFlags & { set?: string; dryRun?: string; output?: string }) => {
      const r = flags.dryRun
        ? await adminCall(flags, 'POST', '/admin/collateral/baseline/dry-run', jsonArg(flags.dryRun))
        : flags.set
          ? await adminCall(flags, 'PUT', '/admin/collateral/baseline', jsonArg(flags.set))
          : await adminCall(flags, 'GET', '/admin/collateral/baseline');
      printResult(r, (flags.output as 'json' | 'table' | undefined) ?? 'json');
    });

  adminOpts(c.command('refresh').description('refresh cached collateral from the upstreams now'))
    .option('--key <key>', 'one item only')
    .action(async (flags: AdminFlags & { key?: string; output?: string }) => {
      const r = await adminCall(flags, 'POST', `/admin/collateral/refresh${flags.key ? `?key=${encodeURIComponent(flags.key)}` : ''}`);
      printResult(r, (flags.output as 'json' | 'table' | undefined) ?? 'json');
    });

  c.command('qcnl-config')
    .description("print a /etc/sgx_default_qcnl.conf for Intel's QCNL/QPL pointing at this server (PCCS style, or Azure THIM style with --thim)")
    .option('--url <url>', 'Conclave as TEE hosts reach it (default: the configured public URL, else https://HOST:PORT)')
    .option('--ca <file>', "Conclave's TLS CA; prints how to trust it on a TEE host (default <data-dir>/tls/ca.pem when present)")
    .option('--thim', 'Azure THIM layout: PCK certificates from /metadata/THIM first (local_pck_url, Metadata header)')
    .option('--api-version <v>', 'QCNL pccs_api_version: 3.1 (DER CRLs) or 3.0 (hex CRLs)', '3.1')
    .option('--tcb-update <type>', 'QCNL tcb_update_type: standard or early', 'standard')
    .option('--data-dir <dir>', 'data directory (default ./data)')
    .action((flags: { url?: string; ca?: string; thim?: boolean; apiVersion: string; tcbUpdate: string; dataDir?: string }) => {
      if (flags.apiVersion !== '3.0' && flags.apiVersion !== '3.1') throw new CliError('--api-version must be 3.0 or 3.1', 'QCNL knows only these two', 2);
      if (flags.tcbUpdate !== 'standard' && flags.tcbUpdate !== 'early') throw new CliError('--tcb-update must be standard or early', '', 2);
      const config = loadConfig({ flags: { dataDir: flags.dataDir }, env: process.env });
      const url = flags.url ?? config.publicUrl ?? `https://${config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host}:${config.port}`;
      process.stdout.write(`${JSON.stringify(qcnlConfig({ url, thim: flags.thim === true, apiVersion: flags.apiVersion, tcbUpdate: flags.tcbUpdate }), null, 2)}\n`);
      const ca = flags.ca ?? (existsSync(join(config.dataDir, 'tls', 'ca.pem')) ? join(config.dataDir, 'tls', 'ca.pem') : undefined);
      if (ca) process.stderr.write(trustInstructions(ca));
    });
}
