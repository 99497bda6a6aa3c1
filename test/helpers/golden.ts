/**
 * Golden claim files (test/golden/azure-vtpm/): the full claim set of a token from a real vector, so a
 * renamed or extra claim fails a test. `UPDATE_GOLDEN=1` rewrites them (review the diff before committing).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './root.js';

export const GOLDEN = join(ROOT, 'test', 'golden', 'azure-vtpm');

export function payload(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

/** The claims minus what changes per issuance (times, token id, issuer URL with its port). */
export function stable(claims: Record<string, any>): Record<string, any> {
  const { iat, nbf, exp, jti, iss, ...rest } = claims;
  assert.equal(typeof iat, 'number');
  assert.equal(exp - iat, 28800);
  assert.match(jti, /^[0-9a-f]{64}$/);
  assert.match(iss, /^https:\/\/127\.0\.0\.1:\d+$/);
  return rest;
}

/** Compares with the golden file; `UPDATE_GOLDEN=1` rewrites it (review the diff before committing). */
export function assertGolden(name: string, claims: Record<string, any>): void {
  const file = join(GOLDEN, `${name}.json`);
  const actual = `${JSON.stringify(claims, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.CI === 'true') assert.fail(`golden file ${file} is missing`);
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, actual);
  }
  assert.deepEqual(claims, JSON.parse(readFileSync(file, 'utf8')), `claims differ from ${file}`);
}
