import { createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { startAgent } from '../agent/server.js';
import type { ClientCredential, Credential } from '../sdk/credential.js';
import { type SourcePreference, detectEvidenceSource } from '../sdk/sources/detect.js';
import type { Tee } from '../sdk/sources/types.js';
import { type GpuEvidenceCollector, nvattestCollector, simulatedGpuCollector } from '../sdk/sources/nvidia-gpu.js';
import { replacePrivateFile } from './files.js';
import { CliError, type OutputFormat, defaultFormat, printResult } from './output.js';
import { readCaOption } from './token.js';

interface AgentFlags {
  port: string;
  attestationUrl?: string;
  vaultUrl?: string;
  source: SourcePreference;
  tee: Tee;
  dataDir: string;
  ca?: string;
  clientId?: string;
  clientSecret?: string;
  tokenEndpoint?: string;
  credentialFile?: string;
  allowEndpoint?: string[];
  authTokenFile?: string;
  releaseTrust?: string;
  allowSelfSignedReleaseCert?: boolean;
  requireInclusion?: boolean;
  logKey?: string;
  tsmRoot?: string;
  securityContextDir?: string;
  collateralUrl?: string;
  collateralKind?: 'kds' | 'thim';
  output?: string;
  gpus?: string;
}

/** `--gpus nvattest` (the host's GPUs through NVIDIA's collector) or `--gpus sim:N` (simulated, development). */
function gpuCollectorOf(spec: string | undefined, dataDir: string): GpuEvidenceCollector | undefined {
  if (spec === undefined) return undefined;
  if (spec === 'nvattest') return nvattestCollector();
  const m = /^sim:([1-8])$/.exec(spec);
  if (m) return simulatedGpuCollector(dataDir, Number(m[1]));
  throw new CliError(`--gpus must be nvattest or sim:N (N = 1..8), not ${spec}`, undefined, 2);
}

/** Only https, so the agent's tokens never travel in clear; `what` names the flag in the error. */
function httpsUrl(value: string, what: string): string {
  let u: URL;
  try {
    u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `https://${value}`);
  } catch {
    throw new CliError(`${what} ${value} is not a URL`, undefined, 2);
  }
  if (u.protocol !== 'https:') throw new CliError(`${what} ${value} must be https: the agent sends tokens only over TLS`, undefined, 2);
  return value;
}

/**
 * The agent's own vault credential: flags or a credential file (JSON: clientId, clientSecret,
 * tokenEndpoint), never the data dir's administrator credential by default. Give it a client that
 * holds only the release role (docs/agent.md).
 */
