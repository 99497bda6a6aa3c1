/**
 * Starts `conclave serve` in a child process (so the load generator does not share its event loop), as users
 * run it: the compiled CLI (`bin/conclave.js` over dist/, from `npm run build`). Not the sources under tsx:
 * its esbuild transform keeps function names (`keepNames`), one Object.defineProperty for every function
 * made at run time, which the compiled server does not pay. `BENCH_FROM_SOURCE=1` runs the sources under tsx
 * instead (no build needed; figures then say so).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface BenchServer {
  readonly url: string;
  readonly dataDir: string;
  readonly ca: string;
  readonly admin: { clientId: string; clientSecret: string; tokenEndpoint: string };
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * `BENCH_PROFILE=DIR` runs the server under `--cpu-prof` and writes its CPU profile into DIR when it
 * stops (open it in Chrome DevTools or speedscope, or summarise it with bench/profile.ts).
 */
/** The newest modification time of the .ts files under dir. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** The command line that runs the CLI of the checkout at root: its compiled entry, refused when missing or older than src/. */
export function serverEntry(root = '.'): string[] {
  if (process.env.BENCH_FROM_SOURCE === '1') return ['--import', 'tsx', 'src/cli/run.ts'];
  const compiled = join(resolve(root), 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(compiled)) throw new Error(`${resolve(root)} has no dist/: run \`npm run build\` there first (or BENCH_FROM_SOURCE=1)`);
  if (newestSource(join(resolve(root), 'src')) > statSync(compiled).mtimeMs) {
    throw new Error(`${resolve(root)}: dist/ is older than src/: run \`npm run build\` there first (or BENCH_FROM_SOURCE=1)`);
  }
  return [join(resolve(root), 'bin', 'conclave.js')];
}

export async function startBenchServer(args: string[] = [], dataDir = mkdtempSync(join(tmpdir(), 'conclave-bench-')), opts: { root?: string } = {}): Promise<BenchServer> {
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  // BENCH_PERF=DIR: Linux perf samples the server's CPU time (not wall time, so it stays truthful on a busy
  // machine), every thread, native frames included, into DIR/perf-PID.data; bench/profile.ts reads
  // `perf script` output. Node writes JIT symbols to /tmp/perf-PID.map for it.
  if (process.env.BENCH_PERF) profile.push('--perf-basic-prof-only-functions');
  const child = spawn(process.execPath, [...profile, ...serverEntry(opts.root), 'serve', '--data-dir', dataDir, '--port', '0', ...args], {
    // The server logs at its default level (info), as a user runs it; its log goes to a file.
    stdio: ['ignore', 'pipe', openSync(join(dataDir, 'server.log'), 'a')],
    // `root`: another checkout (its own src/ and node_modules/), to compare two versions in one run.
    ...(opts.root ? { cwd: opts.root } : {}),
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /conclave listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}\n${readFileSync(join(dataDir, 'server.log'), 'utf8').slice(-2000)}`)));
  });
  const perf = process.env.BENCH_PERF
    ? spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '499', '-g', '-p', String(child.pid), '-o', join(process.env.BENCH_PERF, `perf-${child.pid}.data`)], { stdio: 'inherit' })
    : undefined;
  return {
    url,
    dataDir,
    ca: readFileSync(join(dataDir, 'tls', 'ca.pem'), 'utf8'),
    admin: JSON.parse(readFileSync(join(dataDir, 'admin.json'), 'utf8')),
    child,
    async stop() {
      if (perf && perf.exitCode === null) {
        const done = new Promise((resolve) => perf.once('exit', resolve));
        perf.kill('SIGINT');
        await done;
      }
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    },
  };
}

/** How startBenchServer runs the servers, for the head of a benchmark's output. */
export function serverLine(): string {
  return process.env.BENCH_FROM_SOURCE === '1' ? 'servers: the sources under tsx (BENCH_FROM_SOURCE=1)' : 'servers: compiled (bin/conclave.js over dist/, as `conclave serve` runs)';
}
