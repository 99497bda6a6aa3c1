import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fullHelp, leafCommands, renderCliReference, renderErrorsDoc } from '../scripts/gen-docs.js';

const stale = 'stale: run `node --import tsx scripts/gen-docs.ts` and commit the result';

test('docs/errors.md is in step with the error catalogue', () => {
  assert.equal(readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8'), renderErrorsDoc(), stale);
});

test('docs/cli.md is in step with the command definitions', () => {
  assert.equal(readFileSync(new URL('../docs/cli.md', import.meta.url), 'utf8'), renderCliReference(), stale);
});

test('every runnable command shows an example under --help', () => {
  const missing = leafCommands()
    .filter(({ cmd }) => !/Examples?:/.test(fullHelp(cmd)))
    .map(({ name }) => name);
  assert.deepEqual(missing, []);
});
