import { fail } from '../../core/errors.js';
import { pemToDer } from '../../core/x509.js';

/**
 * The Azure THIM AMD certification document, as returned by
 * `GET http://169.254.169.254/metadata/THIM/amd/certification` and delivered to ACI containers in
 * `host-amd-cert-base64` (evidence-and-collateral §3.5; sidecar `pkg/common/info.go THIMCerts`).
 */
export interface ThimAmdCertification {
  /** The VCEK, DER. */
  readonly vcek: Uint8Array;
  /** certificateChain as DER blobs, in document order (ASK, then ARK). */
  readonly chain: Uint8Array[];
  /** REPORTED_TCB as a u64 printed as 16 hex digits (so the byte order is reversed). */
  readonly tcbm: string;
  readonly cacheControl: string | undefined;
}

/** Parses the THIM AMD JSON, given as text, bytes, or base64 of either (as ACI delivers it). */
export function parseThimAmdCertification(input: string | Uint8Array | Record<string, unknown>): ThimAmdCertification {
  let doc: unknown = input;
  if (typeof input !== 'object' || input instanceof Uint8Array) {
    let s = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
    s = s.trim();
    if (!s.startsWith('{') && /^[A-Za-z0-9+/=_-]+$/.test(s)) s = Buffer.from(s, 'base64').toString('utf8').trim();
    try {
      doc = JSON.parse(s);
    } catch {
      throw fail('collateral.malformed', 'THIM AMD certification is not JSON');
    }
  }
  if (typeof doc !== 'object' || doc === null) throw fail('collateral.malformed', 'THIM AMD certification is not a JSON object');
  const d = doc as Record<string, unknown>;
  if (typeof d.vcekCert !== 'string' || typeof d.certificateChain !== 'string') {
    throw fail('collateral.malformed', 'THIM AMD certification lacks vcekCert or certificateChain');
  }
  const vcek = pemToDer(d.vcekCert)[0];
  if (!vcek) throw fail('collateral.malformed', 'THIM vcekCert holds no PEM certificate');
  const tcbm = typeof d.tcbm === 'string' ? d.tcbm.toLowerCase() : '';
  if (tcbm !== '' && !/^[0-9a-f]{16}$/.test(tcbm)) throw fail('collateral.malformed', 'THIM tcbm is not 16 hex digits', { tcbm: d.tcbm });
  return {
    vcek,
    chain: pemToDer(d.certificateChain),
    tcbm,
    cacheControl: typeof d.cacheControl === 'string' ? d.cacheControl : undefined,
  };
}

/** Whether a document looks like a THIM AMD certification (for format sniffing in the CLI). */
export function isThimAmdCertification(text: string): boolean {
  return text.trimStart().startsWith('{') && text.includes('"vcekCert"');
}
