import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../../src/config/config.js';
import { REDACT_PATHS, startServer } from '../../../src/main.js';
import { httpsClient } from '../../helpers/https.js';
import { tempDir } from '../../helpers/server.js';

test('logs are structured JSON with a request id on every request line, and never carry secrets', async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const logger = pino({ level: 'debug', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
  const server = await startServer(loadConfig({ flags: { dataDir: tempDir(), port: 0, simulate: true }, env: {} }), { logger });
  try {
    const send = httpsClient(server.url, server.caPath);
    const form = `grant_type=client_credentials&client_id=${server.admin.clientId}&client_secret=${server.admin.clientSecret}`;
    const token = (await send('POST', '/oauth2/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })).json().access_token as string;
    await send('GET', '/keys?api-version=7.4', { headers: { authorization: `Bearer ${token}` } });
    await send('POST', '/oauth2/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&client_id=x&client_secret=wrong-secret-value' });
    // PCCS's shared secrets travel in headers of their own (PCKIDRetrievalTool, PCCSAdminTool).
    await send('GET', '/sgx/certification/v4/platforms', { headers: { 'admin-token': 'pccs-admin-token-value' } });
    await send('POST', '/sgx/certification/v4/platforms', { headers: { 'user-token': 'pccs-user-token-value', 'content-type': 'application/json' }, body: '{}' });
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const requestLines = parsed.filter((l) => l.req !== undefined || l.res !== undefined);
    assert.ok(requestLines.length >= 6, 'request and response lines are logged');
    for (const l of requestLines) assert.match(String(l.reqId), /^[0-9a-f-]{36}$/, 'every request line has the request id');
    const all = lines.join('\n');
    assert.ok(!all.includes(server.admin.clientSecret), 'the client secret is not logged');
    assert.ok(!all.includes(token.split('.')[2]!), 'the bearer token is not logged');
    assert.ok(!all.includes('wrong-secret-value'), 'a wrong secret is not logged either');
    assert.ok(!all.includes('pccs-admin-token-value'), 'the PCCS admin-token is not logged');
    assert.ok(!all.includes('pccs-user-token-value'), 'the PCCS user-token is not logged');
  } finally {
    await server.close();
  }
});
