import assert from 'node:assert/strict';
import { test } from 'node:test';
import { socketTimeouts } from './app.js';

test('socket timeouts: the whole request within requestTimeoutMs, headers and the TLS handshake within at most 60 s of it', () => {
  assert.deepEqual(socketTimeouts(300_000), { requestTimeout: 300_000, headersTimeout: 60_000, handshakeTimeout: 60_000, connectionsCheckingInterval: 15_000 });
  assert.deepEqual(socketTimeouts(3_600_000), { requestTimeout: 3_600_000, headersTimeout: 60_000, handshakeTimeout: 60_000, connectionsCheckingInterval: 15_000 });
  // Under 60 s the headers get the whole request timeout (node refuses a headers timeout over the request's),
  // checked every quarter of it, never more often than every 50 ms.
  assert.deepEqual(socketTimeouts(1000), { requestTimeout: 1000, headersTimeout: 1000, handshakeTimeout: 1000, connectionsCheckingInterval: 250 });
  assert.deepEqual(socketTimeouts(100), { requestTimeout: 100, headersTimeout: 100, handshakeTimeout: 100, connectionsCheckingInterval: 50 });
});
