/**
 * The NVIDIA reference source's in-memory answers are bounded: the RIM ids and OCSP requests it is asked
 * for come from GPU evidence before it is verified (any id, any certificate), so every distinct one
 * must not stay held for the life of the process.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createFakeNvidiaHierarchy, issueP384 } from '../evidence/nvidia/testing.js';
import type { HttpClient, HttpResult } from './http.js';
import { NVIDIA_SOURCE_MEMO_MAX, createNvidiaRimSource } from './collateral-source.js';

/** An upstream that knows no RIM and answers no OCSP request usefully, counting the requests per URL/body. */
function countingUpstream() {
  const asked = new Map<string, number>();
  const answer = (url: string): HttpResult => ({ url, status: 404, headers: {}, body: Buffer.alloc(0), attempts: 1 });
  const count = (k: string) => asked.set(k, (asked.get(k) ?? 0) + 1);
  const http: HttpClient = {
    async request(_method, url, opts) {
      count(`${url}#${Buffer.from(opts?.body ?? '').toString('base64')}`);
      return answer(url);
    },
    async get(url) {
      count(url);
      return answer(url);
    },
    inFlight: () => 0,
    close: () => undefined,
  };
  return { http, asked, total: () => [...asked.values()].reduce((a, b) => a + b, 0) };
}

describe('NVIDIA reference source memo', () => {
  test('an unknown RIM id is remembered, but not past the bound: the oldest is asked again', async () => {
    const up = countingUpstream();
    const src = createNvidiaRimSource(() => 'http://127.0.0.1:9', up.http, () => 0);
    assert.equal(await src.getRim('NV_GPU_DRIVER_GH100_0'), undefined);
    assert.equal(await src.getRim('NV_GPU_DRIVER_GH100_0'), undefined);
    assert.equal(up.total(), 1, 'a remembered answer is not asked again');
    for (let i = 1; i <= NVIDIA_SOURCE_MEMO_MAX; i++) await src.getRim(`NV_GPU_DRIVER_GH100_${i}`);
    assert.equal(up.total(), NVIDIA_SOURCE_MEMO_MAX + 1);
    // The first id was evicted by the distinct ones after it: the memo holds at most its bound.
    await src.getRim('NV_GPU_DRIVER_GH100_0');
    assert.equal(up.total(), NVIDIA_SOURCE_MEMO_MAX + 2);
    // The newest is still remembered.
    await src.getRim(`NV_GPU_DRIVER_GH100_${NVIDIA_SOURCE_MEMO_MAX}`);
    assert.equal(up.total(), NVIDIA_SOURCE_MEMO_MAX + 2);
  });

  test('OCSP requests for distinct certificates share the same bound', async () => {
    const h = createFakeNvidiaHierarchy();
    const up = countingUpstream();
    const src = createNvidiaRimSource(() => 'http://127.0.0.1:9', up.http, () => 0);
    const certs = Array.from({ length: 3 }, (_, i) =>
      issueP384({ serial: 1000n + BigInt(i), subject: `leaf ${i}`, issuer: h.archCa, ca: false, notBefore: new Date('2024-01-01T00:00:00Z'), notAfter: new Date('2030-01-01T00:00:00Z') }).cert,
    );
    await src.getOcsp!(certs[0]!, h.archCa.cert);
    await src.getOcsp!(certs[0]!, h.archCa.cert);
    assert.equal(up.total(), 1);
    for (let i = 0; i < NVIDIA_SOURCE_MEMO_MAX; i++) await src.getRim(`filler_${i}`);
    await src.getOcsp!(certs[0]!, h.archCa.cert);
    assert.equal(up.total(), NVIDIA_SOURCE_MEMO_MAX + 2, 'the OCSP answer was evicted by distinct keys after it');
  });
});
