/**
 * Secure Key Release throughput: `POST /keys/{name}/release` over HTTPS on loopback at a fixed
 * concurrency, against the floor of the crypto one release needs (target-token RS256 verification,
 * RSA-OAEP of the KEK, AES-KWP of the key, one RS256 signature of the response).
 *
 *   npm run bench:release -- [--requests 2000] [--concurrency 4] [--rounds 3] [--enc RSA_AES_KEY_WRAP_256] [--hsm SPEC|softhsm]
 *
 * The software key protector always runs; `--hsm` adds a run with the PKCS#11 provider (docs/hsm.md).
 * Each round measures the release path twice, in alternating order: with the transparency log, and with
 * logging disabled (bench/lib/log.ts), and reports the ratio of the medians and the log's inclusion
 * latency, with the host's load average beside each figure.
 */
import { constants, createCipheriv, generateKeyPairSync, publicEncrypt, randomBytes, sign } from 'node:crypto';
import { Agent, request } from 'node:https';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { verifyTargetToken } from '../src/vault/release/index.js';
import { createFakeAuthority, fakeJwksPort } from '../src/vault/release/testing.js';
import { adminJson, assignRole, policyFor, startAuthority } from '../test/integration/vault/harness.js';
import { startTestServer } from '../test/helpers/server.js';
import { inclusionLatency, setLogging } from './lib/log.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    provider: { type: 'string', default: 'software' },
    hsm: { type: 'string' },
    enc: { type: 'string', default: 'RSA_AES_KEY_WRAP_256' },
  },
});
const REQUESTS = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);
const PROVIDERS: Record<string, Record<string, unknown>> = { software: { hsm: undefined } };
if (!(values.provider! in PROVIDERS)) {
  console.error(`provider ${values.provider} is not available; use --provider software (and --hsm SPEC|softhsm for PKCS#11)`);
  process.exit(2);
}
// `--hsm SPEC` (or `softhsm`: a temporary SoftHSM2 token, release-sha2=hybrid) adds a PKCS#11 run after the software one.
if (values.hsm !== undefined) {
  const { sharedSoftHsm } = await import('../test/helpers/softhsm.js');
  PROVIDERS.pkcs11 = { hsm: values.hsm === 'softhsm' ? `${sharedSoftHsm().spec};release-sha2=hybrid` : values.hsm };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function time(label: string, n: number, fn: () => unknown): Promise<number> {
  for (let i = 0; i < Math.min(50, n); i++) await fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  console.log(`  ${label.padEnd(34)} ${us.toFixed(1).padStart(8)} µs`);
  return us;
}

async function cryptoFloor(): Promise<number> {
  console.log('crypto floor (one core, per release):');
  const issuer = 'https://authority.bench';
  const authority = await createFakeAuthority(issuer);
  const getJwks = fakeJwksPort({ [issuer]: { keys: [authority.jwk] } });
  const now = Math.floor(Date.now() / 1000);
  const token = authority.token({ exp: now + 3600, nbf: now });
  const at = new Date();
  const wrapping = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
  const signer = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const material = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'der', type: 'pkcs8' });
  const kek = randomBytes(32);
  const payload = Buffer.alloc(2600, 1);
  let total = 0;
  total += await time('verify target token (RS256)', 500, () => verifyTargetToken(token, { trustedAuthorities: [issuer], getJwks, at }));
  total += await time('RSA-OAEP(KEK) to the runtime key', 2000, () => publicEncrypt({ key: wrapping, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, kek));
  total += await time('AES-256-KWP(RSA-2048 PKCS#8)', 5000, () => {
    const c = createCipheriv('id-aes256-wrap-pad', kek, Buffer.from('A65959A6', 'hex'));
    return Buffer.concat([c.update(material), c.final()]);
  });
  total += await time('RS256 signature of the response', 500, () => sign('sha256', payload, signer));
  console.log(`  ${'sum'.padEnd(34)} ${total.toFixed(1).padStart(8)} µs  → ${(1e6 / total).toFixed(0)} releases/s/core`);
  return total;
}

async function main(): Promise<void> {
  const floorUs = await cryptoFloor();
  for (const [provider, flags] of Object.entries(PROVIDERS)) await releaseOverHttps(provider, flags, floorUs);
}

