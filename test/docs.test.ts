import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fullHelp, leafCommands, renderCliReference, renderErrorsDoc } from '../scripts/gen-docs.js';
import { join } from 'node:path';
import { ROOT } from './helpers/root.js';

const stale = 'stale: run `node --import tsx scripts/gen-docs.ts` and commit the result';

test('docs/errors.md is in step with the error catalogue', () => {
  assert.equal(readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8'), renderErrorsDoc(), stale);
});

test('docs/cli.md is in step with the command definitions', () => {
  assert.equal(readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8'), renderCliReference(), stale);
});

test('every runnable command shows an example under --help', () => {
  const missing = leafCommands()
    .filter(({ cmd }) => !/Examples?:/.test(fullHelp(cmd)))
    .map(({ name }) => name);
  assert.deepEqual(missing, []);
});
