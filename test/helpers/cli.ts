import { type ChildProcess, fork, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { ROOT as root } from './root.js';

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  json<T = any>(): T;
}

export interface CliOptions {
  readonly env?: Record<string, string>;
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Run the real executable in a process of its own (exit codes, signals, start-up): the default for long-running commands. */
  readonly binary?: boolean;
}

/** Commands that serve until stopped, exit the process themselves, or start servers of their own. */
const OWN_PROCESS = new Set(['serve', 'agent', 'demo']);

/**
 * Runs the `conclave` CLI (dist/, so `npm run build` must have run). Short commands go to one CLI host
 * process per test file (test/helpers/cli-host.mjs: the same compiled CLI, without a start-up per
 * command); `serve`, `agent`, `demo`, commands that read stdin, and `binary: true` run bin/conclave.js in
 * a process of their own.
 */
export function conclave(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  if (opts.binary || opts.input !== undefined || OWN_PROCESS.has(args.find((a) => !a.startsWith('-')) ?? '')) return binary(args, opts);
  return hosted(args, opts);
}

/** Runs the real `conclave` binary (bin/conclave.js over dist/) in a process of its own. */
export function binary(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [resolve(root, 'bin', 'conclave.js'), ...args], {
      cwd: root,
      env: { ...process.env, ...(opts.env ?? {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr, json: () => JSON.parse(stdout) });
    });
    child.stdin.end(opts.input ?? '');
  });
}

let host: ChildProcess | undefined;
let nextId = 0;
const pending = new Map<number, (r: { code: number; stdout: string; stderr: string }) => void>();

function cliHost(): ChildProcess {
  if (host) return host;
  const child = fork(resolve(root, 'test', 'helpers', 'cli-host.mjs'), [], { cwd: root, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  child.on('message', (m: { id: number; code: number; stdout: string; stderr: string }) => {
    const done = pending.get(m.id);
    pending.delete(m.id);
    done?.(m);
  });
  child.on('exit', (code) => {
    if (host === child) host = undefined;
    for (const done of pending.values()) done({ code: 70, stdout: '', stderr: `the CLI host exited (${code})` });
    pending.clear();
  });
  // The host must not keep a finished test file alive.
  child.unref();
  child.channel?.unref();
  host = child;
  return child;
}

function hosted(args: string[], opts: CliOptions): Promise<CliRun> {
  const child = cliHost();
  const id = nextId++;
  // Without a pending command the channel need not keep this process alive.
  child.channel?.ref();
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      child.kill('SIGKILL');
      resolvePromise({ code: null, stdout: '', stderr: 'timed out', json: () => JSON.parse('') });
    }, opts.timeoutMs ?? 60_000);
    pending.set(id, (r) => {
      clearTimeout(timer);
      if (pending.size === 0) child.channel?.unref();
      resolvePromise({ ...r, json: () => JSON.parse(r.stdout) });
    });
    child.send({ id, args, env: { ...process.env, ...(opts.env ?? {}) } });
  });
}