async function releaseOverHttps(provider: string, flags: Record<string, unknown>, floorUs: number): Promise<void> {
  const server = await startTestServer({ services: 'vault', ...flags });
  const authority = await startAuthority(server);
  try {
    await adminJson(server, 'PUT', '/admin/vault/authorities', { authorities: [authority.url] });
    await assignRole(server, server.admin.clientId, 'Key Vault Crypto Service Release User');
    const bearer = await server.adminToken();
    const created = await adminJson(server, 'POST', '/keys/bench/create?api-version=7.4', {
      kty: 'RSA-HSM',
      key_size: 2048,
      attributes: { exportable: true },
      release_policy: { data: Buffer.from(policyFor(authority.url)).toString('base64url') },
    });
    if (created.status !== 200) throw new Error(`create: ${created.status} ${JSON.stringify(created.json)}`);
    const target = authority.token();
    const body = JSON.stringify({ target, enc: values.enc });
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: readFileSync(server.caPath) });
    const url = new URL('/keys/bench/release?api-version=7.4', server.url);
    const one = () =>
      new Promise<number>((resolve, reject) => {
        const t0 = process.hrtime.bigint();
        const req = request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`status ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end(body);
      });
    for (let i = 0; i < 100; i++) await one();
    const measure = async () => {
      const latencies: number[] = [];
      let next = 0;
      const cpu0 = process.cpuUsage();
      const load0 = loadavg()[0]!;
      const t0 = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < REQUESTS) {
            next++;
            latencies.push(await one());
          }
        }),
      );
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = process.cpuUsage(cpu0);
      latencies.sort((a, b) => a - b);
      const cores = (cpu.user + cpu.system) / 1e6 / seconds;
      return { perSecond: REQUESTS / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), cores, cpuMsPerRelease: (cores * 1000) / (REQUESTS / seconds), load: (load0 + loadavg()[0]!) / 2 };
    };
    type Run = Awaited<ReturnType<typeof measure>>;
    const runs: Record<'log' | 'off', Run[]> = { log: [], off: [] };
    const show = (r: Run) => `${r.perSecond.toFixed(0).padStart(5)} releases/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms   ${r.cores.toFixed(2)} cores = ${r.cpuMsPerRelease.toFixed(2)} ms CPU per release (server + client)   load average ${r.load.toFixed(1)}`;
    console.log(`HTTPS release (provider ${provider}, enc ${values.enc}, concurrency ${CONCURRENCY}, ${REQUESTS} requests per run, server and client in one process, SQLite):`);
    const inclusion: Awaited<ReturnType<typeof inclusionLatency>>[] = [];
    const ratios: number[] = [];
    console.log(`  warm-up run (not counted)  ${show(await measure())}`);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of round % 2 === 1 ? (['log', 'off'] as const) : (['off', 'log'] as const)) {
        await setLogging(server.ctx.db, mode === 'log');
        const since = Date.now();
        const r = await measure();
        runs[mode].push(r);
        console.log(`  round ${round}, ${mode === 'log' ? 'with the log    ' : 'logging disabled'}  ${show(r)}`);
        if (mode === 'log') {
          await new Promise((res) => setTimeout(res, 300));
          const inc = await inclusionLatency(server.ctx.db, since);
          inclusion.push(inc);
          console.log(`    inclusion latency (insert → signed head, ${inc.entries} entries): p50 ${inc.p50Ms} ms   p99 ${inc.p99Ms} ms   max ${inc.maxMs} ms`);
        }
      }
      ratios.push(runs.log.at(-1)!.perSecond / runs.off.at(-1)!.perSecond);
    }
    await setLogging(server.ctx.db, true);
    const median = (rs: Run[]) => [...rs].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(rs.length / 2)]!;
    const [on, off] = [median(runs.log), median(runs.off)];
    console.log(`  median with the log      ${show(on)}`);
    console.log(`  median logging disabled  ${show(off)}`);
    const medianRatio = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)]!;
    console.log(`  with the log / logging disabled: ×${medianRatio.toFixed(3)} (median of the rounds' ratios ${ratios.map((r) => r.toFixed(2)).join(', ')}; ratio of the medians ×${(on.perSecond / off.perSecond).toFixed(3)}; target ≥ 0.85)`);
    console.log(`  CPU per release: ${on.cpuMsPerRelease.toFixed(2)} ms with the log, ${off.cpuMsPerRelease.toFixed(2)} ms without`);
    const incMed = [...inclusion].sort((a, b) => a.p50Ms - b.p50Ms)[Math.floor(inclusion.length / 2)];
    if (incMed) console.log(`  inclusion latency (median round): p50 ${incMed.p50Ms} ms, p99 ${incMed.p99Ms} ms (--log-batch-ms ${server.ctx.config.logBatchMs})`);
    console.log(`  floor ${(1e6 / floorUs).toFixed(0)} releases/s/core`);
    agent.destroy();
  } finally {
    await authority.close();
    await server.stop();
  }
}

await main();
