import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../../src/cli/main.js';
import { readFixture, skipWithoutFixtures } from '../../fixtures.js';
import { type StandinSet, startPcsStandin } from '../../helpers/pcs-standin.js';
import { type TestServer, startTestServer, tempDir } from '../../helpers/server.js';

/**
 * A collateral server (data dir `dir`) over a PCS stand-in serving `fixture`, warmed by GETting `warm`,
 * its cache exported to `dir2`/bundle.json; `dir2` is the data dir the CLI imports into. Everything is
 * stopped and removed afterwards.
 */
async function withExportedBundle(
  fixture: StandinSet,
  warm: readonly string[],
  run: (t: { server: TestServer; dir: string; dir2: string; file: string }) => Promise<void>,
): Promise<void> {
  const up = await startPcsStandin(fixture);
  const dir = tempDir();
  const dir2 = tempDir();
  const server = await startTestServer({ services: 'collateral', upstreamIntel: up.url }, { dataDir: dir });
  try {
    for (const path of warm) assert.equal((await server.send('GET', path)).status, 200, path);
    const file = join(dir2, 'bundle.json');
    assert.equal(await main(['collateral', 'export', file, '--data-dir', dir, '--db', server.ctx.config.db]), 0);
    await run({ server, dir, dir2, file });
  } finally {
    await server.stop();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(dir2, { recursive: true, force: true });
  }
}

test('conclave collateral export / import / status work on the data dir and the admin API', { skip: skipWithoutFixtures() }, async () => {
  await withExportedBundle('teepot', ['/sgx/certification/v4/tcb?fmspc=00906ED50000', '/sgx/certification/v4/qe/identity'], async ({ server, dir, dir2, file }) => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => out.push(String(s)) > 0) as typeof process.stdout.write;
    try {
      assert.equal(await main(['collateral', 'status', '--url', server.url, '--data-dir', dir, '--output', 'json']), 0);
    } finally {
      process.stdout.write = write;
    }
    assert.equal(JSON.parse(out.join('')).items.length, 2);
    assert.equal(await main(['collateral', 'import', file, '--data-dir', dir2]), 0);
    const bundle = JSON.parse(readFileSync(file, 'utf8')) as { items: { body: string }[] };
    const body = Buffer.from(bundle.items[0]!.body, 'base64');
    body[body.length - 5] = body[body.length - 5]! ^ 0x02;
    bundle.items[0]!.body = body.toString('base64');
    writeFileSync(file, JSON.stringify(bundle));
    assert.equal(await main(['collateral', 'import', file, '--data-dir', dir2]), 1);
  });
});

test('attack: conclave collateral import stores a bundle item filed under another target (the checks POST /admin/collateral/bundle makes)', { skip: skipWithoutFixtures() }, async () => {
  // docs/collateral.md: an offline bundle, through the admin API or `conclave collateral import`, goes through the
  // checks upstream answers pass. A bundle's keys, scopes and dates are unsigned: Intel's genuine TCB info of one
  // FMSPC filed under another one's scope would be served (and selected) as that platform's.
  await withExportedBundle('teepot', ['/sgx/certification/v4/tcb?fmspc=00906ED50000'], async ({ server, dir2, file }) => {
    const bundle = JSON.parse(readFileSync(file, 'utf8')) as { items: { key: string; kind: string; scope: string }[] };
    const tcb = bundle.items.find((i) => i.kind === 'tcb')!;
    const refile = (s: string) => s.replace(/00906ED50000/i, '00606A000000');
    assert.notEqual(refile(tcb.scope), tcb.scope);
    Object.assign(tcb, { key: refile(tcb.key), scope: refile(tcb.scope) });
    writeFileSync(file, JSON.stringify(bundle));
    const admin = await server.send('POST', '/admin/collateral/bundle', { headers: { authorization: `Bearer ${await server.adminToken()}` }, body: JSON.parse(readFileSync(file, 'utf8')) });
    assert.equal(admin.status, 400, `the admin API refuses it: ${admin.text}`);
    assert.equal(admin.json().error.code, 'collateral.mismatch');
    assert.notEqual(await main(['collateral', 'import', file, '--data-dir', dir2]), 0, 'the CLI refuses it too');
    assert.equal(await main(['collateral', 'export', join(dir2, 'after.json'), '--data-dir', dir2]), 0);
    const stored = JSON.parse(readFileSync(join(dir2, 'after.json'), 'utf8')) as { items: { key: string }[] };
    assert.deepEqual(stored.items.map((i) => i.key), [], 'nothing was imported');
  });
});

