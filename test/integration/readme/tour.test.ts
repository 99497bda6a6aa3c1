/**
 * The README's quick tour, pasted line by line into bash in a fresh directory, must work. The only
 * substitutions: `npm ci && npm start` becomes the built binary with the same flags (`npm start` is
 * `conclave serve --simulate` after a build, and this suite runs after `npm run build`), and port 8443
 * becomes a free port so the test never collides with a server on the machine.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, } from 'node:path';
import { test } from 'node:test';
import { ROOT as root } from '../../helpers/root.js';


function tourLines(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const block = /<!-- tour:begin -->\s*```sh\n([\s\S]*?)```\s*<!-- tour:end -->/.exec(readme);
  assert.ok(block, 'README.md has a tour block between <!-- tour:begin --> and <!-- tour:end -->');
  return block[1]!.split('\n').filter((l) => l.trim() !== '');
}

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

test('the README quick tour works when pasted into a fresh directory', { timeout: 240_000 }, async () => {
  const lines = tourLines();
  assert.equal(lines[0], 'npm ci && npm start &', 'the tour starts the server the way a new user does');
  const port = await freePort();
  const work = mkdtempSync(join(tmpdir(), 'conclave-tour-'));
  symlinkSync(join(root, 'bin'), join(work, 'bin'));
  const script = [
    'set -euo pipefail',
    "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT",
    `node ${JSON.stringify(join(root, 'bin', 'conclave.js'))} serve --simulate --log-level warn &`,
    ...lines.slice(1),
  ]
    .join('\n')
    .replaceAll('8443', String(port));
  const run = await new Promise<{ code: number | null; out: string }>((res) => {
    const child = spawn('bash', ['-c', script], { cwd: work, env: { ...process.env, CONCLAVE_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => res({ code, out }));
  });
  try {
    assert.equal(run.code, 0, run.out.slice(-3000));
    assert.match(run.out, /the released key IS the vault key/);
    assert.match(run.out, /"kty": "RSA"/, 'the released key was unwrapped with the TEE key');
    assert.match(run.out, /"released": true/, 'the policy dry run holds');
    assert.match(run.out, /"kind":"head"/, 'the log monitor verified a signed tree head');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
