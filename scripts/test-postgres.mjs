#!/usr/bin/env node
// The PostgreSQL pass alone: the integration suites (test/integration/**) with every test server on its own
// fresh PostgreSQL database (CONCLAVE_TEST_DB=postgres, see test/helpers/server.ts). The server is
// CONCLAVE_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres). Extra arguments filter
// the files as for scripts/run-tests.mjs. Needs a build first (the scale-out suites spawn bin/conclave.js).
// `npm test` runs this pass beside the others (scripts/run-tests.mjs --pass=sqlite,postgres,hsm).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const r = spawnSync(process.execPath, [join(import.meta.dirname, 'run-tests.mjs'), '--pass=postgres', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
