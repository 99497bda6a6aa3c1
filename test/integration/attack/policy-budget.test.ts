/**
 * #14 item 3: one unauthenticated request cannot stall the server. A draft (or stored) policy whose
 * rules bind every claim is stopped by the evaluation budget with a typed 400, drafts are size- and
 * rate-limited, and /healthz is answered while such requests are being evaluated (an ordering the test
 * asserts; the latency is reported, not asserted: tests never assert timings).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { encodePolicyJws } from '../../../src/attestation/policy/index.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

/** Four conditions that each match every claim, and one that never matches: ~N⁴ claim tests before the rule fails. */
const STALL = 'version=1.0; authorizationrules { c1:[type != ""] && c2:[type != ""] && c3:[type != ""] && c4:[type != ""] && [type == "never"] => permit(); => permit(); };';
/** Each rule adds a claim per pair of claims, which the next rule pairs again: N², N⁴, N⁸ claims. */
const GROW =
  'version=1.0; authorizationrules { => permit(); }; issuancerules { c1:[type != ""] && c2:[type != ""] => add(type=c1.type, value=c2.value); c1:[type != ""] && c2:[type != ""] => add(type=c1.type, value=c2.value); c1:[type != ""] && c2:[type != ""] => issue(type=c1.type, value=c2.value); };';

function attestBody(server: TestServer, draft?: string) {
  const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'sgx', runtimeData: new TextEncoder().encode('{"a":1}') });
  return { path: `${ev.path}?api-version=2022-08-01`, body: { ...ev.body, ...(draft !== undefined ? { draftPolicyForAttestation: draft } : {}) } };
}

