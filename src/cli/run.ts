// Development entry: `node --import tsx src/cli/run.ts <command> …` runs the CLI from source (the
// published `conclave` binary, bin/conclave.js, runs the compiled dist/ instead).
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
