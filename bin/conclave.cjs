#!/usr/bin/env node
// The `conclave` executable: runs the compiled CLI (`npm run build` produces dist/).
// CommonJS on purpose: libuv creates its threadpool on first use, reading UV_THREADPOOL_SIZE then, and an
// ES module entry has used it already while loading. Signatures run on that pool (src/core/async-crypto.ts),
// so it gets a thread per core, at least libuv's default 4; an operator's own setting wins.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, require('node:os').availableParallelism()));
import('./conclave.js');
