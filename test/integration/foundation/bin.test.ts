import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

test('the published executable is the CommonJS launcher (it sizes the threadpool before ES modules load) and runs the CLI', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string; bin: Record<string, string> };
  assert.equal(pkg.bin.conclave, 'bin/conclave.cjs');
  const r = spawnSync(process.execPath, ['bin/conclave.cjs', '--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), pkg.version);
});

test('`conclave serve` starts without a Node.js process warning (deprecations included) on stderr', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-bin-'));
  const child = spawn(process.execPath, ['bin/conclave.cjs', 'serve', '--simulate', '--port', '0', '--data-dir', join(dir, 'data')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
      const poll = setInterval(() => {
        if (/conclave listening on /.test(stdout)) {
          clearInterval(poll);
          resolve();
        }
      }, 50);
    });
    // The listening line comes after the server is built: every warning of its start-up is written by now.
    await new Promise((r) => setTimeout(r, 200));
    assert.doesNotMatch(stderr, /\(node:\d+\) /, stderr);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
});
