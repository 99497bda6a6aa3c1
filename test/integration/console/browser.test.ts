/**
 * The web console in headless Chromium (issue #19): sign in with the one-time link `conclave console`
 * prints; create a key with a release policy (validation pointing at the clause); see a denied release
 * from a simulated TEE with the wrong measurement, with its trace and the token's claims; run the
 * attestation playground on simulated evidence; see collateral fetched through the PCS stand-in; refuse a
 * reused and an expired link and a cross-site POST. axe-core finds no serious or critical violation on any
 * page. Screenshots go to test-artifacts/console/ (git-ignored). One browser, one page, one server.
 *
 * The server's clock sits in the validity window of the PCS stand-in's recorded collateral (June 2025),
 * and so does the page's.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { createCollateralStore } from '../../../src/storage/collateral-store.js';
import { ARTIFACTS, axeViolations, launchBrowser, skipWithoutBrowser, type TestBrowser } from '../../helpers/browser.js';
import { conclave } from '../../helpers/cli.js';
import { requireConsoleBuild } from '../../helpers/console.js';
import { type PcsStandin, startPcsStandin } from '../../helpers/pcs-standin.js';
import { type OidcProvider, startOidcProvider } from '../../helpers/oidc-provider.js';
import { startTestServer, type TestServer, tempDir } from '../../helpers/server.js';
import { generateRsaKeyPair } from '../../../src/core/keygen.js';

const API = 'api-version=2025-07-01';
const MEASUREMENT = 'a1'.repeat(48);
const WRONG = '00'.repeat(48);
const BASE = new Date('2025-06-02T09:00:00Z').getTime();

const skip = skipWithoutBrowser();

describe('web console in a browser', { skip }, () => {
  let up: PcsStandin;
  let idp: OidcProvider;
  let dataDir = '';
  let server: TestServer;
  let b: TestBrowser;
  let offsetMs = 0;
  const started = Date.now();
  const now = () => new Date(BASE + (Date.now() - started) + offsetMs);

  before(async () => {
    requireConsoleBuild();
    up = await startPcsStandin('teepot');
    dataDir = tempDir();
    idp = await startOidcProvider(dataDir, { audience: 'api://conclave-console', clientId: 'conclave-console', now });
    const oidc = { oidcIssuer: idp.url, oidcAudience: 'api://conclave-console', oidcAdminSubject: ['ops-admin'], oidcConsoleClientId: 'conclave-console' };
    server = await startTestServer({ simulate: true, upstreamIntel: up.url, upstreamAmd: up.url, ...oidc }, { now, dataDir });
    b = await launchBrowser(server.dataDir);
    await b.context.clock.setFixedTime(new Date(BASE + 60_000));
    b.page.on('dialog', (d) => void d.accept());
  });
  after(async () => {
    await b?.close();
    await server?.stop();
    await up?.close();
    await idp?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const bearer = async () => ({ authorization: `Bearer ${await server.adminToken()}` });
  const goto = async (hash: string, heading: string | RegExp) => {
    await b.page.evaluate((h) => {
      location.hash = h;
    }, hash);
    await b.page.getByRole('heading', { level: 1, name: heading }).waitFor();
  };
  const assertAccessible = async (what: string) => {
    const v = await axeViolations(b.page);
    assert.deepEqual(v, [], `${what}: ${JSON.stringify(v, null, 2)}`);
  };

  /** Runtime data binding a TEE transfer key, as `conclave sim transfer-key` prints it (one key for the file: no test opens a release with it). */
  let transferKey: string | undefined;
  const runtimeData = () => {
    transferKey ??= JSON.stringify({ keys: [{ ...generateRsaKeyPair(2048).publicKey.export({ format: 'jwk' }), kid: 'TpmEphemeralEncryptionKey', key_ops: ['encrypt'] }] });
    return Buffer.from(transferKey);
  };
  const snpEvidence = (measurement: string) => loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'snp', runtimeData: runtimeData(), measurement });
  const attest = async (measurement: string) => {
    const ev = snpEvidence(measurement);
    const r = await server.send('POST', `${ev.path}?api-version=2022-08-01`, { body: ev.body });
    assert.equal(r.status, 200, r.text);
    return r.json().token as string;
  };

  let link = '';

  test('the one-time link of `conclave console` signs in; the code leaves the address bar; the cookie is HttpOnly, Secure, SameSite=Strict', async () => {
    const run = await conclave(['console', '--data-dir', server.dataDir]);
    assert.equal(run.code, 0, run.stderr);
    link = run.stdout.trim();
    assert.match(link, new RegExp(`^${server.url}/console/#code=[A-Za-z0-9_-]{43}$`));
    await b.page.goto(link);
    await b.page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    assert.equal(new URL(b.page.url()).hash, '#/overview');
    await b.page.getByText('Simulated TEE trusted (--simulate).').waitFor();
    const cookie = (await b.context.cookies()).find((c) => c.name === '__Host-conclave-session');
    assert.ok(cookie, 'session cookie set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(await b.page.evaluate(() => document.cookie), '', 'the session is not readable by scripts');
    // Keyboard: the first Tab reaches the skip button, which moves focus to the page.
    await b.page.keyboard.press('Tab');
    assert.equal(await b.page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    await b.page.keyboard.press('Enter');
    assert.equal(await b.page.evaluate(() => document.activeElement?.id), 'main');
    await assertAccessible('overview');
  });

  test('a reused link and an expired link are refused, saying why', async () => {
    const other = await b.newContext();
    try {
      const page = await other.newPage();
      await page.goto(link);
      await page.getByRole('alert').filter({ hasText: 'already used' }).waitFor();
      await page.getByRole('heading', { level: 1, name: 'Sign in to the Conclave console' }).waitFor();
      const fresh = (await server.send('POST', '/console/api/sign-in-codes', { headers: await bearer() })).json().url as string;
      offsetMs = 6 * 60_000;
      await page.goto('about:blank');
      await page.goto(fresh);
      await page.getByRole('alert').filter({ hasText: 'expired' }).waitFor();
      assert.deepEqual(await other.cookies(), [], 'no session was opened');
    } finally {
      offsetMs = 0;
      await other.close();
    }
  });

  test('"Sign in with" the OIDC issuer: to the provider and back, signed in as <issuer>#<sub>', async () => {
    const other = await b.newContext();
    try {
      const page = await other.newPage();
      await page.goto(`${server.url}/console/`);
      await page.getByRole('link', { name: `Sign in with ${idp.url}` }).click();
      await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
      await page.getByText('User ops-admin (administrator)').waitFor();
      assert.equal(new URL(page.url()).hash, '#/overview');
      assert.ok(idp.requests.includes('GET /authorize') && idp.requests.includes('POST /token'));
    } finally {
      await other.close();
    }
  });

  test('sign in with a client id and secret on the sign-in page (accessible); a wrong secret is refused there', async () => {
    const reg = await server.send('POST', '/admin/clients', { headers: await bearer(), body: { displayName: 'console-operator' } });
    assert.ok(reg.status < 300, reg.text);
    const { clientId, clientSecret } = reg.json() as { clientId: string; clientSecret: string };
    const other = await b.newContext();
    try {
      const page = await other.newPage();
      await page.goto(`${server.url}/console/`);
      await page.getByRole('heading', { level: 1, name: 'Sign in to the Conclave console' }).waitFor();
      const v = await axeViolations(page);
      assert.deepEqual(v, [], `sign-in: ${JSON.stringify(v, null, 2)}`);
      await page.screenshot({ path: join(ARTIFACTS, 'signin.png'), fullPage: true });
      await page.getByLabel('Client ID').fill(clientId);
      await page.getByLabel('Client secret').fill(`${clientSecret}x`);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByRole('alert').filter({ hasText: 'Sign-in failed' }).waitFor();
      assert.deepEqual(await other.cookies(), [], 'a wrong secret opens no session');
      await page.getByLabel('Client secret').fill(clientSecret);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
      await page.getByText('console-operator', { exact: true }).waitFor();
      assert.ok((await other.cookies()).some((c) => c.name === '__Host-conclave-session'), 'the session cookie is set');
    } finally {
      await other.close();
    }
  });

  test('create a key with a release policy: the editor validates as you type and points at the clause', async () => {
    await goto('#/keys', 'Keys');
    await assertAccessible('keys');
    await b.page.getByLabel('Name', { exact: true }).fill('app-key');
    const editor = b.page.getByLabel('Release policy (JSON)');
    const bad = { version: '1.0.0', anyOf: [{ authority: server.url, allOf: [{ claim: 'x-ms-sevsnpvm-is-debuggable', equals: 'false' }, { claim: 'x-ms-sevsnpvm-launchmeasurement', greater: 'not-a-number' }] }] };
    await editor.fill(JSON.stringify(bad, null, 2));
    await b.page.getByText('Invalid at /anyOf/0/allOf/1/greater').waitFor();
    assert.equal(await editor.getAttribute('aria-invalid'), 'true');
    assert.equal(await b.page.locator('li.invalid[data-path="/anyOf/0/allOf/1"]').count(), 1, 'the tree marks the clause');
    assert.equal(await b.page.getByRole('button', { name: 'Create key' }).isDisabled(), true);
    await b.screenshot('keys-policy-invalid');
    const good = { version: '1.0.0', anyOf: [{ authority: server.url, allOf: [{ claim: 'x-ms-sevsnpvm-is-debuggable', equals: 'false' }, { claim: 'x-ms-sevsnpvm-launchmeasurement', equals: MEASUREMENT }] }] };
    await editor.fill(JSON.stringify(good, null, 2));
    await b.page.getByText('Valid release policy.').waitFor();
    await b.page.getByRole('button', { name: 'Create key' }).click();
    await b.page.getByRole('heading', { level: 1, name: 'Key app-key' }).waitFor();
    await b.page.locator('.policy-tree').getByText('x-ms-sevsnpvm-launchmeasurement').waitFor();
    // The release role for the administrator, on this key, from the key's page.
    await b.page.getByLabel('Principal (client id or issuer#sub)').fill(server.admin.clientId);
    await b.page.getByRole('button', { name: 'Assign' }).click();
    await b.page.getByRole('button', { name: `Remove Key Vault Crypto Service Release User from ${server.admin.clientId}` }).waitFor();
    // Rotate, disable and enable again.
    await b.page.getByRole('button', { name: 'Rotate' }).click();
    await b.page.getByRole('table', { name: 'Versions of app-key' }).getByRole('row').nth(2).waitFor();
    await b.page.getByRole('button', { name: 'Disable' }).click();
    await b.page.locator('.facts').getByText('disabled', { exact: true }).waitFor();
    await b.page.getByRole('button', { name: 'Enable' }).click();
    await b.page.locator('.facts').getByText('enabled', { exact: true }).waitFor();
    await assertAccessible('key');
    await b.screenshot('key');
    const key = await server.send('GET', `/keys/app-key?${API}`, { headers: await bearer() });
    assert.equal(key.status, 200);
    assert.equal(key.json().attributes.exportable, true);
  });

  test("edit a key's release policy: the editor points at the failing clause; the saved policy is the key's", async () => {
    const policy = (allOf: unknown[]) => ({ version: '1.0.0', anyOf: [{ authority: server.url, allOf }] });
    const data = Buffer.from(JSON.stringify(policy([{ claim: 'x-ms-sevsnpvm-is-debuggable', equals: 'false' }]))).toString('base64url');
    const created = await server.send('POST', `/keys/edit-key/create?${API}`, {
      headers: await bearer(),
      body: { kty: 'EC-HSM', crv: 'P-256', attributes: { exportable: true }, release_policy: { contentType: 'application/json; charset=utf-8', data } },
    });
    assert.equal(created.status, 200, created.text);
    await goto('#/keys/edit-key', 'Key edit-key');
    await b.page.getByRole('button', { name: 'Edit the release policy' }).click();
    const editor = b.page.getByLabel('Release policy (JSON)');
    await editor.fill(JSON.stringify(policy([{ claim: 'x-ms-sevsnpvm-guestsvn', greater: 'not-a-number' }]), null, 2));
    await b.page.getByText('Invalid at /anyOf/0/allOf/0/greater').waitFor();
    assert.equal(await b.page.locator('li.invalid[data-path="/anyOf/0/allOf/0"]').count(), 1, 'the tree marks the clause');
    assert.equal(await b.page.getByRole('button', { name: 'Save policy' }).isDisabled(), true);
    await editor.fill(JSON.stringify(policy([{ claim: 'x-ms-compliance-status', equals: 'azure-compliant-cvm' }]), null, 2));
    await b.page.getByText('Valid release policy.').waitFor();
    // A policy the server will not even take (over the body limit) is not "Checking…" forever, nor still valid.
    await editor.fill(JSON.stringify(policy([{ claim: 'x-ms-compliance-status', equals: 'x'.repeat(1_100_000) }])));
    await b.page.getByText(/^Invalid at the top level: request body is larger than the configured limit/).waitFor();
    assert.equal(await b.page.getByRole('button', { name: 'Save policy' }).isDisabled(), true);
    await editor.fill(JSON.stringify(policy([{ claim: 'x-ms-compliance-status', equals: 'azure-compliant-cvm' }]), null, 2));
    await b.page.getByText('Valid release policy.').waitFor();
    await b.page.getByRole('button', { name: 'Save policy' }).click();
    await b.page.getByRole('status').filter({ hasText: 'Release policy updated.' }).waitFor();
    await b.page.locator('.policy-tree').getByText('x-ms-compliance-status').waitFor();
    await assertAccessible('key with an edited policy');
    const key = await server.send('GET', `/keys/edit-key?${API}`, { headers: await bearer() });
    assert.equal(key.status, 200, key.text);
    const saved = JSON.parse(Buffer.from(key.json().release_policy.data, 'base64url').toString());
    assert.equal(saved.anyOf[0].allOf[0].claim, 'x-ms-compliance-status');
  });

  test('delete a key and recover it', async () => {
    assert.equal((await server.send('POST', `/keys/scratch-key/create?${API}`, { headers: await bearer(), body: { kty: 'EC', crv: 'P-256' } })).status, 200);
    await goto('#/keys/scratch-key', 'Key scratch-key');
    await b.page.getByRole('button', { name: 'Delete' }).click();
    await b.page.getByRole('heading', { level: 1, name: 'Keys' }).waitFor();
    await b.page.getByRole('button', { name: 'Recover scratch-key' }).click();
    await b.page.getByRole('link', { name: 'scratch-key' }).waitFor();
    assert.equal((await server.send('GET', `/keys/scratch-key?${API}`, { headers: await bearer() })).status, 200);
  });

  test('a denied release (simulated TEE, wrong measurement) shows the failed clause, its trace and the token claims', async () => {
    for (const m of [MEASUREMENT, WRONG]) {
      const r = await server.send('POST', `/keys/app-key/release?${API}`, { headers: await bearer(), body: { target: await attest(m) } });
      assert.equal(r.status, m === MEASUREMENT ? 200 : 403, r.text);
    }
    await goto('#/releases', 'Release decisions');
    await b.page.getByLabel('Show').selectOption('denied');
    await b.page.getByRole('button', { name: 'Show why (app-key)' }).click();
    const failed = b.page.getByRole('table', { name: 'Failed clauses' });
    await failed.waitFor();
    const row = failed.getByRole('row').filter({ hasText: 'x-ms-sevsnpvm-launchmeasurement' });
    assert.equal(await row.count(), 1);
    const text = await row.textContent();
    assert.ok(text?.includes(server.url) && text.includes('/anyOf/0/allOf/1') && text.includes(MEASUREMENT) && text.includes(WRONG), text ?? '');
    await b.page.getByText('Evaluation trace').waitFor();
    await b.page.getByText('Token claims').click();
    await b.page.locator('pre.json').filter({ hasText: `"x-ms-sevsnpvm-launchmeasurement": "${WRONG}"` }).waitFor();
    await assertAccessible('release decisions');
    await b.screenshot('release-denied');
  });

  test('the playground verifies simulated evidence step by step, and tries a draft policy before it is set', async () => {
    await goto('#/playground', 'Attestation playground');
    const ev = snpEvidence(MEASUREMENT);
    // Uploaded as a file, as `conclave sim evidence … > evidence.json` leaves it.
    await b.page.getByLabel('Or upload a file').setInputFiles({ name: 'evidence.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(ev.body)) });
    await b.page.waitForFunction(() => (document.getElementById('evidence-text') as HTMLTextAreaElement).value.startsWith('{'));
    await b.page.getByRole('button', { name: 'Verify' }).click();
    const steps = b.page.getByRole('list', { name: 'Verification steps' }).first();
    await steps.getByText('Token issued').waitFor();
    assert.equal(await steps.getByText('passed').count(), 6);
    await b.page.getByRole('table', { name: /^Claims/ }).getByText('x-ms-sevsnpvm-launchmeasurement', { exact: true }).waitFor();
    await b.page.getByText('Simulated evidence: development only.').waitFor();
    await b.page.getByLabel(/^Attestation policy to try/).fill('version=1.0;\nauthorizationrules {\n  => deny();\n};\nissuancerules {\n};');
    await b.page.getByRole('button', { name: 'Verify' }).click();
    await b.page.getByText('attestation.policy_denied').waitFor();
    const states = await steps.locator('li .badge').allTextContents();
    assert.deepEqual(states, ['passed', 'passed', 'passed', 'passed', 'failed', 'not reached']);
    // Set a policy that was tried, then attest under it.
    await b.page.getByLabel(/^Attestation policy to try/).fill('version=1.0;\nauthorizationrules {\n  => permit();\n};\nissuancerules {\n  => issue(type="console-tried", value=true);\n};');
    await b.page.getByRole('button', { name: 'Verify' }).click();
    await b.page.getByRole('heading', { level: 3, name: 'Result with the draft policy' }).waitFor();
    await b.page.getByRole('table', { name: /^Claims/ }).getByText('console-tried', { exact: true }).waitFor();
    await b.page.getByRole('button', { name: 'Set this policy for SevSnpVm' }).click();
    await b.page.getByRole('status').filter({ hasText: 'Attestation policy for SevSnpVm set.' }).waitFor();
    const stored = await server.send('GET', '/policies/SevSnpVm?api-version=2022-08-01', { headers: await bearer() });
    const jws = JSON.parse(Buffer.from(stored.json().token.split('.')[1], 'base64url').toString())['x-ms-policy'] as string;
    assert.match(Buffer.from(JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString()).AttestationPolicy, 'base64url').toString(), /console-tried/);
    // A token: decoded, its signature checked against /certs in the page, and a release policy dry-run against it.
    await b.page.getByLabel(/^Attestation token/).fill(await attest(MEASUREMENT));
    await b.page.getByRole('button', { name: 'Inspect' }).click();
    await b.page.getByRole('heading', { level: 3, name: 'Release policy: would release' }).waitFor();
    const tokenSteps = await b.page.getByRole('list', { name: 'Verification steps' }).nth(1).locator('li .badge').allTextContents();
    assert.deepEqual(tokenSteps, ['passed', 'passed', 'passed', 'passed']);
    await assertAccessible('playground');
    await b.screenshot('playground');
  });

  test('collateral fetched through the PCS stand-in appears per FMSPC, with the baseline dry run', async () => {
    for (const path of ['/sgx/certification/v4/tcb?fmspc=00906ed50000', '/sgx/certification/v4/qe/identity', '/vcek/v1/Milan/cert_chain']) {
      const r = await server.send('GET', path);
      assert.equal(r.status, 200, `${path}: ${r.text}`);
    }
    assert.ok(up.count('/v4/tcb') >= 1, 'fetched from the stand-in');
    // Two platforms of this FMSPC as attestations record them (one current, one far behind), for the fleet view.
    const sightings = createCollateralStore(server.ctx.db);
    await sightings.recordPlatformSeen({ tee: 'sgx', fmspc: '00906ED50000', cpusvn: 'ff'.repeat(16), pcesvn: 65535 }, 'attestation', now());
    await sightings.recordPlatformSeen({ tee: 'sgx', fmspc: '00906ED50000', cpusvn: '00'.repeat(16), pcesvn: 0 }, 'attestation', now());
    await goto('#/collateral', 'Collateral');
    await b.page.getByRole('heading', { level: 2, name: 'Intel FMSPC 00906ED50000' }).waitFor();
    const table = b.page.getByRole('table', { name: 'What is cached for Intel FMSPC 00906ED50000' });
    assert.ok((await table.textContent())?.includes(up.url), 'the source is the upstream');
    await b.page.getByRole('heading', { level: 2, name: 'AMD Milan' }).waitFor();
    await b.page.getByRole('img', { name: 'Collateral validity: issue date to next update' }).waitFor();
    await b.page.getByLabel('Pin sgx/v4/tcb/00906ED50000').selectOption('17');
    await b.page.getByRole('button', { name: 'Dry run' }).click();
    await b.page.getByText(/of 2 platforms seen in the last 90 days would change status/).waitFor();
    await b.page.getByRole('button', { name: 'Apply this baseline' }).click();
    await b.page.getByRole('status').filter({ hasText: 'Baseline set.' }).waitFor();
    const baseline = await server.send('GET', '/admin/collateral/baseline', { headers: await bearer() });
    assert.equal(baseline.json().policy.pinned['sgx:00906ED50000'], 17);
    await assertAccessible('collateral');
    await b.screenshot('collateral');
  });

  test('the audit page shows the transparency log verified, and searches', async () => {
    await goto('#/audit', 'Audit');
    await b.page.getByText(/signed tree heads recomputed and checked/).waitFor();
    await b.page.getByRole('searchbox', { name: 'Search' }).fill('app-key release');
    await b.page.getByLabel('Result').selectOption('denied');
    await b.page.getByText(/^1 of \d+ records shown/).waitFor();
    assert.equal(await b.page.getByRole('table', { name: 'Audit records' }).getByRole('row').count(), 2, 'a header and the denied release');
    await assertAccessible('audit');
    await b.screenshot('audit');
    await goto('#/overview', 'Overview');
    await b.page.getByText(/^1 released, 1 denied, 0 failed/).waitFor();
    await b.page.getByRole('img', { name: 'Key releases per hour, last 24 hours' }).waitFor();
    const fleet = b.page.getByRole('img', { name: 'TCB status of the platforms seen in the last 90 days' });
    await fleet.waitFor();
    assert.match((await fleet.locator('desc').textContent()) ?? '', /^\w+: \d(, \w+: \d)*$/);
    await assertAccessible('overview with activity');
    await b.screenshot('overview');
    // The README's picture (docs/console.png) is this one: the first screen of the overview.
    await b.page.setViewportSize({ width: 1200, height: 700 });
    await b.page.screenshot({ path: join(ARTIFACTS, 'overview-first-screen.png') });
    await b.page.setViewportSize({ width: 1280, height: 860 });
  });

  test('markup from the store and from a workload is shown as text: a release policy value, runtime data claims, the failed clause', async () => {
    // Whoever may set a key's policy writes its values; a workload writes its runtime data, which the
    // token carries as x-ms-runtime claims and the release decisions page shows to the administrator.
    const markup = '<img id=pwned src=x onerror=window.__pwned=1><b id=bold>bold</b>';
    const policy = { version: '1.0.0', anyOf: [{ authority: server.url, allOf: [{ claim: 'x-ms-sevsnpvm-launchmeasurement', equals: markup }] }] };
    const created = await server.send('POST', `/keys/hostile-key/create?${API}`, {
      headers: await bearer(),
      body: { kty: 'EC-HSM', crv: 'P-256', attributes: { exportable: true }, release_policy: { contentType: 'application/json; charset=utf-8', data: Buffer.from(JSON.stringify(policy)).toString('base64url') } },
    });
    assert.equal(created.status, 200, created.text);
    const role = { principalId: server.admin.clientId, role: 'Key Vault Crypto Service Release User', scope: '/keys/hostile-key' };
    assert.equal((await server.send('PUT', '/admin/vault/roleAssignments', { headers: await bearer(), body: role })).status, 200);
    runtimeData();
    const hostileRuntime = Buffer.from(JSON.stringify({ ...JSON.parse(transferKey!), note: markup }));
    const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'snp', runtimeData: hostileRuntime, measurement: WRONG });
    const token = (await server.send('POST', `${ev.path}?api-version=2022-08-01`, { body: ev.body })).json().token as string;
    assert.equal((await server.send('POST', `/keys/hostile-key/release?${API}`, { headers: await bearer(), body: { target: token } })).status, 403);

    await goto('#/keys/hostile-key', 'Key hostile-key');
    await b.page.locator('.policy-tree').getByText(markup).first().waitFor();
    await goto('#/releases', 'Release decisions');
    await b.page.getByLabel('Show').selectOption('denied');
    await b.page.getByRole('button', { name: 'Show why (hostile-key)' }).click();
    await b.page.getByRole('table', { name: 'Failed clauses' }).getByText(markup).first().waitFor();
    await b.page.getByText('Token claims').click();
    await b.page.locator('pre.json').filter({ hasText: markup }).first().waitFor();
    await goto('#/audit', 'Audit');
    await b.page.getByRole('searchbox', { name: 'Search' }).fill('hostile-key');
    await b.page.getByRole('table', { name: 'Audit records' }).getByText('hostile-key').first().waitFor();
    assert.equal(await b.page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned), undefined, 'no script of the markup ran');
    assert.equal(await b.page.locator('#pwned, #bold').count(), 0, 'no element of the markup was made');
  });

  test('a cross-site POST is refused: same-site pages fail the Origin check (403), cross-site ones carry no cookie (401)', async () => {
    const tls = { key: readFileSync(join(server.dataDir, 'tls', 'server.key')), cert: readFileSync(join(server.dataDir, 'tls', 'server.pem')) };
    const target = `${server.url}/keys/evil-key/create?${API}`;
    const page = `<!doctype html><title>elsewhere</title><script>fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{"kty":"EC","crv":"P-256"}' });</script>`;
    const handler = (_req: unknown, res: import('node:http').ServerResponse) => {
      res.setHeader('content-type', 'text/html');
      res.end(page);
    };
    const sameSite: Server = createServer(tls, handler);
    const crossSite: HttpServer = createHttpServer(handler);
    await new Promise<void>((r) => sameSite.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => crossSite.listen(0, '127.0.0.1', r));
    try {
      for (const [origin, expected] of [
        [`https://127.0.0.1:${(sameSite.address() as AddressInfo).port}`, 403],
        [`http://localhost:${(crossSite.address() as AddressInfo).port}`, 401],
      ] as const) {
        const answer = b.page.waitForResponse((r) => r.url() === target);
        await b.page.goto(`${origin}/`);
        assert.equal((await answer).status(), expected, origin);
      }
    } finally {
      sameSite.close();
      crossSite.close();
    }
    assert.equal((await server.send('GET', `/keys/evil-key?${API}`, { headers: await bearer() })).status, 404, 'no key was created');
  });

  test('no Content-Security-Policy or Trusted Types violation, no script error', () => {
    const problems = b.problems.filter((p) => !p.includes('Failed to load resource'));
    assert.deepEqual(problems, []);
  });
});
