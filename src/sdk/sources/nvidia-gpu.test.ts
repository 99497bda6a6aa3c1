import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { readFixtureText, skipWithoutFixtures } from '../../../test/fixtures.js';
import { isConclaveError } from '../../core/errors.js';
import { nvattestCollector } from './nvidia-gpu.js';

const skip = skipWithoutFixtures();

/** A stand-in for NVIDIA's nvattest that replays recorded evidence and writes down its arguments. */
function fakeNvattest(output: string): { program: string; args: () => string } {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-nvattest-'));
  writeFileSync(join(dir, 'out.json'), output);
  const program = join(dir, 'nvattest');
  writeFileSync(program, `#!/bin/sh\necho "$@" > "${dir}/args"\ncat "${dir}/out.json"\n`);
  chmodSync(program, 0o755);
  return { program, args: () => readFileSync(join(dir, 'args'), 'utf8').trim() };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isConclaveError(e)) return e.code;
    throw e;
  }
  return 'ok';
}

describe('GPU evidence through nvattest (recorded evidence)', { skip }, () => {
  if (skip) return;
  const recorded = readFixtureText('nvidia', 'hopper-multi-gpu-evidence-json', 'multi_gpu_hopper.json');
  const nonce = Buffer.from(JSON.parse(recorded)[0].nonce as string, 'hex');

  test('asks nvattest for the nonce and returns one evidence per GPU, each answering it', async () => {
    const fake = fakeNvattest(JSON.stringify({ evidences: JSON.parse(recorded).slice(0, 1), result_code: 0, result_message: 'Ok' }));
    const list = await nvattestCollector({ program: fake.program }).collect(nonce);
    assert.equal(list.length, 1);
    assert.equal(fake.args(), `collect-evidence --device gpu --nonce ${nonce.toString('hex')} --format json`);
    assert.equal(list[0]!.arch, 'HOPPER');
    assert.match(list[0]!.certificateChain, /BEGIN CERTIFICATE/);
  });

  test('a report for another nonce, a failed collection, no output or no program are errors, never evidence', async () => {
    const other = JSON.parse(readFixtureText('nvidia', 'hopper-multi-gpu-evidence-json', 'ppcie_gpu_evidence_8gpu.json'))[0];
    const mixed = fakeNvattest(JSON.stringify({ evidences: [JSON.parse(recorded)[0], other], result_code: 0 }));
    assert.equal(await code(nvattestCollector({ program: mixed.program }).collect(nonce)), 'sdk.evidence_failed'); // GPU 1 answered another nonce
    const four = fakeNvattest(JSON.stringify({ evidences: JSON.parse(recorded), result_code: 0 }));
    assert.equal((await nvattestCollector({ program: four.program }).collect(nonce)).length, 4);
    const failed = fakeNvattest(JSON.stringify({ evidences: [], result_code: 3, result_message: 'NVML not initialised' }));
    assert.equal(await code(nvattestCollector({ program: failed.program }).collect(nonce)), 'sdk.evidence_failed');
    assert.equal(await code(nvattestCollector({ program: fakeNvattest('not json').program }).collect(nonce)), 'sdk.evidence_failed');
    assert.equal(await code(nvattestCollector({ program: '/nonexistent/nvattest' }).collect(nonce)), 'sdk.evidence_source_unavailable');
  });
});
