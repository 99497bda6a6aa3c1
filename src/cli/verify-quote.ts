/**
 * `conclave verify quote QUOTE_FILE (--collateral FILE | --pccs URL [--timeout SECONDS]) [--at ISO-8601] [--freshness strict|azure]`:
 * prints the verification result as JSON. Exit 0 verified, 1 verification failed, 2 usage or I/O error.
 */
import { readFile } from 'node:fs/promises';
import { parsePckSgxExtension } from '../evidence/dcap/pck-extension.js';
import { isConclaveError } from '../core/errors.js';
import { parseCertificate } from '../core/x509.js';
import { type QuoteCollateral, parseQuote, parseQuoteCollateral, pckChainDers, teeOf, verifyQuote } from '../evidence/dcap/index.js';
import { fetchQuoteCollateral } from '../upstream/pcs-collateral.js';
import { evidenceBytes } from './input.js';

export interface VerifyQuoteCommandOptions {
  readonly collateral?: string;
  readonly pccs?: string;
  readonly at?: string;
  readonly freshness?: string;
  readonly caFile?: string;
  /** Total deadline of the --pccs fetch, in seconds (default 30). */
  readonly timeout?: string;
}

/** A quote file may hold the raw bytes, or hex / base64 text of them. */
/** Where the command writes; process.stdout / process.stderr unless a caller (a test) passes its own. */
export interface CommandIo {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
}

export async function verifyQuoteCommand(quoteFile: string, opts: VerifyQuoteCommandOptions, io: CommandIo = process): Promise<number> {
  const usage = (message: string): number => {
    io.stderr.write(`conclave verify quote: ${message}\n`);
    return 2;
  };
  if (!opts.collateral === !opts.pccs) return usage('give exactly one of --collateral FILE or --pccs URL');
  const freshness = opts.freshness ?? 'strict';
  if (freshness !== 'strict' && freshness !== 'azure') return usage('--freshness must be strict or azure');
  const at = opts.at ? new Date(opts.at) : new Date();
  if (Number.isNaN(at.getTime())) return usage('--at must be an ISO-8601 date-time');
  const timeoutS = opts.timeout === undefined ? 30 : Number(opts.timeout);
  if (!/^\d+(\.\d+)?$/.test(opts.timeout ?? '30') || !(timeoutS > 0 && timeoutS <= 3600)) return usage('--timeout must be a number of seconds (at most 3600)');

  let raw: Buffer;
  let collateralText: string | undefined;
  let ca: Buffer | undefined;
  try {
    raw = await readFile(quoteFile);
    if (opts.collateral) collateralText = await readFile(opts.collateral, 'utf8');
    if (opts.caFile) ca = await readFile(opts.caFile);
  } catch (e) {
    return usage((e as Error).message);
  }

  const failed = (e: unknown): number => {
    if (!isConclaveError(e)) throw e;
    io.stdout.write(`${JSON.stringify({ verified: false, error: { code: e.code, message: e.message } }, null, 2)}\n`);
    return 1;
  };

  let quote: ReturnType<typeof parseQuote>;
  try {
    quote = parseQuote(evidenceBytes(raw));
  } catch (e) {
    return failed(e);
  }

  let collateral: QuoteCollateral;
  if (collateralText !== undefined) {
    try {
      collateral = parseQuoteCollateral(collateralText);
    } catch (e) {
      return failed(e);
    }
  } else {
    let fmspc: string;
    let pckCa: 'processor' | 'platform';
    try {
      // The chain's bounds (3 certificates, 32 KiB) before anything is asked of the PCCS, as the service applies them.
      const chain = pckChainDers(quote.signatureData.certificationData.data);
      const leaf = parseCertificate(chain[0] ?? new Uint8Array());
      fmspc = parsePckSgxExtension(leaf).fmspc;
      pckCa = leaf.issuerCN?.includes('Processor') ? 'processor' : 'platform';
    } catch (e) {
      return failed(e);
    }
    try {
      collateral = await fetchQuoteCollateral({ baseUrl: opts.pccs!, fmspc, tee: teeOf(quote), pckCa, timeoutMs: timeoutS * 1000, ...(ca ? { ca } : {}) });
    } catch (e) {
      if (isConclaveError(e) && (e.code === 'collateral.malformed' || e.code === 'collateral.missing')) return failed(e);
      return usage(`fetching collateral from ${opts.pccs}: ${(e as Error).message}`);
    }
  }

  try {
    const result = verifyQuote(quote, collateral, { at, freshness });
    io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (e) {
    return failed(e);
  }
}
