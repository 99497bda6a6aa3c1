import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../../src/cli/main.js';
import { skipWithoutFixtures } from '../../fixtures.js';
import { startPcsStandin } from '../../helpers/pcs-standin.js';
import { startTestServer, tempDir } from '../../helpers/server.js';

test('conclave collateral export / import / status work on the data dir and the admin API', { skip: skipWithoutFixtures() }, async () => {
  const up = await startPcsStandin('teepot');
  const dir = tempDir();
  const dir2 = tempDir();
  const server = await startTestServer({ services: 'collateral', upstreamIntel: up.url }, { dataDir: dir });
  try {
    assert.equal((await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000')).status, 200);
    assert.equal((await server.send('GET', '/sgx/certification/v4/qe/identity')).status, 200);
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => out.push(String(s)) > 0) as typeof process.stdout.write;
    try {
      assert.equal(await main(['collateral', 'status', '--url', server.url, '--data-dir', dir, '--output', 'json']), 0);
    } finally {
      process.stdout.write = write;
    }
    assert.equal(JSON.parse(out.join('')).items.length, 2);
    const file = join(dir2, 'bundle.json');
    assert.equal(await main(['collateral', 'export', file, '--data-dir', dir, '--db', server.ctx.config.db]), 0);
    assert.equal(await main(['collateral', 'import', file, '--data-dir', dir2]), 0);
    const bundle = JSON.parse(readFileSync(file, 'utf8')) as { items: { body: string }[] };
    const body = Buffer.from(bundle.items[0]!.body, 'base64');
    body[body.length - 5] = body[body.length - 5]! ^ 0x02;
    bundle.items[0]!.body = body.toString('base64');
    writeFileSync(file, JSON.stringify(bundle));
    assert.equal(await main(['collateral', 'import', file, '--data-dir', dir2]), 1);
  } finally {
    await server.stop();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(dir2, { recursive: true, force: true });
  }
});
