import assert from 'node:assert/strict';
import { isConclaveError } from '../../src/core/errors.js';

/** What a verification decided: the error code and message, or the result (for comparing two verifiers). */
export async function outcome(fn: () => unknown): Promise<{ code: string; message: string } | { result: unknown }> {
  try {
    return { result: await fn() };
  } catch (e) {
    assert.ok(isConclaveError(e), `threw a non-ConclaveError ${String(e)}`);
    return { code: e.code, message: e.message };
  }
}
