/**
 * Secure Key Release over HTTPS against its crypto floor (bench/release.md).
 *
 *   npm run bench:release -- [--concurrency 4,16] [--seconds 5] [--rounds 5] [--enc RSA_AES_KEY_WRAP_256]
 *                            [--db postgres] [--hsm SPEC|softhsm] [--log-off 16|none] [--baseline DIR]
 *
 * The server is `conclave serve` in a child process (SQLite, or a throw-away PostgreSQL database with
 * `--db postgres`; software keys, and with `--hsm` a second server on PKCS#11); this process is the
 * client: the load generator, and the stand-in OpenID authority whose JWKS the server fetches once.
 * Each round measures, in this order, the floor (the crypto one release cannot avoid, in this one
 * thread: target-token RS256 verify, RSA-OAEP of the KEK, AES-KWP of the key, RS256 signature of the
 * response) and every server × concurrency; the figures are medians of the rounds with min and max, and
 * the ratios are taken round by round against the floor of the same round. At the `--log-off`
 * concurrency each server is also measured with its transparency-log entries switched off (a store
 * trigger, bench/lib/log.ts): the ratio with / without the log, and the log's inclusion latency, tell what
 * the log costs a release (issue #17: at concurrency 16, within 15 %). `--baseline DIR` adds a
 * server run from another checkout (e.g. a worktree of main), measured in the same rounds: a before and
 * after that met the same machine.
 */
import { constants, createCipheriv, publicEncrypt, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { verifyTargetToken } from '../src/vault/release/index.js';
import { createFakeAuthority, fakeJwksPort } from '../src/vault/release/testing.js';
import { httpsClient } from '../test/helpers/https.js';
import { policyFor, startAuthority } from '../test/integration/vault/harness.js';
import { openDatabase } from '../src/storage/open.js';
import type { Database } from '../src/storage/database.js';
import { measureOps, runLoad } from './lib/load.js';
import { inclusionLatency, setLogging } from './lib/log.js';
import { hostLine } from './lib/machine.js';
import { type Case, type CaseResult, fmt, interleave, ratio } from './lib/rounds.js';
import { type BenchServer, serverLine, startBenchServer } from './lib/server.js';
import { generateRsaKeyPair } from '../src/core/keygen.js';

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '4,16' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '5' },
    enc: { type: 'string', default: 'RSA_AES_KEY_WRAP_256' },
    db: { type: 'string', default: 'sqlite' },
    hsm: { type: 'string' },
    baseline: { type: 'string' },
    'log-off': { type: 'string', default: '16' },
  },
});
const CONCURRENCY = values.concurrency!.split(',').map(Number);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const LOG_OFF = values['log-off'] === 'none' ? undefined : Number(values['log-off']);

