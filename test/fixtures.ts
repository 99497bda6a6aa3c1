/**
 * The one module that knows where the real vendor-signed vectors live: test/vectors/ in the repository
 * (provenance in test/vectors/PROVENANCE.md), or the folder CONCLAVE_FIXTURES names. A fresh clone has
 * them all, so no real-vector test skips; a missing folder (only possible through CONCLAVE_FIXTURES)
 * skips them with a message outside CI and fails them under CI=true.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT as projectRoot } from './helpers/root.js';

export const FIXTURES_DIR = process.env.CONCLAVE_FIXTURES ?? resolve(projectRoot, 'test', 'vectors');

export function fixturesAvailable(): boolean {
  return existsSync(join(FIXTURES_DIR, 'intel')) && existsSync(join(FIXTURES_DIR, 'amd'));
}

/**
 * For node:test's `{ skip }` option: false when the fixtures are there; a skip message otherwise.
 * Under CI the fixtures are mandatory, so this throws instead of skipping.
 */
export function skipWithoutFixtures(): false | string {
  if (fixturesAvailable()) return false;
  if (process.env.CI === 'true') throw new Error(`fixtures missing at ${FIXTURES_DIR} (required under CI)`);
  return `fixtures not found at ${FIXTURES_DIR}; set CONCLAVE_FIXTURES`;
}

export function fixturePath(...parts: string[]): string {
  return join(FIXTURES_DIR, ...parts);
}

export function readFixture(...parts: string[]): Buffer {
  return readFileSync(fixturePath(...parts));
}

export function readFixtureText(...parts: string[]): string {
  return readFileSync(fixturePath(...parts), 'utf8');
}

export function readFixtureJson<T = unknown>(...parts: string[]): T {
  return JSON.parse(readFixtureText(...parts)) as T;
}

