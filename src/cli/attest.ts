import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { attest } from '../sdk/attest.js';
import { detectEvidenceSource } from '../sdk/sources/detect.js';
import type { MaaAttestPath, MaaEvidence, Tee } from '../sdk/sources/types.js';
import { decodeToken } from '../sdk/token.js';
import { CliError, type OutputFormat, defaultFormat, printResult } from './output.js';
import { readCaOption } from './token.js';

const PATHS: readonly MaaAttestPath[] = ['/attest/SgxEnclave', '/attest/SevSnpVm', '/attest/TdxVm'];

/** An evidence file: `{path, body}` as the SDK writes it, or a bare body with `--type`. */
function readEvidenceFile(file: string, type: string | undefined): MaaEvidence {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    throw new CliError(`cannot read evidence JSON from ${file}`, 'the file holds {"path": "/attest/…", "body": {…}} or an MAA request body', 2);
  }
  if (typeof j.path === 'string' && typeof j.body === 'object' && j.body !== null) {
    const path = PATHS.find((p) => p.toLowerCase() === String(j.path).toLowerCase());
    if (!path) throw new CliError(`evidence path ${String(j.path)} is not one of ${PATHS.join(', ')}`, undefined, 2);
    return { path, body: j.body as Record<string, unknown> };
  }
  const inferred: MaaAttestPath | undefined =
    type === 'sgx' ? '/attest/SgxEnclave' : type === 'tdx' ? '/attest/TdxVm' : type === 'snp' ? '/attest/SevSnpVm' : typeof j.report === 'string' ? '/attest/SevSnpVm' : undefined;
  if (!inferred) throw new CliError('cannot tell which attestation route this body is for', 'add --tee sgx|tdx|snp', 2);
  return { path: inferred, body: j };
}

/** The server URL: --url, else CONCLAVE_URL, else the origin of the token endpoint in <data-dir>/admin.json. */
function serverUrl(flag: string | undefined, dataDir: string): string {
  const fromEnv = process.env.CONCLAVE_URL || undefined;
  let fromAdmin: string | undefined;
  const admin = join(dataDir, 'admin.json');
  if (existsSync(admin)) {
    try {
      fromAdmin = new URL((JSON.parse(readFileSync(admin, 'utf8')) as { tokenEndpoint: string }).tokenEndpoint).origin;
    } catch {
      fromAdmin = undefined;
    }
  }
  const url = flag ?? fromEnv ?? fromAdmin;
  if (!url) throw new CliError('no attestation service URL', 'pass --url, set CONCLAVE_URL, or point --data-dir at the server data dir', 2);
  return url.replace(/\/+$/, '');
}

export function registerAttest(program: Command): void {
  program
    .command('attest')
    .description('get an attestation token for evidence (a file) or for evidence this machine produces')
    .option('--url <url>', 'attestation service base URL (env CONCLAVE_URL; default from <data-dir>/admin.json)')
    .option('--evidence <file>', 'MAA request JSON ({path, body} or a bare body)')
    .addOption(new Option('--source <source>', 'evidence source').choices(['auto', 'sim', 'tsm', 'azure-vtpm']))
    .addOption(new Option('--tee <tee>', 'TEE for the simulated source, or the route of a bare evidence body').choices(['sgx', 'tdx', 'snp']))
    .option('--runtime-data <file>', 'runtime data to bind (default: none for files, {} for sources)')
    .option('--data-dir <dir>', 'data dir holding the simulated vendor hierarchy (sim)', './data')
    .option('--ca <file>', 'PEM CA certificate to trust (env CONCLAVE_CA; default <data-dir>/tls/ca.pem when present)')
    .option('--decode', 'print the decoded claims instead of the token (not verified)')
    .option('--output <format>', 'json|table')
    .addHelpText(
      'after',
      '\nExamples:\n  conclave attest --url https://127.0.0.1:8443 --source sim --tee snp --ca data/tls/ca.pem --decode\n  conclave attest --url https://127.0.0.1:8443 --evidence req.json --ca data/tls/ca.pem\n',
    )
    .action(async (flags: { url?: string; evidence?: string; source?: string; tee?: Tee; runtimeData?: string; dataDir: string; ca?: string; decode?: boolean; output?: string }) => {
      const fmt: OutputFormat = flags.output === 'json' || flags.output === 'table' ? flags.output : defaultFormat();
      if (flags.output !== undefined && flags.output !== 'json' && flags.output !== 'table') throw new CliError(`unknown output format ${flags.output}`, 'use json or table', 2);
      if (!flags.evidence === !flags.source) throw new CliError('give exactly one of --evidence FILE or --source', 'conclave attest --help', 2);
      const url = serverUrl(flags.url, flags.dataDir);
      const caFile = flags.ca ?? process.env.CONCLAVE_CA ?? (existsSync(join(flags.dataDir, 'tls', 'ca.pem')) ? join(flags.dataDir, 'tls', 'ca.pem') : undefined);
      const ca = readCaOption(caFile);
      let runtimeData: Uint8Array | undefined;
      if (flags.runtimeData) {
        try {
          runtimeData = new Uint8Array(readFileSync(flags.runtimeData));
        } catch {
          throw new CliError(`cannot read ${flags.runtimeData}`, undefined, 2);
        }
      }
      let token: string;
      if (flags.evidence) {
        const evidence = readEvidenceFile(flags.evidence, flags.tee);
        token = await attest({ attestationUrl: url, evidence, ...(runtimeData ? { runtimeData } : {}), ...(ca ? { ca } : {}) });
      } else {
        const { source } = await detectEvidenceSource({
          preference: flags.source as 'auto' | 'sim' | 'tsm' | 'azure-vtpm',
          sim: { dataDir: flags.dataDir, tee: flags.tee ?? 'snp' },
        });
        token = await attest({
          attestationUrl: url,
          source,
          runtimeData: runtimeData ?? new Uint8Array(Buffer.from('{}')),
          ...(flags.tee ? { tee: flags.tee } : {}),
          ...(ca ? { ca } : {}),
        });
      }
      if (flags.decode) {
        const d = decodeToken(token);
        printResult({ verified: false, header: d.header, claims: d.claims }, fmt);
      } else if (fmt === 'json') {
        printResult({ token }, fmt);
      } else {
        process.stdout.write(`${token}\n`);
      }
    });
}