describe('policy evaluation budget', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ simulate: true });
  });
  after(() => server?.stop());

  test('combinatorial draft policies are refused with attestation.policy_budget (400), naming the limit and rule', async () => {
    for (const [policy, limits] of [
      // 'time' is the backstop a heavily loaded machine may reach first; the unit tests pin the step limits.
      [STALL, ['steps', 'ms']],
      [GROW, ['bindings', 'claims', 'steps', 'ms']],
    ] as const) {
      const a = attestBody(server, policy);
      const r = await server.send('POST', a.path, { body: a.body });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json().error.code, 'attestation.policy_budget');
      assert.match(r.json().error.message, /budget \(\d+ (steps|bindings|claims|ms)\) at (authorization|issuance)rules\[\d\]/);
      assert.ok(limits.some((l) => r.json().error.message.includes(l)), r.json().error.message);
    }
  });

  test('a policy that needs more than the slice evaluated inline is evaluated in full, with the same answer', async () => {
    // Four issuance rules that each issue one claim per claim in the set, which the next rule sees again:
    // some thousands of steps, more than the inline slice (2,000) and well within the budget (20,000).
    const rule = 'c:[type != "never"] => issue(type="seen", value=c.type);';
    const a = attestBody(server, `version=1.0; authorizationrules { => permit(); }; issuancerules { ${rule.repeat(4)} };`);
    const r = await server.send('POST', a.path, { body: a.body });
    assert.equal(r.status, 200, r.text);
    const payload = JSON.parse(Buffer.from(r.json().token.split('.')[1], 'base64url').toString());
    assert.ok(Array.isArray(payload.seen) && payload.seen.length > 200, `issued ${payload.seen?.length}`);
  });

  test('the same budget holds for a stored policy', async () => {
    const headers = { authorization: `Bearer ${await server.adminToken()}`, 'content-type': 'text/plain' };
    const set = await server.send('PUT', '/policies/SgxEnclave?api-version=2022-08-01', { headers, body: encodePolicyJws(STALL) });
    assert.equal(set.status, 200, set.text);
    try {
      const a = attestBody(server);
      const r = await server.send('POST', a.path, { body: a.body });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json().error.code, 'attestation.policy_budget');
    } finally {
      assert.equal((await server.send('POST', '/policies/SgxEnclave:reset?api-version=2022-08-01', { headers, body: 'eyJhbGciOiJub25lIn0..' })).status, 200);
    }
  });

  test('an oversize draft is refused before it is parsed (413)', async () => {
    const a = attestBody(server, `version=1.0; authorizationrules { => permit(); }; ${' '.repeat(70_000)}`);
    const r = await server.send('POST', a.path, { body: a.body });
    assert.equal(r.status, 413, r.text);
    assert.equal(r.json().error.code, 'request.too_large');
  });

  test('function calls and JMESPath expressions nested without end are typed 400s', async () => {
    const deepCall = `version=1.2; authorizationrules { => permit(); }; issuancerules { c:[type=="x-ms-sgx-mrenclave"] => issue(type="n", value=${'NegateBool('.repeat(5000)}true${')'.repeat(5000)}); };`;
    const deepQuery = `version=1.2; authorizationrules { => permit(); }; issuancerules { c:[type=="x-ms-runtime"] => issue(type="n", value=JmesPath(c.value, "${'('.repeat(20000)}a${')'.repeat(20000)}")); };`;
    const longChain = `version=1.2; authorizationrules { => permit(); }; issuancerules { c:[type=="x-ms-runtime"] => issue(type="n", value=JmesPath(c.value, "a${'.a'.repeat(20000)}")); };`;
    for (const policy of [deepCall, deepQuery, longChain]) {
      const a = attestBody(server, policy);
      const r = await server.send('POST', a.path, { body: a.body });
      assert.equal(r.status, 400, `${policy.slice(0, 120)}: ${r.text.slice(0, 300)}`);
      assert.match(r.json().error.code, /^attestation\.policy_(syntax|evaluation)$/);
    }
  });

  test("the issued claims' budget counts what the token serialises: control characters (6 bytes each in JSON) do not multiply it", async () => {
    // Attack (anonymous): the budget counted a string's characters, but the token carries its JSON, UTF-8 and
    // base64url-encoded: a control character (from the runtime JSON, decoded by JsonToClaimValue) is 6 bytes
    // there, so 4 MiB of counted characters made a token of ~32 MB (a non-ASCII one is 3 bytes).
    const runtime = new TextEncoder().encode(JSON.stringify({ a: '\u0001'.repeat(80_000) }));
    const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'sgx', runtimeData: runtime });
    const decode = 'c:[type=="x-ms-runtime"] => add(type="ctl", value=JsonToClaimValue(JmesPath(c.value, "a")));';
    const draft = (copies: number) => `version=1.2; authorizationrules { => permit(); }; issuancerules { ${decode} ${'c:[type=="ctl"] => issue(type="copy", value=c.value); '.repeat(copies)} };`;
    // 50 copies: 4,000,000 characters counted, under 4 MiB; 24 MB of JSON in the token.
    const r = await server.send('POST', `${ev.path}?api-version=2022-08-01`, { body: { ...ev.body, draftPolicyForAttestation: draft(50) } });
    assert.equal(r.status, 400, `answered ${r.status} with ${(r.text.length / 1e6).toFixed(1)} MB: ${r.text.slice(0, 120)}`);
    assert.equal(r.json().error.code, 'attestation.policy_budget');
    // A few copies (about 1.5 MB of JSON) still fit.
    const ok = await server.send('POST', `${ev.path}?api-version=2022-08-01`, { body: { ...ev.body, draftPolicyForAttestation: draft(3) } });
    assert.equal(ok.status, 200, ok.text.slice(0, 300));
    assert.equal(JSON.parse(Buffer.from(ok.json().token.split('.')[1], 'base64url').toString()).copy.length, 3);
  });

  test('a draft whose JmesPath query doubles its document at every pipe is refused with attestation.policy_budget', async () => {
    // Attack (anonymous): the JMESPath interpreter did unmetered work. Comparing two "[@,@] | [@,@] | …" chains
    // visits 2^n paths: n = 26 takes about a second on main, n = 40 holds the event loop for hours.
    const doubling = Array.from({ length: 26 }, () => '[@,@]').join(' | ');
    const a = attestBody(server, `version=1.2; authorizationrules { => permit(); }; issuancerules { => issue(type="n", value=JmesPath("{}", "[${doubling}, ${doubling}] | [0] == [1]")); };`);
    const r = await server.send('POST', a.path, { body: a.body });
    assert.equal(r.status, 400, r.text.slice(0, 300));
    assert.equal(r.json().error.code, 'attestation.policy_budget');
  });

  test('a draft that issues a large claim many times is refused with attestation.policy_budget, not answered with a token of hundreds of MB', async () => {
    // Attack (anonymous: a draft needs no credential, and attest evidence can be replayed): issuing costs one
    // step whatever the value's size, so a policy that copies a large claim (the TEE's own runtime JSON, here
    // ~600 KB) into hundreds of issued claims, well within the step and count budgets, has the service
    // serialise and base64url-encode a token of hundreds of megabytes on the event loop: on main this one
    // request answers 200 after seconds (every other request waits), and a few more rules outgrow the
    // longest string V8 holds (a 500). The issued claims' size is now budgeted.
    const runtime = new TextEncoder().encode(JSON.stringify({ pad: 'x'.repeat(600_000) }));
    const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'sgx', runtimeData: runtime });
    // d:[issuer=="AttestationService"] matches every incoming claim and is named in the action (issuer=d.type): the rule fires once per claim.
    const copy = 'c:[type=="x-ms-runtime"] && d:[issuer=="AttestationService"] => issue(type="copy", value=c.value, issuer=d.type);';
    const draft = `version=1.0; authorizationrules { => permit(); }; issuancerules { ${copy.repeat(20)} };`;
    const r = await server.send('POST', `${ev.path}?api-version=2022-08-01`, { body: { ...ev.body, draftPolicyForAttestation: draft } });
    assert.equal(r.status, 400, `answered ${r.status} with ${(r.text.length / 1e6).toFixed(0)} MB: ${r.text.slice(0, 120)}`);
    assert.equal(r.json().error.code, 'attestation.policy_budget');
    assert.match(r.json().error.message, /issued claims' characters/);
    // Issued once, the same large claim is still within the budget.
    const once = `version=1.0; authorizationrules { => permit(); }; issuancerules { c:[type=="x-ms-runtime"] => issue(type="copy", value=c.value); };`;
    const ok = await server.send('POST', `${ev.path}?api-version=2022-08-01`, { body: { ...ev.body, draftPolicyForAttestation: once } });
    assert.equal(ok.status, 200, ok.text.slice(0, 300));
    assert.equal(JSON.parse(Buffer.from(ok.json().token.split('.')[1], 'base64url').toString()).copy.length, new TextDecoder().decode(runtime).length);
  });
});

