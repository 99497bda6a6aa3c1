/**
 * `conclave verify snp EVIDENCE_FILE`: verifies SEV-SNP evidence offline (or with an AMD KDS-compatible
 * service for the VCEK) and prints the verified facts as JSON. Exit 0 verified, 1 verification failed
 * (`{"verified": false, "error": {code, message}}` on stdout), 2 usage or I/O error (stderr).
 */
import { readFile } from 'node:fs/promises';
import { isConclaveError } from '../core/errors.js';
import { pemToDer } from '../core/x509.js';
import { isThimAmdCertification, parseThimAmdCertification } from '../collateral/amd/thim.js';
import { AMD_PRODUCTS, type AmdProduct } from '../evidence/snp/roots.js';
import { parseHclReport } from '../evidence/azure-vtpm/hcl.js';
import {
  type SnpCertificates,
  type SnpEvidenceFormat,
  decodeTcb,
  detectSnpEvidenceFormat,
  parseSnpReport,
  parseTrusteeAzSnpVtpmEvidence,
  tcbLayoutOf,
  verifyAzureHclReport,
  verifyMaaSevSnpEvidence,
  verifySnpReport,
} from '../evidence/snp/index.js';
import { fetchVcek } from '../upstream/kds.js';
import { CliError } from './output.js';
import { evidenceBytes } from './input.js';

export interface VerifySnpOptions {
  /** VCEK/VLEK file: DER, PEM (optionally followed by ASK and ARK), or a THIM AMD certification JSON. */
  vcek?: string;
  /** ASK/ASVK and ARK file (PEM, as KDS cert_chain serves it, or DER). */
  chain?: string;
  /** Base URL of an AMD KDS-compatible service to fetch the VCEK from. */
  kds?: string;
  format?: string;
  /** Runtime data file: MAA runtime data, or the Azure HCL runtime data to bind instead of the embedded one. */
  runtimeData?: string;
  /** Init-time data file (the container security policy) that HOST_DATA must bind. */
  initTimeData?: string;
  /** Verification time, ISO-8601; defaults to now. */
  at?: string;
}

export interface VerifySnpIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: VerifySnpIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** A usage or input problem: exit 2 (README.md, CLI). */
const usageError = (message: string) => new CliError(message, undefined, 2);

async function readBytes(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw usageError(`cannot read ${what} file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function certsOf(bytes: Uint8Array): Uint8Array[] {
  const text = Buffer.from(bytes).toString('latin1');
  if (isThimAmdCertification(text)) {
    const t = parseThimAmdCertification(Buffer.from(bytes).toString('utf8'));
    return [t.vcek, ...t.chain];
  }
  if (text.includes('-----BEGIN CERTIFICATE-----')) return pemToDer(text);
  return [bytes];
}

const FORMATS: readonly SnpEvidenceFormat[] = ['raw', 'azure-hcl', 'maa-json'];

/** The report inside the evidence, for building a KDS VCEK request. */
function innerReport(evidence: Uint8Array, format: SnpEvidenceFormat): Uint8Array | undefined {
  if (format === 'raw') return evidence;
  if (format === 'azure-hcl') return parseHclReport(parseTrusteeAzSnpVtpmEvidence(evidence)?.hclReport ?? evidence).hwReport;
  return undefined;
}

async function vcekFromKds(baseUrl: string, report: Uint8Array): Promise<Uint8Array> {
  const r = parseSnpReport(report);
  // v2 reports do not name their product; KDS answers 404 for the wrong one, so try each in turn.
  const candidates: readonly AmdProduct[] = r.cpuidProduct ? [r.cpuidProduct] : AMD_PRODUCTS.filter((p) => p !== 'Turin');
  let last: unknown;
  for (const product of candidates) {
    try {
      return await fetchVcek({ baseUrl }, product, r.chipId, decodeTcb(r.reportedTcb, tcbLayoutOf(product)));
    } catch (e) {
      last = e;
      if (!isConclaveError(e, 'collateral.not_found')) throw e;
    }
  }
  throw last;
}

export async function verifySnpCommand(evidenceFile: string, opts: VerifySnpOptions, io: VerifySnpIo = processIo): Promise<number> {
  let evidence: Uint8Array;
  let at: Date;
  let format: SnpEvidenceFormat;
  const certs: { vcek?: Uint8Array; chain: Uint8Array[] } = { chain: [] };
  let runtimeData: Uint8Array | undefined;
  let initTimeData: Uint8Array | undefined;
  try {
    at = opts.at === undefined ? new Date() : new Date(opts.at);
    if (Number.isNaN(at.getTime())) throw usageError(`--at "${opts.at}" is not an ISO-8601 time`);
    if (opts.format !== undefined && !(FORMATS as readonly string[]).includes(opts.format)) {
      throw usageError(`--format must be one of ${FORMATS.join(', ')}`);
    }
    evidence = evidenceBytes(await readBytes(evidenceFile, 'evidence'));
    if (opts.vcek) {
      const [vcek, ...rest] = certsOf(await readBytes(opts.vcek, 'VCEK'));
      if (vcek) certs.vcek = vcek;
      certs.chain.push(...rest);
    }
    if (opts.chain) certs.chain.push(...certsOf(await readBytes(opts.chain, 'chain')));
    if (opts.runtimeData) runtimeData = await readBytes(opts.runtimeData, 'runtime data');
    if (opts.initTimeData) initTimeData = await readBytes(opts.initTimeData, 'init-time data');
  } catch (e) {
    if ((e instanceof CliError && e.exitCode === 2) || isConclaveError(e)) {
      io.stderr(`conclave verify snp: ${e.message}\n`);
      return 2;
    }
    throw e;
  }

  try {
    format = (opts.format as SnpEvidenceFormat | undefined) ?? detectSnpEvidenceFormat(evidence);
    if (opts.kds && !certs.vcek) {
      const report = innerReport(evidence, format);
      if (report) {
        try {
          certs.vcek = await vcekFromKds(opts.kds, report);
        } catch (e) {
          if (isConclaveError(e) && (e.code === 'upstream.unavailable' || e.code === 'collateral.not_found' || e.code === 'request.invalid')) {
            io.stderr(`conclave verify snp: ${e.message}\n`);
            return 2;
          }
          throw e;
        }
      }
    }
    const given: SnpCertificates = { ...(certs.vcek ? { vcek: certs.vcek } : {}), ...(certs.chain.length > 0 ? { chain: certs.chain } : {}) };
    let result: object;
    if (format === 'raw') result = verifySnpReport(evidence, given, { at });
    else if (format === 'azure-hcl') result = verifyAzureHclReport(evidence, given, { at, runtimeData });
    else {
      const explicit = certs.vcek !== undefined || certs.chain.length > 0;
      result = verifyMaaSevSnpEvidence(evidence, runtimeData, initTimeData, { at, ...(explicit ? { certs: given } : {}) });
    }
    io.stdout(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (e) {
    if (isConclaveError(e)) {
      io.stdout(`${JSON.stringify({ verified: false, error: { code: e.code, message: e.message } }, null, 2)}\n`);
      return 1;
    }
    throw e;
  }
}
