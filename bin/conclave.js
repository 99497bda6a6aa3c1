#!/usr/bin/env node
// The `conclave` executable: runs the compiled CLI (`npm run build` produces dist/).
// Long-running commands (serve, agent) keep the process alive through their open servers.
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
