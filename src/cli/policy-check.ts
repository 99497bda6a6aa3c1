/**
 * `conclave policy-check`: a dry run of a key release policy against a token's claims, offline.
 * The token is decoded, NOT verified — this answers "would these claims satisfy this policy", not
 * "is this token genuine". Exit 0 the policy holds, 1 it fails, 2 usage/IO error or malformed policy.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { isConclaveError } from '../core/errors.js';
import { evaluateReleasePolicy, explainDecision, parseReleasePolicy, type ReleasePolicy } from '../vault/release/policy.js';
import { decodeJws } from '../vault/release/target-token.js';
import { CliError } from './output.js';

export interface PolicyCheckOptions {
  /** Path of the policy JSON (the file `az keyvault key create --policy` takes). */
  policy: string;
  /** Path of a JWT (compact JWS), or of an MAA response `{"token": "..."}`. */
  token?: string;
  /** Path of a JSON object of claims (a decoded token payload). */
  claims?: string;
  /** The issuer to match authorities against; defaults to the claims' `iss`. */
  issuer?: string;
}

export interface PolicyCheckIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: PolicyCheckIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** A usage or input problem: exit 2 (README.md, CLI). */
const usageError = (message: string) => new CliError(message, undefined, 2);

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw usageError(`cannot read ${what} file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function tokenClaims(text: string): Record<string, unknown> {
  let jwt = text.trim();
  if (jwt.startsWith('{')) {
    try {
      const body = JSON.parse(jwt) as { token?: unknown };
      if (typeof body.token === 'string') jwt = body.token;
    } catch {
      throw usageError('token file is neither a JWT nor JSON {"token": "..."}');
    }
  }
  try {
    return decodeJws(jwt).payload;
  } catch (e) {
    throw usageError(`token file does not hold a decodable JWT: ${(e as Error).message}`);
  }
}

async function loadClaims(opts: PolicyCheckOptions): Promise<{ claims: Record<string, unknown>; source: 'token' | 'claims' }> {
  if (opts.token !== undefined) return { claims: tokenClaims(await readText(opts.token, 'token')), source: 'token' };
  const text = await readText(opts.claims as string, 'claims');
  let claims: unknown;
  try {
    claims = JSON.parse(text);
  } catch (e) {
    throw usageError(`claims file is not JSON: ${(e as Error).message}`);
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw usageError('claims file must hold a JSON object');
  return { claims: claims as Record<string, unknown>, source: 'claims' };
}

/** Runs the dry run, prints the decision with its full trace as JSON, and returns the exit code. */
export async function policyCheckCommand(opts: PolicyCheckOptions, io: PolicyCheckIo = processIo): Promise<number> {
  try {
    if ((opts.token === undefined) === (opts.claims === undefined)) throw usageError('give exactly one of --token or --claims');
    let policy: ReleasePolicy;
    const policyText = await readText(opts.policy, 'policy');
    try {
      policy = parseReleasePolicy(policyText);
    } catch (e) {
      if (!isConclaveError(e, 'release.policy_invalid')) throw e;
      throw usageError(`${e.message} (${JSON.stringify(e.detail)})`);
    }
    const { claims, source } = await loadClaims(opts);
    const issuer = opts.issuer ?? (typeof claims.iss === 'string' ? claims.iss : undefined);
    if (issuer === undefined) throw usageError('the claims have no iss; give --issuer');
    const decision = evaluateReleasePolicy(policy, claims, issuer);
    const report = {
      dryRun: true,
      notice:
        source === 'token'
          ? 'dry run: the token was decoded but its signature, issuer trust and validity period were NOT verified'
          : 'dry run: claims were read from a file; no token was verified',
      issuer,
      released: decision.released,
      ...(decision.released ? { authority: decision.authority } : { failures: decision.failures }),
      explanation: explainDecision(decision),
      trace: decision.trace,
    };
    io.stdout(`${JSON.stringify(report, null, 2)}\n`);
    return decision.released ? 0 : 1;
  } catch (e) {
    if (e instanceof CliError && e.exitCode === 2) {
      io.stderr(`error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

/** Wires the command into the `conclave` program (src/cli/main.ts). */
export function registerPolicyCheck(program: Command): void {
  program
    .command('check')
    .description('dry-run a key release policy against a token (decoded, not verified) or a claims file')
    .requiredOption('--policy <file>', 'release policy JSON (as for az keyvault key create --policy)')
    .option('--token <file>', 'attestation token (JWT, or MAA response {"token": ...})')
    .option('--claims <file>', 'JSON object of claims')
    .option('--issuer <url>', 'issuer to match policy authorities against (default: the iss claim)')
    .action(async (o: PolicyCheckOptions) => {
      process.exitCode = await policyCheckCommand(o);
    });
}
