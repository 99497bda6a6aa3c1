#!/usr/bin/env node
// Runs the vault suites (test/integration/vault, test/integration/hsm, test/integration/e2e) with every test server keeping
// its keys in a SoftHSM2 token (CONCLAVE_TEST_HSM=softhsm, see test/helpers/server.ts and
// test/helpers/softhsm.ts). Extra arguments replace the default file filters. Without SoftHSM the run
// is skipped with a message, except under CI=true, where it fails.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const module = process.env.CONCLAVE_TEST_PKCS11_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';
const util = spawnSync('softhsm2-util', ['--version'], { encoding: 'utf8' });
const missing = !existsSync(module) ? `PKCS#11 module ${module} is not installed` : util.error || util.status !== 0 ? 'softhsm2-util is not on PATH' : undefined;
if (missing) {
  if (process.env.CI === 'true') {
    console.error(`test-hsm: ${missing} (CI=true: failing; install softhsm2)`);
    process.exit(1);
  }
  console.warn(`test-hsm: skipped, ${missing} (apt-get install softhsm2)`);
  process.exit(0);
}
const filters = process.argv.slice(2);
const r = spawnSync(process.execPath, [join(import.meta.dirname, 'run-tests.mjs'), ...(filters.length > 0 ? filters : ['test/integration/vault/', 'test/integration/hsm/', 'test/integration/e2e/'])], {
  stdio: 'inherit',
  env: { ...process.env, CONCLAVE_TEST_HSM: 'softhsm' },
});
process.exit(r.status ?? 1);