describe('/healthz during a burst of combinatorial drafts', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ simulate: true });
  });
  after(() => server?.stop());

  test('every attack gets its 400 and /healthz is answered while they are evaluated', async (t) => {
    // The probes keep one connection of their own, opened before the burst: a probe is then one request
    // and one answer, not a TCP and TLS handshake competing with the attacks for turns of the loop.
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(server.caPath) });
    t.after(() => agent.destroy());
    const probe = () =>
      new Promise<number>((resolve, reject) => {
        const req = httpsRequest(new URL('/healthz', server.url), { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    assert.equal(await probe(), 200);
    // Warm the evidence path too, so the burst measures evaluation, not set-up.
    const warm = attestBody(server);
    assert.equal((await server.sendHttps('POST', warm.path, { body: warm.body })).status, 200);
    const attacks = Array.from({ length: 16 }, () => {
      const a = attestBody(server, STALL);
      return server.sendHttps('POST', a.path, { body: a.body });
    });
    let pending = attacks.length;
    for (const a of attacks) void a.finally(() => pending--).catch(() => undefined);
    // Probes one after another until every attack is answered; a probe counts when it was answered
    // while evaluations were still waiting or running. Unbudgeted, one of these evaluations holds the
    // loop for about a second (N⁴ claim tests) and all of them run back to back, so no probe sent after
    // the burst started is answered before the burst is over. With the budget each evaluation is bounded
    // (20 000 claim tests) and takes its own turn of the event loop, so probes are answered in between.
    // This asserts that ordering, not a time: timings on a shared CI machine are not the code's.
    const latencies: number[] = [];
    let answeredDuring = 0;
    while (pending > 0) {
      const started = performance.now();
      const status = await probe();
      latencies.push(performance.now() - started);
      assert.equal(status, 200);
      if (pending > 0) answeredDuring++;
    }
    for (const r of await Promise.all(attacks)) {
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json().error.code, 'attestation.policy_budget');
    }
    const sorted = [...latencies].sort((x, y) => x - y);
    // The design target is a probe within 100 ms while the burst runs; reported here, not asserted.
    t.diagnostic(`healthz during the burst: ${latencies.length} probes, ${answeredDuring} answered while evaluations were pending; median ${sorted[sorted.length >> 1]!.toFixed(1)} ms, worst ${sorted.at(-1)!.toFixed(1)} ms`);
    assert.ok(answeredDuring >= 3, `only ${answeredDuring} health checks were answered while the burst was evaluated`);
  });

  test('drafts are rate-limited per client (429 with Retry-After)', async () => {
    let limited: { status: number; headers: Record<string, unknown>; text: string } | undefined;
    for (let i = 0; i < 40 && !limited; i++) {
      const a = attestBody(server, 'version=1.0; authorizationrules { => permit(); };');
      const r = await server.sendHttps('POST', a.path, { body: a.body });
      if (r.status === 429) limited = r;
      else assert.equal(r.status, 200, r.text);
    }
    assert.ok(limited, 'no draft was rate-limited');
    assert.equal(JSON.parse(limited.text).error.code, 'request.rate_limited');
    assert.match(String(limited.headers['retry-after']), /^\d+$/);
    // Attestation without a draft is not limited.
    const a = attestBody(server);
    assert.equal((await server.sendHttps('POST', a.path, { body: a.body })).status, 200);
  });
});
