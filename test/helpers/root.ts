/**
 * Where the repository is, for tests that read its files or run its CLI. Tests run either from source
 * (node --import tsx) or compiled once by scripts/run-tests.mjs into .tmp/tests-*\/ (same tree below it),
 * so a path relative to a test module is not a path in the repository: the root is the nearest folder
 * above this module with Conclave's package.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'conclave') return dir;
    if (dirname(dir) === dir) throw new Error(`no Conclave package.json above ${from}`);
  }
}

export const ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

/** True when this test process runs the TypeScript sources through tsx rather than the compiled copy. */
export const FROM_SOURCE = import.meta.url.endsWith('.ts');

/**
 * Node arguments that run the CLI's `main()` of this test build (`src/cli/main.ts` through tsx when the
 * tests run from source, its compiled copy beside this module otherwise) with the arguments that follow.
 */
export function cliFromSourceArgs(): string[] {
  const main = FROM_SOURCE ? pathToFileURL(join(ROOT, 'src', 'cli', 'main.ts')).href : new URL('../../src/cli/main.js', import.meta.url).href;
  const script = `const { main } = await import(${JSON.stringify(main)}); process.exitCode = await main(process.argv.slice(1));`;
  return [...(FROM_SOURCE ? ['--import', 'tsx'] : []), '--input-type=module', '--eval', script];
}
