import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { isConclaveError } from '../core/errors.js';
import { decodeToken, verifyAttestationToken } from '../sdk/token.js';
import { CliError, type OutputFormat, defaultFormat, printResult } from './output.js';

/** A token given inline, or a file holding it (or `{"token": …}`). */
export function readTokenArg(arg: string): string {
  let text = arg;
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(arg.trim())) {
    if (!existsSync(arg)) throw new CliError(`${arg} is neither a token nor a readable file`, 'pass the JWT itself or a file holding it', 2);
    text = readFileSync(arg, 'utf8').trim();
    if (text.startsWith('{')) {
      try {
        const j = JSON.parse(text) as { token?: unknown };
        if (typeof j.token === 'string') text = j.token;
      } catch {
        // not JSON after all: use as is
      }
    }
  }
  return text.trim();
}

export function readCaOption(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new CliError(`cannot read CA file ${path}`, 'pass the PEM file of the server CA (for a Conclave: <data-dir>/tls/ca.pem)', 2);
  }
}

function format(v: unknown): OutputFormat {
  if (v === undefined) return defaultFormat();
  if (v !== 'json' && v !== 'table') throw new CliError(`unknown output format ${String(v)}`, 'use --output json or --output table', 2);
  return v;
}

export function registerToken(program: Command): void {
  const token = program.command('token').description('inspect attestation tokens (JWT)');
  token
    .command('decode')
    .description('print the header and claims of a token WITHOUT verifying it')
    .argument('<token>', 'the token, or a file holding it')
    .option('--output <format>', 'json|table')
    .addHelpText('after', '\nExample:\n  conclave token decode token.jwt --output json\n')
    .action((arg: string, flags: { output?: string }) => {
      let decoded: ReturnType<typeof decodeToken>;
      try {
        decoded = decodeToken(readTokenArg(arg));
      } catch (e) {
        if (e instanceof CliError) throw e;
        throw new CliError(`not a JWT: ${(e as Error).message}`, 'a token has three base64url parts separated by dots', 2);
      }
      const fmt = format(flags.output);
      printResult({ verified: false, note: 'decoded only: signature, issuer and lifetime NOT verified (use conclave token verify)', header: decoded.header, claims: decoded.claims }, fmt);
    });
  token
    .command('verify')
    .description("verify a token's signature, issuer and lifetime against the issuer's OpenID metadata (exit 1 if invalid)")
    .argument('<token>', 'the token, or a file holding it')
    .requiredOption('--issuer <url>', 'the expected issuer (attestation service base URL)')
    .option('--ca <file>', 'PEM CA certificate to trust for the issuer (a Conclave: <data-dir>/tls/ca.pem)')
    .option('--allow-simulated', 'accept a token from simulated evidence (x-conclave-simulated; development only)')
    .option('--output <format>', 'json|table')
    .addHelpText('after', '\nExamples:\n  conclave token verify token.jwt --issuer https://127.0.0.1:8443 --ca data/tls/ca.pem\n  conclave token verify token.jwt --issuer https://127.0.0.1:8443 --ca data/tls/ca.pem --allow-simulated   (a token from `npm start`, which runs --simulate)\n')
    .action(async (arg: string, flags: { issuer: string; ca?: string; allowSimulated?: boolean; output?: string }) => {
      const fmt = format(flags.output);
      const t = readTokenArg(arg);
      const ca = readCaOption(flags.ca);
      try {
        const v = await verifyAttestationToken(t, { issuer: flags.issuer, ...(ca ? { ca } : {}), ...(flags.allowSimulated ? { allowSimulated: true } : {}) });
        printResult({ valid: true, issuer: v.claims.iss, kid: v.header.kid, exp: v.claims.exp, claims: v.claims }, fmt);
      } catch (e) {
        if (isConclaveError(e, 'sdk.token_invalid') || isConclaveError(e, 'request.invalid')) {
          printResult({ valid: false, code: e.code, reason: e.message }, fmt);
          process.exitCode = 1;
          return;
        }
        throw e;
      }
    });
}
