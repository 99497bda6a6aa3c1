/**
 * Bounded work: serialised GPU evidence sent as a JSON string (the request's `gpuEvidence`, composite
 * attestation on /attest/TdxVm and /attest/SevSnpVm) is JSON decoded from inside the request, which the
 * edge's depth check never saw: nested deeper than MAX_JSON_DEPTH (64) it is gpu.malformed naming the bound,
 * before JSON.parse reads it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isConclaveError } from '../../core/errors.js';
import { parseSerializedGpuEvidence } from './serialized.js';

const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

describe('serialised GPU evidence as a JSON string is bounded in depth', () => {
  test('a 480 000-deep array, and 65 levels inside a GPU entry or the trustee wrapper, are gpu.malformed naming the bound', () => {
    for (const [what, text] of [
      ['a 480 000-deep array', deep(480_000)],
      ['65 levels inside a GPU entry', `[{"arch":"HOPPER","x":${deep(63)}}]`],
      ['65 levels inside the trustee wrapper', `{"device_evidence_list":[{"x":${deep(62)}}]}`],
    ] as const) {
      assert.throws(() => parseSerializedGpuEvidence(text), (e) => isConclaveError(e, 'gpu.malformed') && e.detail?.maxDepth === 64, what);
    }
  });

  test('64 levels are read (and refused for what they say, not for their depth)', () => {
    assert.throws(
      () => parseSerializedGpuEvidence(`[{"arch":"HOPPER","x":${deep(62)}}]`),
      (e) => isConclaveError(e, 'gpu.malformed') && e.detail?.maxDepth === undefined,
    );
  });
});
