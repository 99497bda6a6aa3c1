import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

test('the published executable is the CommonJS launcher (it sizes the threadpool before ES modules load) and runs the CLI', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string; bin: Record<string, string> };
  assert.equal(pkg.bin.conclave, 'bin/conclave.cjs');
  const r = spawnSync(process.execPath, ['bin/conclave.cjs', '--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), pkg.version);
});
