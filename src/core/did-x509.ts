/**
 * did:x509 (DIF did:x509 method, version 0): a DID that names a signing key by the X.509 chain that
 * carries it. `did:x509:0:<hash>:<base64url fingerprint of a CA certificate>::<policy>:<value>` resolves
 * against a chain (leaf first) when the chain verifies up to its self-signed root, one CA certificate
 * of it (not the leaf) has that fingerprint, and the leaf satisfies every policy. The key is the leaf's.
 *
 * Only the `eku` policy is read (the leaf's extendedKeyUsage holds the OID), which is what Microsoft's
 * utility-VM endorsements name; any other policy refuses the DID rather than being ignored.
 * Validity dates are reported, not enforced: a signed statement outlives the certificate that signed it
 * (the endorsement of a UVM image is checked long after it was made).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { children, expectTag, oid, parseDer, TAG } from './der.js';
import { type ErrorCode, fail } from './errors.js';
import { type Certificate, parseCertificate, publicKeyOf, verifyChain } from './x509.js';

const HASHES = { sha256: 32, sha384: 48, sha512: 64 } as const;
type DidHash = keyof typeof HASHES;

export interface DidX509 {
  readonly hash: DidHash;
  readonly caFingerprint: Uint8Array;
  readonly eku: readonly string[];
}

export interface ResolvedDidX509 {
  readonly leaf: Certificate;
  readonly key: KeyObject;
  /** Certificates whose validity does not cover the verification time (informational). */
  readonly outOfValidity: readonly string[];
}

const MAX_DID_LENGTH = 1024;
const MAX_CHAIN = 8;

/** Parses a did:x509 string; `code` is the error code a malformed or unsupported DID is refused with. */
export function parseDidX509(did: string, code: ErrorCode): DidX509 {
  if (did.length > MAX_DID_LENGTH) throw fail(code, 'the did:x509 issuer is too long', { max: MAX_DID_LENGTH });
  const [head, ...policies] = did.split('::');
  const m = /^did:x509:0:(sha256|sha384|sha512):([A-Za-z0-9_-]+)$/.exec(head ?? '');
  if (!m) throw fail(code, `the issuer "${did.slice(0, 120)}" is not a did:x509 (version 0, sha256/384/512) DID`, { issuer: did.slice(0, 120) });
  const hash = m[1] as DidHash;
  const caFingerprint = new Uint8Array(Buffer.from(m[2]!, 'base64url'));
  if (caFingerprint.byteLength !== HASHES[hash] || Buffer.from(caFingerprint).toString('base64url') !== m[2]) {
    throw fail(code, `the did:x509 CA fingerprint is not a ${hash} digest in base64url`, { issuer: did.slice(0, 120) });
  }
  if (policies.length === 0) throw fail(code, 'the did:x509 issuer names no policy', { issuer: did.slice(0, 120) });
  const eku: string[] = [];
  for (const p of policies) {
    const pm = /^eku:([0-2](?:\.(?:0|[1-9][0-9]*))+)$/.exec(p);
    if (!pm) throw fail(code, `did:x509 policy "${p.slice(0, 60)}" is not supported (only eku:<OID> is)`, { policy: p.slice(0, 60) });
    eku.push(pm[1]!);
  }
  return { hash, caFingerprint, eku };
}

function extendedKeyUsage(cert: Certificate): string[] {
  const ext = cert.extensions.get('2.5.29.37');
  if (!ext) return [];
  return children(expectTag(parseDer(ext.value, 'extKeyUsage'), TAG.SEQUENCE, 'extKeyUsage')).map(oid);
}

/**
 * Resolves `did` against `chainDer` (leaf first, up to the self-signed root) at time `at`. Failures are
 * `code` (the DID does not name this chain) with the reason.
 */
export function resolveDidX509(did: string, chainDer: readonly Uint8Array[], at: Date, code: ErrorCode): ResolvedDidX509 {
  const d = parseDidX509(did, code);
  if (chainDer.length < 2) throw fail(code, 'a did:x509 chain holds the leaf and at least its CA', { length: chainDer.length });
  if (chainDer.length > MAX_CHAIN) throw fail(code, `the certificate chain is longer than ${MAX_CHAIN}`, { length: chainDer.length });
  const chain = chainDer.map((der) => parseCertificate(der));
  const root = chain[chain.length - 1]!;
  verifyChain(chain, root, { at, code, enforceValidity: false });
  const ca = chain.findIndex((c, i) => i > 0 && createHash(d.hash).update(c.der).digest().equals(d.caFingerprint));
  if (ca < 0) throw fail(code, `no CA certificate of the chain has the fingerprint the did:x509 issuer names`, { issuer: did.slice(0, 120), chain: chain.map((c) => c.subjectCN) });
  const leaf = chain[0]!;
  const ekus = extendedKeyUsage(leaf);
  for (const want of d.eku) {
    if (!ekus.includes(want)) throw fail(code, `the signing certificate "${leaf.subjectCN ?? '?'}" lacks the extended key usage ${want} the issuer requires`, { eku: want, actual: ekus });
  }
  const outOfValidity = chain.filter((c) => !(at >= c.notBefore && at <= c.notAfter)).map((c) => c.subjectCN ?? c.serial);
  return { leaf, key: publicKeyOf(leaf), outOfValidity };
}