test('conclave collateral import stores the dates and evaluation number an item signs, not the ones the bundle gives it', { skip: skipWithoutFixtures() }, async () => {
  // A bundle's evalNumber, issueDate and nextUpdate are unsigned: a TCB info labelled with a later evaluation
  // number than it signs is picked as the newest one for its FMSPC, and one labelled with a later nextUpdate is
  // served as fresh after it expired. The import keeps the item (its key is right) with its signed values.
  await withExportedBundle('teepot', ['/sgx/certification/v4/tcb?fmspc=00906ED50000'], async ({ dir2, file }) => {
    type Item = { key: string; kind: string; evalNumber: number | null; issueDate: number | null; nextUpdate: number | null };
    const bundle = JSON.parse(readFileSync(file, 'utf8')) as { items: Item[] };
    const tcb = bundle.items.find((i) => i.kind === 'tcb')!;
    const signed = { evalNumber: tcb.evalNumber, issueDate: tcb.issueDate, nextUpdate: tcb.nextUpdate };
    assert.equal(typeof signed.evalNumber, 'number');
    Object.assign(tcb, { evalNumber: signed.evalNumber! + 100, issueDate: Date.parse('2099-01-01T00:00:00Z'), nextUpdate: Date.parse('2099-02-01T00:00:00Z') });
    writeFileSync(file, JSON.stringify(bundle));
    assert.equal(await main(['collateral', 'import', file, '--data-dir', dir2]), 0);
    assert.equal(await main(['collateral', 'export', join(dir2, 'after.json'), '--data-dir', dir2]), 0);
    const stored = (JSON.parse(readFileSync(join(dir2, 'after.json'), 'utf8')) as { items: Item[] }).items.find((i) => i.key === tcb.key)!;
    assert.deepEqual({ evalNumber: stored.evalNumber, issueDate: stored.issueDate, nextUpdate: stored.nextUpdate }, signed, 'the stored item carries its signed dates and evaluation number');
  });
});

test('conclave collateral import refuses an item older than the cached copy (a rollback), nothing of the bundle stored', { skip: skipWithoutFixtures() }, async () => {
  // The store the CLI imports into holds a Platform CRL of 2026-02-18 (57 revocations); a bundle carrying Intel's
  // genuine older one (44 revocations), its unsigned dates made to look newest, would un-revoke 13 PCK
  // certificates. POST /admin/collateral/bundle answers 409 collateral.rollback; the CLI must refuse it too.
  await withExportedBundle('tdx-v5', ['/sgx/certification/v4/pckcrl?ca=platform&encoding=der'], async ({ dir2, file }) => {
    assert.equal(await main(['collateral', 'import', file, '--data-dir', dir2]), 0, 'the current bundle imports');
    assert.equal(await main(['collateral', 'import', file, '--data-dir', dir2]), 0, 'and imports again (equal is not older)');
    type Item = { key: string; body: string; issueDate: number | null; nextUpdate: number | null };
    const bundle = JSON.parse(readFileSync(file, 'utf8')) as { items: Item[] };
    const crl = bundle.items.find((i) => i.key === 'sgx/pckcrl/platform')!;
    const current = crl.body;
    Object.assign(crl, { body: readFixture('intel', 'tdx-v4-azure-trustee', 'pck_crl.der').toString('base64'), issueDate: Date.parse('2030-01-01T00:00:00Z'), nextUpdate: Date.parse('2031-01-01T00:00:00Z') });
    writeFileSync(file, JSON.stringify(bundle));
    assert.equal(await main(['collateral', 'import', file, '--data-dir', dir2]), 1, 'the CLI refuses the rollback');
    assert.equal(await main(['collateral', 'export', join(dir2, 'after.json'), '--data-dir', dir2]), 0);
    const stored = (JSON.parse(readFileSync(join(dir2, 'after.json'), 'utf8')) as { items: Item[] }).items.find((i) => i.key === 'sgx/pckcrl/platform')!;
    assert.equal(stored.body, current, 'the newer CRL is still the one stored');
  });
});