function credentialOf(flags: AgentFlags): { credential?: Credential; from: string } {
  if (flags.credentialFile && (flags.clientId || flags.clientSecret || flags.tokenEndpoint)) throw new CliError('--credential-file and --client-id/--client-secret/--token-endpoint exclude each other', undefined, 2);
  if (flags.clientId || flags.clientSecret || flags.tokenEndpoint) {
    if (!flags.clientId || !flags.clientSecret || !flags.tokenEndpoint) throw new CliError('--client-id, --client-secret and --token-endpoint go together', undefined, 2);
    return { credential: { clientId: flags.clientId, clientSecret: flags.clientSecret, tokenEndpoint: httpsUrl(flags.tokenEndpoint, '--token-endpoint') }, from: 'flags' };
  }
  if (flags.credentialFile) {
    let c: Partial<ClientCredential>;
    try {
      c = JSON.parse(readFileSync(flags.credentialFile, 'utf8')) as Partial<ClientCredential>;
    } catch {
      throw new CliError(`cannot read ${flags.credentialFile} as JSON`, 'the file holds {"clientId", "clientSecret", "tokenEndpoint"} (conclave client create --out FILE writes one)', 2);
    }
    if (typeof c.clientId !== 'string' || typeof c.clientSecret !== 'string' || typeof c.tokenEndpoint !== 'string') {
      throw new CliError(`${flags.credentialFile} lacks clientId, clientSecret or tokenEndpoint`, undefined, 2);
    }
    return { credential: { clientId: c.clientId, clientSecret: c.clientSecret, tokenEndpoint: httpsUrl(c.tokenEndpoint, 'tokenEndpoint') }, from: flags.credentialFile };
  }
  return { from: 'none (requests must carry access_token)' };
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the SKR sidecar-compatible agent on 127.0.0.1 (GET /status, POST /attest/raw|combined|maa, POST /key/release)')
    .option('--port <n>', 'listen port on 127.0.0.1 (0 picks a free port)', '8080')
    .option('--attestation-url <url>', 'the attestation service (https): used when a request names no maa_endpoint, the only one it may name')
    .option('--vault-url <url>', 'the vault (https): used when a request names no akv_endpoint, the only one it may name')
    .option('--allow-endpoint <url...>', 'more https endpoints requests may name as maa_endpoint/akv_endpoint (sidecar clients that name theirs)')
    .addOption(new Option('--source <source>', 'evidence source').choices(['auto', 'tsm', 'azure-vtpm', 'sim']).default('auto'))
    .addOption(new Option('--tee <tee>', 'TEE the simulated source plays').choices(['snp', 'tdx', 'sgx']).default('snp'))
    .option('--data-dir <dir>', 'server data dir: the simulated vendor hierarchy (--source sim)', './data')
    .option('--ca <file>', 'PEM CA certificate to trust for the attestation service and vault')
    .option('--credential-file <file>', 'vault client credential JSON {clientId, clientSecret, tokenEndpoint}: a client holding only the release role')
    .option('--client-id <id>', 'vault client credential (else --credential-file, else access_token per request)')
    .option('--client-secret <secret>', 'vault client secret')
    .option('--token-endpoint <url>', 'OAuth2 token endpoint for the client credential')
    .option('--release-trust <file>', 'PEM CA certificate(s) the release JWS x5c chain must end in')
    .option('--allow-self-signed-release-cert', 'accept a self-signed release signer (a Conclave data dir from before its local CA issued release certificates); requires a pinned --ca')
    .option('--require-inclusion', "hand a released key out only once its release is proven in the vault's transparency log (docs/audit.md)")
    .option('--log-key <file>', 'with --require-inclusion: PEM public key the log heads must be signed by (else fetched from the vault on each release)')
    .option('--auth-token-file <file>', 'write a fresh random token here (0600) at start; every request must send Authorization: Bearer <token>')
    .option('--tsm-root <dir>', 'configfs-tsm report directory', '/sys/kernel/config/tsm/report')
    .option('--security-context-dir <dir>', 'Azure confidential containers: the UVM security context (UVM endorsement, THIM certificates) sent with SEV-SNP evidence (default: $UVM_SECURITY_CONTEXT_DIR)')
    .option('--collateral-url <url>', 'KDS/THIM-compatible URL for SNP certificates when the platform gives none')
    .addOption(new Option('--collateral-kind <kind>', 'collateral URL protocol').choices(['kds', 'thim']).default('kds'))
    .option('--output <format>', 'json|table (the startup summary)')
    .option('--gpus <collector>', 'attest the GPUs with the CPU: nvattest (NVIDIA collector, NVML) or sim:N (simulated, development)')
    .addHelpText(
      'after',
      '\nExample:\n  conclave agent --source sim --data-dir ./data --ca ./data/tls/ca.pem --release-trust ./data/tls/ca.pem \\\n    --attestation-url https://127.0.0.1:8443 --vault-url https://127.0.0.1:8443 --credential-file ./agent-client.json\n  curl -s localhost:8080/key/release -H \'Content-Type: application/json\' -d \'{"kid":"mykey"}\'\n',
    )
    .action(async (flags: AgentFlags) => {
      const fmt: OutputFormat = flags.output === 'json' || flags.output === 'table' ? flags.output : defaultFormat();
      const port = Number(flags.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port ${flags.port} is not a port number`, undefined, 2);
      const dataDir = resolve(flags.dataDir);
      const ca = readCaOption(flags.ca);
      let trustStore: string | undefined;
      if (flags.releaseTrust) {
        try {
          trustStore = readFileSync(flags.releaseTrust, 'utf8');
        } catch {
          throw new CliError(`cannot read ${flags.releaseTrust}`, undefined, 2);
        }
      }
      let logKey: string | undefined;
      if (flags.logKey) {
        if (!flags.requireInclusion) throw new CliError('--log-key goes with --require-inclusion', undefined, 2);
        try {
          logKey = readFileSync(flags.logKey, 'utf8');
          createPublicKey(logKey);
        } catch {
          throw new CliError(`cannot read a PEM public key from ${flags.logKey}`, undefined, 2);
        }
      }
      if (flags.allowSelfSignedReleaseCert && !flags.ca) throw new CliError('--allow-self-signed-release-cert requires --ca', 'pin the CA of the vault you trust; a self-signed release signer is only as good as the TLS pin', 2);
      for (const [v, what] of [
        [flags.attestationUrl, '--attestation-url'],
        [flags.vaultUrl, '--vault-url'],
        ...(flags.allowEndpoint ?? []).map((e) => [e, '--allow-endpoint'] as const),
      ] as const) {
        if (v !== undefined) httpsUrl(v, what);
      }
      const { credential, from } = credentialOf(flags);
      let authToken: string | undefined;
      if (flags.authTokenFile) {
        authToken = randomBytes(32).toString('base64url');
        replacePrivateFile(flags.authTokenFile, `${authToken}\n`);
      }
      const detected = await detectEvidenceSource({
        preference: flags.source,
        ...(flags.tsmRoot ? { tsm: { root: flags.tsmRoot, ...(flags.securityContextDir ? { securityContextDir: flags.securityContextDir } : {}) } } : {}),
        sim: { dataDir, tee: flags.tee },
        ...(flags.collateralUrl ? { collateral: { url: flags.collateralUrl, kind: flags.collateralKind ?? 'kds', ...(ca ? { ca } : {}) } } : {}),
      });
      const gpus = gpuCollectorOf(flags.gpus, dataDir);
      const agent = await startAgent({
        source: detected.source,
        ...(gpus ? { gpus } : {}),
        port,
        tee: flags.tee,
        ...(flags.attestationUrl ? { attestationUrl: flags.attestationUrl } : {}),
        ...(flags.vaultUrl ? { vaultUrl: flags.vaultUrl } : {}),
        ...(flags.allowEndpoint ? { allowedEndpoints: flags.allowEndpoint } : {}),
        ...(authToken ? { authToken } : {}),
        ...(credential ? { credential } : {}),
        ...(ca ? { ca } : {}),
        ...(trustStore ? { trustStore } : {}),
        ...(flags.allowSelfSignedReleaseCert ? { allowSelfSignedReleaseCert: true } : {}),
        ...(flags.requireInclusion ? { requireInclusion: true, ...(logKey !== undefined ? { logKey } : {}) } : {}),
        log: (line, fields) => process.stderr.write(`${new Date().toISOString()} ${line}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`),
      });
      printResult(
        {
          listening: agent.url,
          source: detected.source.describe(),
          findings: detected.findings,
          credential: from,
          endpoints: [flags.attestationUrl, flags.vaultUrl, ...(flags.allowEndpoint ?? [])].filter((e) => e !== undefined),
          ...(flags.authTokenFile ? { tokenFile: flags.authTokenFile } : {}),
        },
        fmt,
      );
      const stop = () => {
        agent.close().then(() => process.exit(0));
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
}
