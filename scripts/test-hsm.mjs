#!/usr/bin/env node
// The SoftHSM2 pass alone: the vault suites (test/integration/vault, test/integration/hsm, test/integration/e2e,
// and the attack suites PASSES.hsm.files in scripts/run-tests.mjs names)
// with every test server keeping its keys in a SoftHSM2 token (CONCLAVE_TEST_HSM=softhsm, see
// test/helpers/server.ts and test/helpers/softhsm.ts). Extra arguments filter the files as for
// scripts/run-tests.mjs. Without SoftHSM the pass is skipped with a message, except under CI=true, where it fails.
// `npm test` runs this pass beside the others (scripts/run-tests.mjs --pass=sqlite,postgres,hsm).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const r = spawnSync(process.execPath, [join(import.meta.dirname, 'run-tests.mjs'), '--pass=hsm', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
