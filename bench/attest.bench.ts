/**
 * Attestation throughput over HTTPS on loopback (npm run bench:attest): SGX and SEV-SNP evidence from
 * the simulated TEE (full verification every request; collateral and certificate chains warm), against
 * the floor of the same work's crypto in one thread (quote/report verification plus one RS256 signature).
 *
 *   npm run bench:attest -- [--connections 4,16] [--seconds 10]
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { signJws } from '../src/core/jwt.js';
import { VerifierCache, parseQuote, verifyQuote } from '../src/evidence/dcap/index.js';
import { loadOrCreateSimulatedTee } from '../src/evidence/simulated/index.js';
import { SnpVerifierCache, verifyMaaSevSnpEvidence } from '../src/evidence/snp/index.js';
import { arg, opsPerSecond, runLoad } from './lib/load.js';
import { startBenchServer } from './lib/server.js';

const connectionCounts = arg('connections', '4,16').split(',').map(Number);
const seconds = Number(arg('seconds', '10'));
const runtime = new TextEncoder().encode(JSON.stringify({ keys: [{ kty: 'RSA', kid: 'k', key_ops: ['encrypt'], n: randomBytes(256).toString('base64url'), e: 'AQAB' }] }));

const server = await startBenchServer(['--simulate']);
try {
  const sim = loadOrCreateSimulatedTee(server.dataDir);
  const sgx = sim.evidence({ tee: 'sgx', runtimeData: runtime });
  const snp = sim.evidence({ tee: 'snp', runtimeData: runtime });

  // The floor: the same verification and one RS256 signature, in this one thread.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const at = new Date();
  const dcapCache = new VerifierCache();
  const snpCache = new SnpVerifierCache();
  const quote = new Uint8Array(Buffer.from(sgx.body.quote as string, 'base64url'));
  const claims = { 'x-ms-attestation-type': 'sgx', 'x-ms-sgx-mrenclave': '00'.repeat(32), 'x-ms-runtime': JSON.parse(new TextDecoder().decode(runtime)) };
  const sgxFloor = await opsPerSecond(() => {
    verifyQuote(parseQuote(quote), sim.collateral('sgx'), { at, freshness: 'azure', cache: dcapCache, trustAnchors: { intelRoot: sim.intelRoot } });
    signJws({ alg: 'RS256', typ: 'JWT' }, claims, privateKey);
  }, 3000);
  const snpInner = Buffer.from(snp.body.report as string, 'base64url');
  const snpFloor = await opsPerSecond(() => {
    verifyMaaSevSnpEvidence(snpInner, runtime, undefined, { at, cache: snpCache, trustAnchors: sim.amdAnchors });
    signJws({ alg: 'RS256', typ: 'JWT' }, claims, privateKey);
  }, 3000);

  const headers = { 'content-type': 'application/json' };
  const rows: string[] = [];
  let firstError: string | undefined;
  for (const connections of connectionCounts) {
    for (const [name, path, body, floor] of [
      ['SGX quote v3 (simulated)', '/attest/SgxEnclave', sgx.body, sgxFloor],
      ['SEV-SNP report (simulated, container form)', '/attest/SevSnpVm', snp.body, snpFloor],
    ] as const) {
      const load = await runLoad({ url: `${server.url}${path}?api-version=2020-10-01`, method: 'POST', headers, body: JSON.stringify(body), ca: server.ca, connections, durationMs: seconds * 1000 });
      firstError ??= load.firstError;
      rows.push(`| ${name} | ${connections} | ${load.perSecond.toFixed(0)} | ${load.p50Ms.toFixed(2)} | ${load.p99Ms.toFixed(2)} | ${load.errors} | ${floor.toFixed(0)} | ${(load.perSecond / floor).toFixed(2)}x |`);
    }
  }
  console.log(`host: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, node ${process.version}, ${seconds} s per case, load generator in a separate process on the same host`);
  console.log('| evidence | connections | attestations/s (HTTPS) | p50 ms | p99 ms | errors | floor/s (verify + RS256, 1 thread) | vs floor |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  if (firstError) console.log('first error:', firstError);
} finally {
  await server.stop();
}
