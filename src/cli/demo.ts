/**
 * `conclave demo`: the whole Secure Key Release story against a running server (or one it starts in a
 * temporary directory), with a simulated SEV-SNP confidential VM, a simulated SGX enclave and a simulated
 * TDX VM with two NVIDIA GPUs (confidential AI). Every step
 * prints what went over the wire.
 */
import { createDecipheriv, createPublicKey, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { loadOrCreateSimulatedTee } from '../evidence/simulated/index.js';
import { createLogger, startServer } from '../main.js';
import { attest, releaseKey } from '../sdk/index.js';
import { exchangeJson } from '../sdk/http.js';
import { CliError } from './output.js';
import { adminCredentialFor } from './client.js';
import { b64url } from '../core/bytes.js';
import { generateRsaKeyPair } from '../core/keygen.js';

const MEASUREMENT = '5e'.repeat(48);
const MRENCLAVE = 'c1'.repeat(32);

interface Ctx {
  url: string;
  ca: string;
  admin: { clientId: string; clientSecret: string; tokenEndpoint: string };
  dataDir: string;
}

const out = (s = '') => process.stdout.write(`${s}\n`);
const step = (n: number, title: string) => out(process.stdout.isTTY ? `\n\x1b[1m${n}. ${title}\x1b[0m` : `\n${n}. ${title}`);
const wire = (s: string) => out(`   ${s}`);

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

async function call(ctx: Ctx, token: string, method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<Record<string, any>> {
  wire(`→ ${method} ${path}${body ? ` ${JSON.stringify(body).slice(0, 140)}${JSON.stringify(body).length > 140 ? '…' : ''}` : ''}`);
  const res = (await exchangeJson(`${ctx.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
    ca: ctx.ca,
    what: `${method} ${path}`,
  })) as Record<string, any>;
  return res;
}

export async function runDemo(ctx: Ctx): Promise<void> {
  const credential = ctx.admin;
  const accessToken = await (await import('../sdk/index.js')).getAccessToken(credential, ctx.ca);
  out(`Conclave demo against ${ctx.url} (simulated TEEs: the server must run with --simulate)`);

  step(1, 'Create an exportable RSA-HSM key whose release policy names an SEV-SNP launch measurement');
  const keyName = `demo-${randomBytes(3).toString('hex')}`;
  const policy = {
    version: '1.0.0',
    anyOf: [
      {
        authority: ctx.url,
        allOf: [
          { claim: 'x-ms-sevsnpvm-launchmeasurement', equals: MEASUREMENT },
          { claim: 'x-ms-sevsnpvm-is-debuggable', equals: 'false' },
        ],
      },
    ],
  };
  wire(`release policy: ${JSON.stringify(policy)}`);
  const created = await call(ctx, accessToken, 'POST', `/keys/${keyName}/create?api-version=7.4`, {
    kty: 'RSA-HSM',
    key_size: 2048,
    attributes: { exportable: true },
    release_policy: { contentType: 'application/json; charset=utf-8', data: b64url(JSON.stringify(policy)) },
  });
  wire(`← 200 kid ${created.key.kid}`);

  step(2, 'Let the administrator release keys (release needs its own role, even for an administrator)');
  await call(ctx, accessToken, 'PUT', '/admin/vault/roleAssignments', { principalId: ctx.admin.clientId, role: 'Key Vault Crypto Service Release User', scope: '/' });
  wire('← 200 Key Vault Crypto Service Release User at /');

  step(3, 'Inside the confidential VM: make an ephemeral RSA key and bind its public half into the SNP report');
  const workload = generateRsaKeyPair(2048);
  const jwk = { ...workload.publicKey.export({ format: 'jwk' }), kid: 'demo-transfer-key', key_ops: ['encrypt'] };
  const runtimeData = new TextEncoder().encode(JSON.stringify({ keys: [jwk] }));
  const sim = loadOrCreateSimulatedTee(ctx.dataDir);
  const snp = sim.evidence({ tee: 'snp', runtimeData, measurement: MEASUREMENT });
  wire(`runtime data: {"keys":[{"kid":"demo-transfer-key","kty":"RSA","key_ops":["encrypt"],…}]}; REPORT_DATA = SHA-256(runtime data) ‖ 0³²`);

  step(4, 'Attest: POST the evidence to the attestation service, receive a signed token');
  wire(`→ POST ${snp.path}?api-version=2022-08-01 {report: <SNP report + VCEK chain>, runtimeData: {dataType: "JSON", …}}`);
  const token = await attest({ attestationUrl: ctx.url, evidence: { path: snp.path, body: snp.body }, ca: ctx.ca });
  const c = claimsOf(token);
  wire(`← 200 token: iss ${c.iss}, x-ms-attestation-type ${c['x-ms-attestation-type']}, launchmeasurement ${String(c['x-ms-sevsnpvm-launchmeasurement']).slice(0, 16)}…, x-conclave-simulated ${c['x-conclave-simulated']}`);

  step(5, 'Release: the vault checks the token and the policy, and wraps the key to the VM key in the token');
  wire(`→ POST /keys/${keyName}/release?api-version=7.4 {target: <token>, enc: "RSA_AES_KEY_WRAP_256"}`);
  const released = await releaseKey({
    vaultUrl: ctx.url,
    keyName,
    token,
    credential,
    privateKey: workload.privateKey,
    ca: ctx.ca,
    enc: 'RSA_AES_KEY_WRAP_256',
    trustStore: ctx.ca,
  });
  const releasedN = (createPublicKey(released.keyObject).export({ format: 'jwk' }) as { n?: string }).n;
  wire(`← 200 {value: <JWS signed by the vault>}; key_hsm unwrapped inside the VM: RSA ${released.keyObject.asymmetricKeyDetails?.modulusLength ?? '?'} bits`);
  wire(`the released key ${releasedN === created.key.n ? 'IS' : 'is NOT'} the vault key ${keyName}`);

  step(6, 'Use it: the vault encrypts with the public key; only the VM can decrypt');
  const enc = await call(ctx, accessToken, 'POST', `/keys/${keyName}/encrypt?api-version=7.4`, { alg: 'RSA-OAEP-256', value: b64url('hello from the vault') });
  const { privateDecrypt, constants } = await import('node:crypto');
  const plain = privateDecrypt({ key: released.keyObject, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(enc.value, 'base64url'));
  wire(`decrypted inside the VM: "${plain.toString()}"`);

  step(7, 'An SGX enclave gets an AES key the same way, bound to its MRENCLAVE');
  const octName = `demo-aes-${randomBytes(3).toString('hex')}`;
  const sgxPolicy = { version: '1.0.0', anyOf: [{ authority: ctx.url, allOf: [{ claim: 'x-ms-sgx-mrenclave', equals: MRENCLAVE }] }] };
  await call(ctx, accessToken, 'POST', `/keys/${octName}/create?api-version=7.4`, {
    kty: 'oct-HSM',
    key_size: 256,
    attributes: { exportable: true },
    release_policy: { data: b64url(JSON.stringify(sgxPolicy)) },
  });
  const sgx = sim.evidence({ tee: 'sgx', runtimeData, mrenclave: MRENCLAVE });
  const sgxToken = await attest({ attestationUrl: ctx.url, evidence: { path: sgx.path, body: sgx.body }, ca: ctx.ca });
  wire(`← token with x-ms-sgx-mrenclave ${String(claimsOf(sgxToken)['x-ms-sgx-mrenclave']).slice(0, 16)}…`);
  const aes = await releaseKey({ vaultUrl: ctx.url, keyName: octName, token: sgxToken, credential, privateKey: workload.privateKey, ca: ctx.ca, trustStore: ctx.ca });
  const sealed = await call(ctx, accessToken, 'POST', `/keys/${octName}/encrypt?api-version=7.4`, { alg: 'A256GCM', value: b64url('sealed for the enclave') });
  const key = Buffer.from(String(aes.jwk.k), 'base64url');
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64url'));
  d.setAuthTag(Buffer.from(sealed.tag, 'base64url'));
  wire(`the enclave decrypts: "${Buffer.concat([d.update(Buffer.from(sealed.value, 'base64url')), d.final()]).toString()}"`);

  step(8, 'A VM with another measurement asks for the RSA key: denied, and told why');
  const rogue = sim.evidence({ tee: 'snp', runtimeData, measurement: '00'.repeat(48) });
  const rogueToken = await attest({ attestationUrl: ctx.url, evidence: { path: rogue.path, body: rogue.body }, ca: ctx.ca });
  try {
    await releaseKey({ vaultUrl: ctx.url, keyName, token: rogueToken, credential, privateKey: workload.privateKey, ca: ctx.ca, trustStore: ctx.ca });
    throw new CliError('the rogue VM received the key: the policy did not hold', undefined, 1);
  } catch (e) {
    if (e instanceof CliError) throw e;
    wire(`← 403 ${(e as Error).message}`);
  }
  await confidentialAi(ctx, accessToken, credential, sim);
  out('\nDone: attest → release → unwrap → use, and a denial that names the failed clause.');
}

/** Step 9: a TDX VM with two GPUs gets the model key only when CPU and both GPUs pass. */
async function confidentialAi(ctx: Ctx, accessToken: string, credential: Ctx['admin'], sim: ReturnType<typeof loadOrCreateSimulatedTee>): Promise<void> {
  step(9, 'Confidential AI: a TDX VM with two NVIDIA GPUs receives the model key only when the CPU and both GPUs pass');
  const modelKey = `demo-model-${randomBytes(3).toString('hex')}`;
  const aiPolicy = {
    version: '1.0.0',
    anyOf: [
      {
        authority: ctx.url,
        allOf: [
          { claim: 'x-ms-attestation-type', equals: 'tdxvm' },
          { claim: 'x-conclave-gpu-count', equals: 2 },
          { claim: 'x-conclave-gpus.GPU-0.measres', equals: 'success' },
          { claim: 'x-conclave-gpus.GPU-1.measres', equals: 'success' },
          { claim: 'x-nvidia-overall-att-result', equals: true },
        ],
      },
    ],
  };
  wire(`release policy: ${JSON.stringify(aiPolicy)}`);
  await call(ctx, accessToken, 'POST', `/keys/${modelKey}/create?api-version=7.4`, {
    kty: 'oct-HSM',
    key_size: 256,
    attributes: { exportable: true },
    release_policy: { data: b64url(JSON.stringify(aiPolicy)) },
  });
  const vm = generateRsaKeyPair(2048);
  const runtimeData = new TextEncoder().encode(JSON.stringify({ keys: [{ ...vm.publicKey.export({ format: 'jwk' }), kid: 'ai-vm-key', key_ops: ['encrypt'] }] }));
  const composite = sim.evidence({ tee: 'tdx', runtimeData, gpus: 2 });
  wire('GPU nonce = SHA-256("conclave-gpu-nonce-v1" ‖ runtime data): each GPU signs an SPDM report over it, so it cannot be replayed into another VM');
  wire(`→ POST ${composite.path} {quote: <TD quote>, runtimeData, gpuEvidence: [2 × {arch: "HOPPER", evidence: <SPDM report>, certificate: <chain>}]}`);
  const token = await attest({ attestationUrl: ctx.url, evidence: { path: composite.path, body: composite.body }, ca: ctx.ca });
  const c = claimsOf(token) as Record<string, any>;
  const gpus = c['x-conclave-gpus'] as Record<string, Record<string, unknown>>;
  for (const [name, g] of Object.entries(gpus)) wire(`← ${name}: hwmodel ${g.hwmodel}, driver ${g['x-nvidia-gpu-driver-version']}, measres ${g.measres}, secboot ${g.secboot}`);
  wire(`← x-nvidia-overall-att-result ${c['x-nvidia-overall-att-result']}, x-conclave-simulated ${c['x-conclave-simulated']}`);
  const model = await releaseKey({ vaultUrl: ctx.url, keyName: modelKey, token, credential, privateKey: vm.privateKey, ca: ctx.ca, trustStore: ctx.ca });
  wire(`← 200 model key released to the VM (${Buffer.from(String(model.jwk.k), 'base64url').byteLength * 8}-bit AES): the model weights can be decrypted inside the CPU and GPU TEEs`);

  const tampered = sim.evidence({ tee: 'tdx', runtimeData, gpus: 2, gpuMismatch: [1] });
  wire('the same VM, but GPU-1 runs firmware whose measurement differs from NVIDIA’s reference values (RIM):');
  const badToken = await attest({ attestationUrl: ctx.url, evidence: { path: tampered.path, body: tampered.body }, ca: ctx.ca });
  const m = (claimsOf(badToken) as Record<string, any>)['x-conclave-gpus']['GPU-1']['x-nvidia-mismatch-measurement-records'][0];
  wire(`← token: GPU-1 measres fail at index ${m.index} (expected ${String(m.goldenValues[0]).slice(0, 16)}…, actual ${String(m.runtimeValue).slice(0, 16)}…)`);
  try {
    await releaseKey({ vaultUrl: ctx.url, keyName: modelKey, token: badToken, credential, privateKey: vm.privateKey, ca: ctx.ca, trustStore: ctx.ca });
    throw new CliError('the VM with a differing GPU received the model key: the policy did not hold', undefined, 1);
  } catch (e) {
    if (e instanceof CliError) throw e;
    wire(`← 403 ${(e as Error).message}`);
  }
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('walk the whole Secure Key Release story with a simulated SEV-SNP VM, SGX enclave and a TDX VM with two GPUs, printing each exchange')
    .option('--url <url>', 'a running `conclave serve --simulate` (default: start one in a temporary directory)')
    .option('--data-dir <dir>', "that server's data dir (admin.json, tls/ca.pem, simulated vendor keys)", './data')
    .addHelpText('after', '\nExamples:\n  conclave demo\n  conclave demo --url https://127.0.0.1:8443 --data-dir ./data\n')
    .action(async (o: { url?: string; dataDir: string }) => {
      if (o.url) {
        const admin = join(o.dataDir, 'admin.json');
        if (!existsSync(admin)) throw new CliError(`no admin credential at ${admin}`, 'pass --data-dir of the running server', 2);
        // admin.json's secret goes only to the server that wrote it (or a loopback replica of it).
        const credential = adminCredentialFor(admin, JSON.parse(readFileSync(admin, 'utf8')), o.url) as Ctx['admin'];
        await runDemo({ url: o.url.replace(/\/+$/, ''), ca: readFileSync(join(o.dataDir, 'tls', 'ca.pem'), 'utf8'), admin: credential, dataDir: o.dataDir });
        return;
      }
      const dataDir = mkdtempSync(join(tmpdir(), 'conclave-demo-'));
      const config = loadConfig({ flags: { dataDir, port: 0, simulate: true, logLevel: 'error' }, env: {} });
      out(`starting a temporary server in ${dataDir} …`);
      const server = await startServer(config, { logger: createLogger('silent') });
      try {
        await runDemo({ url: server.url, ca: readFileSync(server.caPath, 'utf8'), admin: server.admin, dataDir });
      } finally {
        await server.close();
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
}
