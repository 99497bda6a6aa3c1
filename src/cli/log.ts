/**
 * `conclave log monitor`: what an external auditor runs against a vault's transparency log. It fetches
 * the signed tree head of every URL given (the replicas, or the public endpoint) every interval, checks
 * the signature with the log key, and asks for a consistency proof from the largest head it has seen to
 * each new one. It prints one JSON line per head and exits 1 at the first alert (a fork, an inconsistent
 * or unproven head, a bad signature, a head dated out of order or in the future): evidence that the log
 * showed two histories.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync, renameSync } from 'node:fs';
import { replacePrivateFile } from './files.js';
import type { Command } from 'commander';
import { checkLog, type MonitoredLog, type MonitorEvent } from '../log/monitor.js';
import type { TreeHeadWire } from '../log/tree-head.js';
import { exchangeJson } from '../sdk/http.js';
import { CliError } from './output.js';
import { readCaOption } from './token.js';

interface MonitorState {
  /** The log key as first trusted (PEM), when none was pinned with --log-key. */
  readonly logKey?: string;
  /** The largest verified head. */
  readonly sth?: TreeHeadWire;
}

function readState(path: string | undefined): MonitorState {
  if (!path) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as MonitorState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CliError(`cannot read the monitor state ${path}: ${(e as Error).message}`, 'fix or remove the file (removing it forgets the heads seen so far)', 2);
  }
}

function writeState(path: string | undefined, state: MonitorState): void {
  if (!path) return;
  // Staged in a file created anew, 0600, never through a link planted at the staging name.
  replacePrivateFile(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

function endpoint(url: string, ca: string | undefined): MonitoredLog {
  const base = url.replace(/\/+$/, '');
  return {
    name: base,
    sth: () => exchangeJson(`${base}/log/sth`, { ca, what: 'fetching the signed tree head', timeoutMs: 10_000 }),
    consistency: (from, to) => exchangeJson(`${base}/log/proof/consistency?from=${from}&to=${to}`, { ca, what: 'fetching a consistency proof', timeoutMs: 10_000 }),
  };
}

export function registerLog(program: Command): void {
  const log = program.command('log').description('the transparency log, seen from outside');
  log
    .command('monitor')
    .description('fetch signed tree heads over time and alert (exit 1) on a bad signature, a fork, a missing or failing consistency proof, or a head dated out of order or in the future')
    .requiredOption('--url <url...>', 'vault base URL(s); give every replica to catch a replica serving another history')
    .option('--log-key <pem-file>', 'the log public key to trust (GET /log/key when the log started); default: the key in --state, else the one the log serves now')
    .option('--state <file>', 'where the largest verified head (and a first-trusted key) is kept between runs')
    .option('--interval <seconds>', 'seconds between rounds (default 60)', '60')
    .option('--once', 'one round, then exit (0 all good, 1 alert, 2 a log could not be reached)')
    .option('--ca <file>', 'PEM CA certificate to trust (env CONCLAVE_CA)')
    .addHelpText('after', '\nExamples:\n  conclave log monitor --url https://vault.example:8443 --log-key log-key.pem --state monitor.json --once\n  conclave log monitor --url https://replica-a:8443 --url https://replica-b:8443 --log-key log-key.pem --interval 30\n')
    .action(async (f: { url: string[]; logKey?: string; state?: string; interval: string; once?: boolean; ca?: string }) => {
      const interval = Number(f.interval);
      if (!Number.isFinite(interval) || interval < 1) throw new CliError('--interval must be at least 1 second', undefined, 2);
      const ca = readCaOption(f.ca ?? process.env.CONCLAVE_CA);
      const logs = f.url.map((u) => endpoint(u, ca));
      let state = readState(f.state);
      let key: KeyObject;
      try {
        if (f.logKey) key = createPublicKey(readFileSync(f.logKey));
        else if (state.logKey) key = createPublicKey(state.logKey);
        else {
          const served = await exchangeJson(`${logs[0]!.name}/log/key`, { ca, what: 'fetching the log key' });
          key = createPublicKey(String(served.publicKey));
          state = { ...state, logKey: key.export({ type: 'spki', format: 'pem' }) as string };
          process.stderr.write(`warning: trusting the log key ${logs[0]!.name} serves now; pin it with --log-key\n`);
        }
      } catch (e) {
        if (e instanceof CliError) throw e;
        throw new CliError(`cannot load the log key: ${(e as Error).message}`, 'pass the PEM that GET /log/key returned when the log started', 2);
      }
      const print = (e: MonitorEvent | Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`);
      for (;;) {
        let unreachable = false;
        for (const l of logs) {
          let r: Awaited<ReturnType<typeof checkLog>>;
          try {
            r = await checkLog(l, key, state.sth, Date.now());
          } catch (e) {
            unreachable = true;
            print({ kind: 'unreachable', log: l.name, message: (e as Error).message });
            continue;
          }
          print(r.event);
          if (r.event.kind === 'alert') {
            writeState(f.state, state);
            throw new CliError(`log ${l.name}: ${r.event.alert}: ${r.event.message}`, 'keep both heads (printed above) as evidence and investigate the vault', 1);
          }
          state = { ...state, ...(r.latest ? { sth: r.latest } : {}) };
          writeState(f.state, state);
        }
        if (f.once) {
          if (unreachable) throw new CliError('a log could not be reached', 'check the URL, --ca and the network', 2);
          return;
        }
        await new Promise((r) => setTimeout(r, interval * 1000));
      }
    });
}
