import { ByteReader, isAllZero } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { derToPem } from '../../core/x509.js';

/**
 * GUIDs of the SEV-SNP extended-guest-request certificate table (GHCB spec §4.1.8.1; Linux
 * `include/uapi/linux/sev-guest.h` users): what configfs-tsm returns in `auxblob` for sev_guest.
 */
export const SNP_CERT_GUIDS = {
  vcek: '63da758d-e664-4564-adc5-f4b93be8accd',
  vlek: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
  ask: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
  ark: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
  crl: '92f81bc3-5811-4d3d-97ff-d19f88dc67ea',
} as const;

export type SnpCertTable = Partial<Record<keyof typeof SNP_CERT_GUIDS, Uint8Array>> & { readonly other: ReadonlyMap<string, Uint8Array> };

/** GUID text form: the first three fields are little-endian (RFC 4122 as Microsoft/UEFI store it). */
export function guidToString(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  const le = (s: string) => s.match(/../g)!.reverse().join('');
  return `${le(h.slice(0, 8))}-${le(h.slice(8, 12))}-${le(h.slice(12, 16))}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function guidToBytes(guid: string): Uint8Array {
  const p = guid.split('-');
  const le = (s: string) => s.match(/../g)!.reverse().join('');
  return new Uint8Array(Buffer.from(le(p[0]!) + le(p[1]!) + le(p[2]!) + p[3]! + p[4]!, 'hex'));
}

/**
 * Parses the certificate table: entries `{guid[16], offset u32, length u32}` ended by an all-zero entry;
 * offsets count from the start of the table.
 */
export function parseSnpCertTable(table: Uint8Array): SnpCertTable {
  const r = new ByteReader(table, 'SNP certificate table', 'evidence.truncated');
  const out: Record<string, Uint8Array> = {};
  const other = new Map<string, Uint8Array>();
  const seen = new Set<string>();
  for (;;) {
    const guid = r.view_('guid', 16);
    const offset = r.u32('offset');
    const length = r.u32('length');
    if (isAllZero(guid) && offset === 0 && length === 0) break;
    if (offset + length > table.byteLength) throw fail('evidence.truncated', 'SNP certificate table entry points past the table', { offset, length, size: table.byteLength });
    const data = new Uint8Array(table.subarray(offset, offset + length));
    const name = guidToString(guid);
    if (seen.has(name)) throw fail('evidence.malformed', `SNP certificate table names ${name} twice`, { guid: name });
    seen.add(name);
    const known = (Object.keys(SNP_CERT_GUIDS) as (keyof typeof SNP_CERT_GUIDS)[]).find((k) => SNP_CERT_GUIDS[k] === name);
    if (known) out[known] = data;
    else other.set(name, data);
  }
  return { ...out, other } as SnpCertTable;
}

/** Builds a certificate table (for fakes and tests). */
export function encodeSnpCertTable(entries: ReadonlyArray<{ guid: string; data: Uint8Array }>): Uint8Array {
  const headerSize = (entries.length + 1) * 24;
  const total = headerSize + entries.reduce((n, e) => n + e.data.byteLength, 0);
  const out = Buffer.alloc(total);
  let at = headerSize;
  entries.forEach((e, i) => {
    Buffer.from(guidToBytes(e.guid)).copy(out, i * 24);
    out.writeUInt32LE(at, i * 24 + 16);
    out.writeUInt32LE(e.data.byteLength, i * 24 + 20);
    Buffer.from(e.data).copy(out, at);
    at += e.data.byteLength;
  });
  return new Uint8Array(out);
}

/**
 * PEM VEK ‖ ASK ‖ ARK (the MAA `VcekCertChain` order) from a table, or undefined without a VEK. The VEK is the
 * one `report` names in SIGNER_INFO.SIGNING_KEY (a table may hold both a VCEK and a VLEK); without a report,
 * the VCEK, else the VLEK. An entry of length 0 counts as absent.
 */
export function certChainPemOf(table: SnpCertTable, report?: Uint8Array): string | undefined {
  // An entry of length 0 is no certificate: an empty VEK entry is no VEK (nor does it hide the other one).
  const present = (c: Uint8Array | undefined) => (c !== undefined && c.byteLength > 0 ? c : undefined);
  const keySel = report && report.byteLength >= 0x4c ? (report[0x48]! >>> 2) & 7 : undefined;
  const vek = keySel === 1 ? present(table.vlek) : keySel === 0 ? present(table.vcek) : (present(table.vcek) ?? present(table.vlek));
  if (!vek) return undefined;
  return [vek, present(table.ask), present(table.ark)].filter((c) => c !== undefined).map((c) => derToPem(c)).join('');
}
