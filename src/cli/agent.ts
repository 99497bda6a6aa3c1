import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { startAgent } from '../agent/server.js';
import type { ClientCredential, Credential } from '../sdk/credential.js';
import { type SourcePreference, detectEvidenceSource } from '../sdk/sources/detect.js';
import type { Tee } from '../sdk/sources/types.js';
import { type GpuEvidenceCollector, nvattestCollector, simulatedGpuCollector } from '../sdk/sources/nvidia-gpu.js';
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
  releaseTrust?: string;
  allowSelfSignedReleaseCert?: boolean;
  tsmRoot?: string;
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

function credentialOf(flags: AgentFlags, dataDir: string): { credential?: Credential; from: string } {
  if (flags.clientId || flags.clientSecret || flags.tokenEndpoint) {
    if (!flags.clientId || !flags.clientSecret || !flags.tokenEndpoint) throw new CliError('--client-id, --client-secret and --token-endpoint go together', undefined, 2);
    return { credential: { clientId: flags.clientId, clientSecret: flags.clientSecret, tokenEndpoint: flags.tokenEndpoint }, from: 'flags' };
  }
  const adminPath = join(dataDir, 'admin.json');
  if (existsSync(adminPath)) {
    try {
      const c = JSON.parse(readFileSync(adminPath, 'utf8')) as ClientCredential;
      if (c.clientId && c.clientSecret && c.tokenEndpoint) return { credential: c, from: adminPath };
    } catch {
      throw new CliError(`cannot read ${adminPath}`, undefined, 2);
    }
  }
  return { from: 'none (requests must carry access_token)' };
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the SKR sidecar-compatible agent on 127.0.0.1 (GET /status, POST /attest/raw|combined|maa, POST /key/release)')
    .option('--port <n>', 'listen port on 127.0.0.1 (0 picks a free port)', '8080')
    .option('--attestation-url <url>', 'attestation service used when a request names no maa_endpoint')
    .option('--vault-url <url>', 'vault used when a request names no akv_endpoint')
    .addOption(new Option('--source <source>', 'evidence source').choices(['auto', 'tsm', 'azure-vtpm', 'sim']).default('auto'))
    .addOption(new Option('--tee <tee>', 'TEE the simulated source plays').choices(['snp', 'tdx', 'sgx']).default('snp'))
    .option('--data-dir <dir>', 'server data dir: simulated vendor hierarchy (sim) and admin.json credential', './data')
    .option('--ca <file>', 'PEM CA certificate to trust for the attestation service and vault')
    .option('--client-id <id>', 'vault client credential (else <data-dir>/admin.json, else access_token per request)')
    .option('--client-secret <secret>', 'vault client secret')
    .option('--token-endpoint <url>', 'OAuth2 token endpoint for the client credential')
    .option('--release-trust <file>', 'PEM CA certificate(s) the release JWS x5c chain must end in')
    .option('--allow-self-signed-release-cert', 'accept a self-signed release signer (a Conclave data dir from before its local CA issued release certificates); only with a pinned --ca')
    .option('--tsm-root <dir>', 'configfs-tsm report directory', '/sys/kernel/config/tsm/report')
    .option('--collateral-url <url>', 'KDS/THIM-compatible URL for SNP certificates when the platform gives none')
    .addOption(new Option('--collateral-kind <kind>', 'collateral URL protocol').choices(['kds', 'thim']).default('kds'))
    .option('--output <format>', 'json|table (the startup summary)')
    .option('--gpus <collector>', 'attest the GPUs with the CPU: nvattest (NVIDIA collector, NVML) or sim:N (simulated, development)')
    .addHelpText(
      'after',
      '\nExample:\n  conclave agent --source sim --data-dir ./data --ca ./data/tls/ca.pem --release-trust ./data/tls/ca.pem\n  curl -s localhost:8080/key/release -d \'{"maa_endpoint":"127.0.0.1:8443","akv_endpoint":"127.0.0.1:8443","kid":"mykey"}\'\n',
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
      const { credential, from } = credentialOf(flags, dataDir);
      const detected = await detectEvidenceSource({
        preference: flags.source,
        ...(flags.tsmRoot ? { tsm: { root: flags.tsmRoot } } : {}),
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
        ...(credential ? { credential } : {}),
        ...(ca ? { ca } : {}),
        ...(trustStore ? { trustStore } : {}),
        ...(flags.allowSelfSignedReleaseCert ? { allowSelfSignedReleaseCert: true } : {}),
        log: (line, fields) => process.stderr.write(`${new Date().toISOString()} ${line}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`),
      });
      printResult({ listening: agent.url, source: detected.source.describe(), findings: detected.findings, credential: from }, fmt);
      const stop = () => {
        agent.close().then(() => process.exit(0));
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
}
