/**
 * Cached-collateral throughput: GETs per second and p50/p99 latency over HTTPS on loopback, 16 keep-alive
 * connections, for tcb, qe/identity, pckcrl and pckcert, against a PCS-compatible URL (ours by default,
 * started in-process with its cache seeded from the fixture stand-in) and against a bare node:https server
 * answering a fixed body. The load generator runs in a child process so it does not starve the server.
 *
 *   npm run bench:collateral -- [--url URL --ca FILE] [--seconds 10] [--connections 16]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer } from 'node:https';
import { parseArgs } from 'node:util';
import { startPcsStandin } from '../test/helpers/pcs-standin.js';
import { startTestServer } from '../test/helpers/server.js';

const { values } = parseArgs({ options: { url: { type: 'string' }, ca: { type: 'string' }, seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '16' } } });
const seconds = Number(values.seconds);
const connections = Number(values.connections);

const PCK = '/sgx/certification/v4/pckcert?qeid=00112233445566778899AABBCCDDEEFF&cpusvn=0B0B0202FF0100000000000000000000&pcesvn=0D00&pceid=0000';
const PATHS: Record<string, string> = {
  tcb: '/sgx/certification/v4/tcb?fmspc=00A067110000',
  'qe/identity': '/sgx/certification/v4/qe/identity',
  pckcrl: '/sgx/certification/v4/pckcrl?ca=processor&encoding=der',
  pckcert: PCK,
};

/** The load generator (plain JS, run with `node -e` in a child): N keep-alive connections in a loop. */
const LOADGEN = `
const https = require('node:https');
const [url, ca, secs, conns] = [process.argv[1], process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const agent = new https.Agent({ keepAlive: true, maxSockets: conns, ca: require('node:fs').readFileSync(ca) });
const lat = []; let ok = 0, bad = 0; const end = Date.now() + secs * 1000; const warm = Date.now() + 1000;
function one(done) {
  const t = process.hrtime.bigint();
  https.get(url, { agent }, (res) => { res.on('data', () => {}); res.on('end', () => {
    if (Date.now() > warm) { lat.push(Number(process.hrtime.bigint() - t) / 1e6); res.statusCode === 200 ? ok++ : bad++; }
    Date.now() < end ? one(done) : done(); }); }).on('error', () => { bad++; Date.now() < end ? one(done) : done(); });
}
let left = conns; const t0 = Date.now();
for (let i = 0; i < conns; i++) one(() => { if (--left === 0) {
  lat.sort((a, b) => a - b); const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  process.stdout.write(JSON.stringify({ rps: Math.round(ok / ((Date.now() - Math.max(t0, warm - 1000) - 1000) / 1000)), p50: +q(0.5).toFixed(2), p99: +q(0.99).toFixed(2), ok, bad }));
  agent.destroy(); } });
`;

/** Async on purpose: the server under test may share this process's event loop. */
async function load(url: string, ca: string): Promise<{ rps: number; p50: number; p99: number; ok: number; bad: number }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', LOADGEN, url, ca, String(seconds), String(connections)], { encoding: 'utf8' });
  return JSON.parse(stdout);
}

async function main() {
  const rows: Record<string, unknown>[] = [];
  let stop = async (): Promise<void> => undefined;
  let base = values.url;
  let ca = values.ca ?? '';
  if (!base) {
    const up = await startPcsStandin('sgx-phala');
    const server = await startTestServer({ services: 'collateral', upstreamIntel: up.url, logLevel: 'silent' }, { now: () => new Date('2025-06-20T00:00:00Z') });
    for (const p of Object.values(PATHS)) if ((await server.send('GET', p)).status !== 200) throw new Error(`seeding ${p} failed`);
    await up.close();
    base = server.url;
    ca = server.caPath;
    stop = async () => {
      await server.stop();
    };
  }
  for (const [name, path] of Object.entries(PATHS)) rows.push({ target: 'service', route: name, ...(await load(`${base}${path}`, ca)) });
  await stop();

  // The same machine's ceiling: a bare node:https server answering a fixed body of a TCB info's size.
  const bareKeyDir = await startBare();
  rows.push({ target: 'bare node:https', route: 'fixed 4.7 KB body', ...(await load(`${bareKeyDir.url}/`, bareKeyDir.caPath)) });
  await bareKeyDir.close();
  console.table(rows);
  const svc = rows.filter((r) => r.target === 'service').map((r) => r.rps as number);
  const bare = rows.at(-1)!.rps as number;
  console.log(`service mean ${Math.round(svc.reduce((a, b) => a + b, 0) / svc.length)} req/s = ${((svc.reduce((a, b) => a + b, 0) / svc.length / bare) * 100).toFixed(0)}% of bare node:https (${bare} req/s); Intel PCCS measured 650–820 req/s, p99 40–50 ms`);
}

/** A bare HTTPS server with the TLS identity of a throwaway Conclave data dir (same key type and chain). */
async function startBare(): Promise<{ url: string; caPath: string; close(): Promise<void> }> {
  const { loadOrCreateTls } = await import('../src/server/tls.js');
  const { tempDir } = await import('../test/helpers/server.js');
  const tls = await loadOrCreateTls(tempDir('conclave-bench-'), '127.0.0.1');
  const body = Buffer.alloc(4700, 0x61);
  const server = createServer({ key: tls.key, cert: tls.cert }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return {
    url: `https://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`,
    caPath: tls.caPath,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
