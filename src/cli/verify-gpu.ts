/**
 * `conclave verify gpu FILE [--chain FILE] [--rim DIR] [--nonce HEX] [--at ISO-8601]`: verifies NVIDIA GPU
 * evidence offline and prints the result as JSON. Exit 0 verified (and, with --rim, every measurement
 * matched), 1 verification failed, 2 usage or I/O error.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isConclaveError } from '../core/errors.js';
import { type GpuEvidence, type GpuVerificationResult, parseGpuReport, validateGpuMeasurements, verifyGpuEvidence, verifyRim } from '../evidence/nvidia/index.js';
import { parseSerializedGpuEvidence } from '../evidence/nvidia/serialized.js';
import type { CommandIo } from './verify-quote.js';
import { evidenceBytes } from './input.js';

export interface VerifyGpuCommandOptions {
  readonly chain?: string;
  readonly rim?: string;
  readonly nonce?: string;
  readonly at?: string;
}

const MAX_RIM_FILES = 256;

/** A report file may hold the raw bytes, or hex / base64 text of them. */
interface RimFile {
  readonly file: string;
  readonly bytes: Buffer;
}

export async function verifyGpuCommand(file: string, opts: VerifyGpuCommandOptions, io: CommandIo = process): Promise<number> {
  const usage = (message: string): number => {
    io.stderr.write(`conclave verify gpu: ${message}\n`);
    return 2;
  };
  const at = opts.at ? new Date(opts.at) : new Date();
  if (Number.isNaN(at.getTime())) return usage('--at must be an ISO-8601 date-time');
  if (opts.nonce !== undefined && !/^[0-9a-fA-F]{64}$/.test(opts.nonce)) return usage('--nonce must be 32 bytes of hex');

  let evidence: Array<GpuEvidence & { nonce?: Uint8Array }>;
  const rimFiles: RimFile[] = [];
  try {
    const raw = await readFile(file);
    const text = raw.toString('utf8').trim();
    if (text.startsWith('[') || text.startsWith('{')) {
      evidence = parseSerializedGpuEvidence(text).map((e) => (e.nonce.byteLength === 0 ? { report: e.report, certificateChain: e.certificateChain, ...(e.arch ? { arch: e.arch } : {}) } : e));
    } else {
      if (!opts.chain) return usage('give --chain FILE (the attestation certificate chain, PEM) for a bare report');
      evidence = [{ report: evidenceBytes(raw), certificateChain: await readFile(opts.chain, 'utf8') }];
    }
    if (opts.rim) {
      const names = (await readdir(opts.rim)).filter((n) => /\.(xml|swidtag)$/i.test(n)).sort();
      if (names.length > MAX_RIM_FILES) return usage(`--rim directory holds more than ${MAX_RIM_FILES} RIM files`);
      for (const n of names) {
        const p = join(opts.rim, n);
        if ((await stat(p)).isFile()) rimFiles.push({ file: n, bytes: await readFile(p) });
      }
    }
  } catch (e) {
    if (isConclaveError(e)) {
      io.stdout.write(`${JSON.stringify({ verified: false, error: { code: e.code, message: e.message } }, null, 2)}\n`);
      return 1;
    }
    return usage((e as Error).message);
  }

  // RIMs by version: each file is verified at --at; a version with two verified RIMs is ambiguous.
  const byVersion = new Map<string, RimFile>();
  const rimErrors: Array<{ file: string; code: string; message: string }> = [];
  for (const f of rimFiles) {
    try {
      const rim = verifyRim(f.bytes, { at });
      const v = rim.colloquialVersion.toLowerCase();
      if (byVersion.has(v)) return usage(`--rim holds two valid RIMs for version ${rim.colloquialVersion} (${byVersion.get(v)!.file}, ${f.file}); keep the one to compare with`);
      byVersion.set(v, f);
    } catch (e) {
      if (!isConclaveError(e)) throw e;
      rimErrors.push({ file: f.file, code: e.code, message: e.message });
    }
  }

  const results: Array<GpuVerificationResult | { verified: false; error: { code: string; message: string; detail?: unknown } }> = [];
  let exit = 0;
  for (const ev of evidence) {
    try {
      const parsed = parseGpuReport(ev.report);
      const nonce = opts.nonce ? new Uint8Array(Buffer.from(opts.nonce, 'hex')) : (ev.nonce ?? parsed.request.nonce);
      const pick = (version: string | undefined) => (version ? byVersion.get(version.toLowerCase())?.bytes : undefined);
      const rims = opts.rim ? { driver: pick(parsed.opaque.driverVersion), vbios: pick(parsed.opaque.vbiosVersion) } : undefined;
      const r = verifyGpuEvidence(ev, { at, nonce, rims });
      const out = { ...r, nonceChecked: opts.nonce !== undefined || ev.nonce !== undefined };
      if (opts.rim) {
        try {
          validateGpuMeasurements(r);
        } catch (e) {
          if (!isConclaveError(e)) throw e;
          exit = 1;
          results.push({ ...out, error: { code: e.code, message: e.message, detail: e.detail } } as never);
          continue;
        }
      }
      results.push(out);
    } catch (e) {
      if (!isConclaveError(e)) throw e;
      exit = 1;
      results.push({ verified: false, error: { code: e.code, message: e.message, ...(e.detail ? { detail: e.detail } : {}) } });
    }
  }
  const body = results.length === 1 ? results[0]! : { gpus: results };
  io.stdout.write(`${JSON.stringify(rimErrors.length > 0 ? { ...body, rimErrors } : body, null, 2)}\n`);
  return exit;
}
