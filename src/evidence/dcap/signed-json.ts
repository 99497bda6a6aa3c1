import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { equalBytes } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import type { Certificate } from '../../core/x509.js';

/**
 * Intel signs the exact bytes of the `tcbInfo` / `enclaveIdentity` member value of a PCS response
 * (evidence-and-collateral §2.3). These helpers locate that value in the received body without
 * re-serialising it, so a verifier never depends on how a JSON library would print it.
 */

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

function skipWs(b: Uint8Array, p: number): number {
  while (p < b.length && WS.has(b[p]!)) p++;
  return p;
}

function stringEnd(b: Uint8Array, p: number): number {
  // p points at the opening quote; returns the offset after the closing quote.
  for (let i = p + 1; i < b.length; i++) {
    if (b[i] === 0x5c) i++;
    else if (b[i] === 0x22) return i + 1;
  }
  throw fail('collateral.malformed', 'unterminated JSON string in a collateral body', { offset: p });
}

function valueEnd(b: Uint8Array, p: number): number {
  const c = b[p];
  if (c === 0x22) return stringEnd(b, p);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let i = p; i < b.length; i++) {
      const x = b[i];
      if (x === 0x22) i = stringEnd(b, i) - 1;
      else if (x === 0x7b || x === 0x5b) depth++;
      else if (x === 0x7d || x === 0x5d) {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    throw fail('collateral.malformed', 'unbalanced JSON value in a collateral body', { offset: p });
  }
  let i = p;
  while (i < b.length && b[i] !== 0x2c && b[i] !== 0x7d && b[i] !== 0x5d && !WS.has(b[i]!)) i++;
  if (i === p) throw fail('collateral.malformed', 'empty JSON value in a collateral body', { offset: p });
  return i;
}

/** The raw bytes of each top-level member of a JSON object, keyed by member name. */
export function topLevelMembers(body: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let p = skipWs(body, 0);
  if (body[p] !== 0x7b) throw fail('collateral.malformed', 'collateral body is not a JSON object', { offset: p });
  p = skipWs(body, p + 1);
  if (body[p] === 0x7d) return out;
  for (;;) {
    if (body[p] !== 0x22) throw fail('collateral.malformed', 'expected a member name in a collateral body', { offset: p });
    const keyEnd = stringEnd(body, p);
    const key = JSON.parse(Buffer.from(body.subarray(p, keyEnd)).toString('utf8')) as string;
    p = skipWs(body, keyEnd);
    if (body[p] !== 0x3a) throw fail('collateral.malformed', 'expected ":" in a collateral body', { offset: p });
    p = skipWs(body, p + 1);
    const end = valueEnd(body, p);
    out.set(key, body.subarray(p, end));
    p = skipWs(body, end);
    if (body[p] === 0x2c) {
      p = skipWs(body, p + 1);
      continue;
    }
    if (body[p] === 0x7d) return out;
    throw fail('collateral.malformed', 'expected "," or "}" in a collateral body', { offset: p });
  }
}

/**
 * Splits a PCS response body `{"<member>":{…},"signature":"<hex>"}` into the exact signed bytes and the
 * 64-byte r‖s signature.
 */
export function splitSignedResponse(body: Uint8Array | string, member: 'tcbInfo' | 'enclaveIdentity'): { signed: Uint8Array; signature: Uint8Array } {
  const bytes = typeof body === 'string' ? new Uint8Array(Buffer.from(body, 'utf8')) : body;
  const members = topLevelMembers(bytes);
  const signed = members.get(member);
  const sig = members.get('signature');
  if (!signed || !sig) throw fail('collateral.malformed', `PCS response lacks "${member}" or "signature"`, { member });
  return { signed: signed.slice(), signature: signatureBytes(JSON.parse(Buffer.from(sig).toString('utf8')), `${member} signature`) };
}

/** A 64-byte r‖s signature from hex text or bytes. */
export function signatureBytes(sig: unknown, what: string): Uint8Array {
  let b: Uint8Array | undefined;
  if (typeof sig === 'string' && /^[0-9a-fA-F]{128}$/.test(sig)) b = new Uint8Array(Buffer.from(sig, 'hex'));
  else if (sig instanceof Uint8Array) b = sig;
  else if (Array.isArray(sig) && sig.every((x) => Number.isInteger(x) && x >= 0 && x < 256)) b = Uint8Array.from(sig as number[]);
  if (b?.byteLength !== 64) throw fail('collateral.malformed', `${what} is not a 64-byte r||s signature`, { what });
  return b;
}

/** ECDSA P-256 / SHA-256 over `data`, signature raw r‖s (IEEE P1363), as Intel uses for quotes and collateral. */
export function verifyP256(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/** The subject CN of Intel's TCB signing certificate, the one signer of TCB info, identities and TCB evaluation data numbers. */
export const TCB_SIGNING_CN = 'Intel SGX TCB Signing';

/**
 * Intel signs TCB info, identities and TCB evaluation data numbers with its TCB signing certificate, which
 * the root issues itself: not with any certificate under the root (a platform's PCK certificate, whose key
 * lives in the platform). Intel QVL checks the TCB signing chain's leaf subject likewise. `chain`: the
 * issuer chain, already verified to `root`, leaf first, with or without the root at its end.
 */
export function requireTcbSigner(chain: readonly Certificate[], root: Certificate, what: string): void {
  const below = chain.filter((c) => !equalBytes(c.der, root.der));
  const leaf = below[0] ?? chain[0]!;
  if (below.length !== 1 || leaf.subjectCN !== TCB_SIGNING_CN || leaf.isCA || !equalBytes(leaf.issuer, root.subject)) {
    throw fail('collateral.chain_invalid', `${what} is signed by "${leaf.subjectCN ?? '?'}", not by the ${TCB_SIGNING_CN} certificate the root issues`, { what, signer: leaf.subjectCN });
  }
}
