import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type HttpResponse, httpsClient } from '../../helpers/https.js';
import { ROOT } from '../../helpers/root.js';

/**
 * A `conclave serve` replica as a real child process (bin/conclave.js runs dist/, so the project must
 * be built: `npm run build` or `npx tsc -p tsconfig.json`).
 */
export interface Replica {
  readonly url: string;
  readonly process: ChildProcess;
  readonly send: ReturnType<typeof httpsClient>;
  /** An access token for the bootstrap administrator, issued by this replica. */
  adminToken(): Promise<string>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL (a crash) and wait for exit. */
  kill(): Promise<void>;
}

export const BIN = join(ROOT, 'bin', 'conclave.js');
const DIST_MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** `undefined` when the built CLI is present; under CI its absence is an error, not a skip. */
export function builtCliMissing(): string | undefined {
  if (existsSync(DIST_MAIN)) return undefined;
  const reason = 'dist/ is missing: run `npm run build` (or `npx tsc -p tsconfig.json`) before the scale-out tests';
  if (process.env.CI === 'true') throw new Error(`CI=true: ${reason}`);
  return reason;
}

export async function startReplica(opts: { db?: string; dataDir: string; simulate?: boolean; extra?: string[] }): Promise<Replica> {
  const args = [BIN, 'serve', '--data-dir', opts.dataDir, '--port', '0', '--log-level', process.env.TEST_LOG_LEVEL ?? 'warn'];
  if (opts.db) args.push('--db', opts.db);
  if (opts.simulate) args.push('--simulate');
  args.push(...(opts.extra ?? []));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONCLAVE_LOG_LEVEL: undefined } });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  const url = await new Promise<string>((resolve, reject) => {
    // A replica that never listens is killed: left running, it would keep the test process alive for ever.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`replica did not start in 30 s\n${err}`));
    }, 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /conclave listening on (https:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`replica exited with ${code} before listening\n${err}`));
    });
  });
  const ca = /TLS CA certificate: (\S+)/.exec(out)?.[1] ?? join(opts.dataDir, 'tls', 'ca.pem');
  const send = httpsClient(url, ca);
  let token: string | undefined;
  const signal = async (s: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(s);
    await exited;
  };
  return {
    url,
    process: child,
    send,
    async adminToken() {
      if (token) return token;
      const admin = JSON.parse(readFileSync(join(opts.dataDir, 'admin.json'), 'utf8')) as { clientId: string; clientSecret: string };
      const r: HttpResponse = await send('POST', '/oauth2/token', {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: admin.clientId, client_secret: admin.clientSecret }).toString(),
      });
      if (r.status !== 200) throw new Error(`admin token: ${r.status} ${r.text}`);
      token = r.json().access_token as string;
      return token;
    },
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
  };
}