/** The crypto of one release, in this thread: returns a function doing it once. */
async function floorOperation(): Promise<() => unknown> {
  const issuer = 'https://authority.bench';
  const authority = await createFakeAuthority(issuer, { alg: 'RS256' });
  const getJwks = fakeJwksPort({ [issuer]: { keys: [authority.jwk] } });
  const now = Math.floor(Date.now() / 1000);
  const token = authority.token({ exp: now + 3600, nbf: now });
  const wrapping = generateRsaKeyPair(2048).publicKey;
  const signer = generateRsaKeyPair(2048).privateKey;
  const material = generateRsaKeyPair(2048).privateKey.export({ format: 'der', type: 'pkcs8' });
  const payload = Buffer.alloc(2600, 1);
  return async () => {
    await verifyTargetToken(token, { trustedAuthorities: [issuer], getJwks, at: new Date() });
    const kek = randomBytes(32);
    publicEncrypt({ key: wrapping, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, kek);
    const c = createCipheriv('id-aes256-wrap-pad', kek, Buffer.from('A65959A6', 'hex'));
    Buffer.concat([c.update(material), c.final()]);
    sign('sha256', payload, signer);
  };
}

interface Target {
  readonly label: string;
  readonly server: BenchServer;
  /** The server's store, opened by this process too (log switch, inclusion latency). */
  readonly db: Database;
  readonly bearer: string;
  readonly body: string;
  /** Releases this server answered (warm-ups included), for its CPU profile. */
  answered: number;
  close(): Promise<void>;
}

async function startTarget(label: string, args: string[], root?: string): Promise<Target> {
  const server = await startBenchServer(['--services', 'vault', ...args], undefined, root ? { root } : {});
  const dbAt = args.indexOf('--db');
  const db = await openDatabase(dbAt >= 0 ? args[dbAt + 1]! : `sqlite:${join(server.dataDir, 'conclave.db')}`);
  const send = httpsClient(server.url, join(server.dataDir, 'tls', 'ca.pem'));
  const authority = await startAuthority({ dataDir: server.dataDir });
  try {
    const grant = new URLSearchParams({ grant_type: 'client_credentials', client_id: server.admin.clientId, client_secret: server.admin.clientSecret }).toString();
    const bearer = (await send('POST', '/oauth2/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: grant })).json().access_token as string;
    const call = async (method: string, path: string, body: object) => {
      const r = await send(method, path, { headers: { authorization: `Bearer ${bearer}` }, body });
      if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
    };
    await call('PUT', '/admin/vault/authorities', { authorities: [authority.url] });
    await call('PUT', '/admin/vault/roleAssignments', { principalId: server.admin.clientId, role: 'Key Vault Crypto Service Release User', scope: '/' });
    await call('POST', '/keys/bench/create?api-version=7.4', {
      kty: 'RSA-HSM',
      key_size: 2048,
      attributes: { exportable: true },
      release_policy: { data: Buffer.from(policyFor(authority.url)).toString('base64url') },
    });
    return {
      label,
      server,
      db,
      bearer,
      body: JSON.stringify({ target: authority.token(), enc: values.enc }),
      answered: 0,
      async close() {
        await setLogging(db, true).catch(() => undefined);
        await db.close();
        await authority.close();
        await server.stop();
      },
    };
  } catch (e) {
    await db.close();
    await authority.close();
    await server.stop();
    throw e;
  }
}

async function main(): Promise<void> {
  const targets: Target[] = [];
  const drops: Array<() => Promise<void>> = [];
  /** Each server its own store: a fresh SQLite file in its data dir, or a throw-away PostgreSQL database. */
  const dbArgs = async (): Promise<string[]> => {
    if (values.db !== 'postgres') return [];
    const { createTestDatabase } = await import('../test/helpers/postgres.js');
    const db = await createTestDatabase();
    drops.push(() => db.drop());
    return ['--db', db.url];
  };
  try {
    if (values.baseline) targets.push(await startTarget('baseline', await dbArgs(), values.baseline));
    targets.push(await startTarget('software', await dbArgs()));
    if (values.hsm !== undefined) {
      const { sharedSoftHsm } = await import('../test/helpers/softhsm.js');
      const spec = values.hsm === 'softhsm' ? `${sharedSoftHsm().spec};release-sha2=hybrid` : values.hsm;
      targets.push(await startTarget('pkcs11', ['--hsm', spec, ...(await dbArgs())]));
    }
    const floorOnce = await floorOperation();
    const cases: Case[] = [
      {
        name: 'floor',
        async run() {
          const m = await measureOps(floorOnce, 1000);
          return { perSecond: m.perSecond, cpuUs: m.cpuUs };
        },
      },
    ];
    for (const t of targets) {
      const modes = (c: number) => (c === LOG_OFF ? [true, false] : [true]);
      for (const c of CONCURRENCY) {
        for (const logging of modes(c)) {
          cases.push({
            name: `${t.label} c${c}${logging ? '' : ' log off'}`,
            async run(round) {
              await setLogging(t.db, logging);
              const since = Date.now();
              const r = await runLoad({
                url: `${t.server.url}/keys/bench/release?api-version=7.4`,
                method: 'POST',
                headers: { authorization: `Bearer ${t.bearer}`, 'content-type': 'application/json' },
                body: t.body,
                ca: readFileSync(join(t.server.dataDir, 'tls', 'ca.pem')),
                connections: c,
                durationMs: SECONDS * 1000,
                warmupMs: round === 1 ? 1500 : 500,
                cpuPid: t.server.child.pid!,
                // A release answer: the JSON around the response JWS, read to its last byte.
                check: (body) => body.length > 100 && body.toString('latin1', 0, 10) === '{"value":"',
              });
              t.answered += r.answered;
              if (r.errors) throw new Error(`${r.errors} failed releases; first: ${r.firstError}`);
              const f: Record<string, number> = { perSecond: r.perSecond, p50: r.p50Ms, p99: r.p99Ms, cpuUs: r.serverCpuUs, mainCpuUs: r.serverMainCpuUs, clientCpuUs: r.clientCpuUs };
              if (logging) {
                // Entries of this run that a signed head includes by now (a batch or two after the last).
                await new Promise((res) => setTimeout(res, 300));
                const inc = await inclusionLatency(t.db, since);
                Object.assign(f, { inclusionP50: inc.p50Ms, inclusionP99: inc.p99Ms });
              }
              return f;
            },
          });
        }
      }
    }
    console.log(hostLine());
    console.log(serverLine());
    console.log(`release over HTTPS: enc ${values.enc}, store ${values.db}, ${ROUNDS} interleaved rounds of ${SECONDS} s per case; client (load generator on node:tls, and the OpenID stand-in) in this process, server in its own`);
    const results = await interleave(cases, ROUNDS, (round, name, f, m) =>
      console.log(`  round ${round} ${name.padEnd(14)} ${f.perSecond!.toFixed(0).padStart(6)}/s  cpu ${f.cpuUs!.toFixed(0)} µs/op${f.mainCpuUs !== undefined ? ` (main ${f.mainCpuUs.toFixed(0)}, client ${f.clientCpuUs!.toFixed(0)})` : ''}${f.p50 !== undefined ? `  p50 ${f.p50.toFixed(2)} ms` : ''}  (load ${m.load1.toFixed(1)})`),
    );
    report(results);
    for (const t of targets) console.log(`server ${t.label} (pid ${t.server.child.pid}) answered ${t.answered} releases${process.env.BENCH_PROFILE ? ` (CPU profile in ${process.env.BENCH_PROFILE})` : ''}`);
  } finally {
    for (const t of targets) await t.close();
    for (const drop of drops) await drop();
  }
}

function report(results: CaseResult[]): void {
  console.log('\n| case | inclusion latency p50 ms | p99 ms | with the log / log off (per round) |');
  console.log('|---|---|---|---|');
  for (const r of results.filter((x) => !Number.isNaN(x.figure('inclusionP50').median))) {
    const off = results.find((x) => x.name === `${r.name} log off`);
    console.log(`| ${r.name} | ${fmt(r.figure('inclusionP50'))} | ${fmt(r.figure('inclusionP99'))} | ${off ? fmt(ratio(r, 'perSecond', off, 'perSecond'), 2) : ''} |`);
  }
  const floor = results[0]!;
  console.log('\n| case | releases/s | vs floor (per round) | p50 ms | p99 ms | server CPU µs/release | of which event loop | client CPU µs/release | floor CPU / server CPU | machine |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  console.log(`| floor (1 thread) | ${fmt(floor.figure('perSecond'))} | 1 | | | ${fmt(floor.figure('cpuUs'))} (this process) | | | | ${floor.machineLine()} |`);
  for (const r of results.slice(1)) {
    console.log(
      `| ${r.name} | ${fmt(r.figure('perSecond'))} | ${fmt(ratio(r, 'perSecond', floor, 'perSecond'), 2)} | ${fmt(r.figure('p50'), 2)} | ${fmt(r.figure('p99'), 1)} | ${fmt(r.figure('cpuUs'))} | ${fmt(r.figure('mainCpuUs'))} | ${fmt(r.figure('clientCpuUs'))} | ${fmt(ratio(floor, 'cpuUs', r, 'cpuUs'), 2)} | ${r.machineLine()} |`,
    );
  }
}

await main();
