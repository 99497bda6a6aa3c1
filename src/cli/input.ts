/**
 * Evidence files as users have them: the raw bytes, hex (plain, or `0x`-prefixed as dcap-qvl and Automata
 * publish quotes), or base64/base64url, with line breaks and surrounding white space allowed. A file of
 * printable text is decoded; anything else is taken as the bytes themselves. Text made only of hex digits
 * reads as hex (a base64 rendering that happens to be all hex digits, as `AAAA`, would be misread, which
 * real evidence, hundreds of bytes long, never is in practice).
 */
export function evidenceBytes(raw: Uint8Array): Uint8Array {
  const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  // Binary evidence (a quote starts 03 00 or 04 00, a report with a small version) is never all printable text.
  if (bytes.length === 0 || !bytes.every((b) => (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d)) return new Uint8Array(bytes);
  const t = bytes.toString('latin1').replace(/\s+/g, '');
  const hex = /^0[xX]/.test(t) ? t.slice(2) : t;
  if (hex.length > 0 && hex.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(hex)) return new Uint8Array(Buffer.from(hex, 'hex'));
  if (t.length > 0 && /^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) return new Uint8Array(Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
  return new Uint8Array(bytes);
}
