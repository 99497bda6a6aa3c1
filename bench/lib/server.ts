/** Starts `conclave serve` from source in a child process (so the load generator does not share its event loop). */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BenchServer {
  readonly url: string;
  readonly dataDir: string;
  readonly ca: string;
  readonly admin: { clientId: string; clientSecret: string; tokenEndpoint: string };
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export async function startBenchServer(args: string[] = [], dataDir = mkdtempSync(join(tmpdir(), 'conclave-bench-'))): Promise<BenchServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'serve', '--data-dir', dataDir, '--port', '0', '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /conclave listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  return {
    url,
    dataDir,
    ca: readFileSync(join(dataDir, 'tls', 'ca.pem'), 'utf8'),
    admin: JSON.parse(readFileSync(join(dataDir, 'admin.json'), 'utf8')),
    child,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
