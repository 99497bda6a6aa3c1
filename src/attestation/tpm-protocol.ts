/**
 * MAA's TPM attestation protocol (`POST /attest/Tpm`, docs "Trusted Platform Module (TPM) and VBS
 * enclave attestation protocol"): every message travels as `{"data": base64url(JSON)}`.
 *
 *   1. client → `{"type": "aikcert"}`           service → `{"challenge", "service_context"}`
 *   2. client → `{"request": JWS}` (typ attReqV2, signed by `request_key`)   service → `{"report": JWT}`
 *
 * On the wire each message sits in `{"payload": …}` (the Azure SDKs' attestTpm samples and tests send
 * `{"payload": {"type": "aikcert"}}` and read `payload.challenge`); a bare message is accepted too and
 * answered bare.
 *
 * The service context is a JWS the service signs over the challenge and its expiry, so any replica can
 * check it (stateless). Request v2 "basic" (TPM only) is supported; v1 (Windows NCrypt platform claims)
 * and VBS enclave reports are refused with `tpm.unsupported`.
 */
import { type KeyObject, createHash, randomBytes } from 'node:crypto';
import { b64url, constantTimeEqual, fromB64 } from '../core/bytes.js';
import { fail, isConclaveError } from '../core/errors.js';
import { MAX_JSON_DEPTH, jsonTextTooDeep } from '../core/json.js';
import { decodeJws, signJwsAsync, verifyJwsSignature } from '../core/jwt.js';
import { parseCertificate, publicKeyOf, verifyChain } from '../core/x509.js';
import { type BootConfiguration, checkEventLog, parseTcgEventLog, readBootConfiguration } from '../evidence/tpm/eventlog.js';
import { type PcrValue, publicKeyFromJwk, verifyCertifiedKey, verifyTpmQuote } from '../evidence/tpm/quote.js';
import { type Claims, type EvidenceClaims, claimsOf } from './claims.js';

/** How long a challenge may be answered. */
export const TPM_CHALLENGE_SECONDS = 600;
const MAX_MESSAGE_BYTES = 4 << 20;

export interface TpmProtocolDeps {
  /** The service's signing key (the same that signs tokens): signs and checks service contexts. */
  readonly signer: () => Promise<{ privateKey: KeyObject; publicKey: KeyObject }>;
  readonly now: () => Date;
}

export type TpmMessage = ({ readonly kind: 'init'; readonly reply: Record<string, unknown> } | { readonly kind: 'request'; readonly claims: EvidenceClaims; readonly requiredPcrs: readonly number[]; readonly aikValidated: boolean }) & {
  /** Whether the message came in a `{"payload": …}` envelope (the answer goes back in one). */
  readonly wrapped: boolean;
};

function bad(message: string, detail?: Record<string, unknown>): never {
  throw fail('tpm.malformed', `TPM protocol: ${message}`, detail);
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${field} must be an object`, { field });
  return v as Record<string, unknown>;
}

function b64(v: unknown, field: string): Uint8Array {
  if (typeof v !== 'string') bad(`${field} must be base64url`, { field });
  try {
    return fromB64(v, field);
  } catch {
    return bad(`${field} is not base64url`, { field });
  }
}

/**
 * The exact text of a member of a JSON object (`path` of keys), as sent: the request key binding hashes
 * the JWK string "exactly as sent on the wire" (protocol §Key object, tpm_quote).
 */
export function rawJsonMember(text: string, path: readonly string[]): string | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const skipString = () => {
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
  };
  const skipValue = (): void => {
    ws();
    const c = text[i];
    if (c === '"') {
      skipString();
      return;
    }
    if (c === '{' || c === '[') {
      let depth = 0;
      do {
        if (text[i] === '"') skipString();
        else {
          if (text[i] === '{' || text[i] === '[') depth++;
          else if (text[i] === '}' || text[i] === ']') depth--;
          i++;
        }
      } while (depth > 0 && i < text.length);
      return;
    }
    while (i < text.length && !',}]'.includes(text[i]!)) i++;
  };
  for (const key of path) {
    ws();
    if (text[i] !== '{') return undefined;
    i++;
    let found = false;
    while (i < text.length) {
      ws();
      if (text[i] === '}') return undefined;
      const start = i;
      skipString();
      const name = JSON.parse(text.slice(start, i)) as string;
      ws();
      i++; // ':'
      ws();
      if (name === key) {
        found = true;
        break;
      }
      skipValue();
      ws();
      if (text[i] === ',') i++;
    }
    if (!found) return undefined;
  }
  ws();
  const start = i;
  skipValue();
  return text.slice(start, i);
}

function pcrValuesOf(v: unknown): PcrValue[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > 8) bad('pcrs must list the quoted PCR banks');
  const out: PcrValue[] = [];
  for (const [i, bank] of (v as unknown[]).entries()) {
    const b = obj(bank, `pcrs[${i}]`);
    if (!Number.isInteger(b.algorithm)) bad(`pcrs[${i}].algorithm must be a TPM_ALG_ID`);
    if (!Array.isArray(b.values) || b.values.length > 24) bad(`pcrs[${i}].values must list PCR values`);
    for (const [j, val] of (b.values as unknown[]).entries()) {
      const e = obj(val, `pcrs[${i}].values[${j}]`);
      if (!Number.isInteger(e.index) || (e.index as number) < 0 || (e.index as number) > 23) bad(`pcrs[${i}].values[${j}].index must be 0-23`);
      out.push({ hashAlg: b.algorithm as number, index: e.index as number, value: b64(e.digest, `pcrs[${i}].values[${j}].digest`) });
    }
  }
  return out;
}

/** Whether JSON text `raw` means `value` (compared as JSON.parse reads it). */
function sameJson(raw: string, value: unknown): boolean {
  try {
    return JSON.stringify(JSON.parse(raw)) === JSON.stringify(value);
  } catch {
    return false;
  }
}

function spkiHash(key: KeyObject): string {
  return createHash('sha256').update(key.export({ format: 'der', type: 'spki' })).digest('base64');
}

export function createTpmProtocol(deps: TpmProtocolDeps, aikRoots: readonly Uint8Array[] = []) {
  async function serviceContext(challenge: Buffer): Promise<string> {
    const { privateKey } = await deps.signer();
    const exp = Math.floor(deps.now().getTime() / 1000) + TPM_CHALLENGE_SECONDS;
    return b64url(await signJwsAsync({ alg: 'RS256', typ: 'maa-tpm-context' }, { challenge: challenge.toString('base64url'), exp }, privateKey));
  }

  async function checkContext(contextField: unknown, challenge: Uint8Array): Promise<void> {
    let ok = false;
    try {
      const jws = decodeJws(Buffer.from(b64(contextField, 'service_context')).toString('utf8'));
      const { publicKey } = await deps.signer();
      const p = jws.payload as { challenge?: unknown; exp?: unknown };
      ok =
        jws.header.typ === 'maa-tpm-context' &&
        verifyJwsSignature(jws, publicKey) &&
        typeof p.exp === 'number' &&
        p.exp > deps.now().getTime() / 1000 &&
        typeof p.challenge === 'string' &&
        constantTimeEqual(Buffer.from(p.challenge, 'base64url'), challenge);
    } catch (e) {
      if (!isConclaveError(e)) throw e;
    }
    if (!ok) throw fail('tpm.challenge_invalid', 'the service context is not one this service issued for this challenge, or it expired; start again with {"type":"aikcert"}');
  }

  /** `aikValidated`: the AIK certificate names this AIK and chains to an AIK CA root the operator trusts. */
  function aikValidated(certDer: Uint8Array, aik: KeyObject, at: Date): boolean {
    if (certDer.byteLength === 0 || aikRoots.length === 0) return false;
    try {
      const cert = parseCertificate(certDer);
      if (spkiHash(publicKeyOf(cert)) !== spkiHash(aik)) return false;
      return aikRoots.some((root) => {
        try {
          verifyChain([cert], parseCertificate(root), { at });
          return true;
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  }

  return {
    /** One protocol message: the `data` field of the request, decoded; the reply to base64url-encode. */
    async handle(data: unknown): Promise<TpmMessage> {
      if (typeof data !== 'string' || data === '') throw fail('request.invalid', 'the request needs "data" (base64url of a TPM protocol message)', { field: 'data' });
      const bytes = fromB64(data, 'data');
      if (bytes.byteLength > MAX_MESSAGE_BYTES) throw fail('request.too_large', 'the TPM protocol message is too large');
      const text = Buffer.from(bytes).toString('utf8');
      // JSON inside the body's base64 (the edge's depth check never saw it); its type reaches an error message.
      if (jsonTextTooDeep(text)) bad(`the message nests deeper than ${MAX_JSON_DEPTH} levels`, { maxDepth: MAX_JSON_DEPTH });
      let msg: Record<string, unknown>;
      try {
        msg = obj(JSON.parse(text), 'message');
      } catch (e) {
        if (isConclaveError(e)) throw e;
        bad('the message is not JSON');
      }
      const wrapped = 'payload' in msg;
      if (wrapped) msg = obj(msg.payload, 'payload');
      if (msg.type !== undefined) {
        if (msg.type !== 'aikcert') throw fail('tpm.unsupported', `attestation type ${JSON.stringify(msg.type)} is not supported (only "aikcert" is)`);
        const challenge = randomBytes(32);
        return { kind: 'init', wrapped, reply: { challenge: challenge.toString('base64url'), service_context: await serviceContext(challenge) } };
      }
      if (typeof msg.request !== 'string') bad('a message is {"type":"aikcert"} or {"request": JWS}');
      const jws = decodeJws(msg.request);
      if (jws.header.typ === 'attReq') throw fail('tpm.unsupported', 'request message v1 (Windows platform claims) is not supported; send attReqV2');
      if (jws.header.typ !== 'attReqV2') bad('the request JWS typ must be attReqV2');
      const payload = jws.payload;
      if (payload.att_type !== 'basic') throw fail('tpm.unsupported', `att_type ${JSON.stringify(payload.att_type)} is not supported (only "basic": VBS enclave reports are not)`);
      const att = obj(payload.att_data, 'att_data');
      const challenge = b64(att.challenge, 'att_data.challenge');
      await checkContext(att.service_context, challenge);

      // Proof of possession: request_key signs the request.
      const requestKey = obj(att.request_key, 'att_data.request_key');
      const requestJwk = publicKeyFromJwk(requestKey.jwk, 'request_key.jwk');
      if (!verifyJwsSignature(jws, requestJwk)) throw fail('tpm.quote_signature_invalid', 'the request JWS is not signed by request_key');

      const tpm = obj(att.tpm_att_data, 'att_data.tpm_att_data');
      const current = obj(tpm.current_attestation, 'tpm_att_data.current_attestation');
      const aik = publicKeyFromJwk(current.aik_pub, 'aik_pub');
      const info = requestKey.info === undefined ? {} : obj(requestKey.info, 'request_key.info');
      // qualifyingData: the challenge, or H(UTF8(jwk as sent) ‖ 0x00 ‖ challenge) when request_key is bound by the quote.
      let nonce: Uint8Array = challenge;
      if (info.tpm_quote !== undefined) {
        const hashAlg = obj(info.tpm_quote, 'request_key.info.tpm_quote').hash_alg;
        const hash = hashAlg === 'sha-256' ? 'sha256' : hashAlg === 'sha-384' ? 'sha384' : hashAlg === 'sha-512' ? 'sha512' : bad('tpm_quote.hash_alg must be sha-256, sha-384 or sha-512');
        const raw = rawJsonMember(Buffer.from(jws.signingInput.split('.')[1]!, 'base64url').toString('utf8'), ['att_data', 'request_key', 'jwk']) ?? JSON.stringify(requestKey.jwk);
        // The quote binds these bytes: they must be the key the request is signed with and the token names
        // (of two members of one name, rawJsonMember reads the first and JSON.parse keeps the last).
        if (!sameJson(raw, requestKey.jwk)) bad('request_key.jwk as the quote binds it is not the key the request is signed with (a member named twice?)');
        nonce = new Uint8Array(createHash(hash).update(raw, 'utf8').update(Buffer.of(0)).update(challenge).digest());
      } else if (info.tpm_certify !== undefined) {
        const c = obj(info.tpm_certify, 'request_key.info.tpm_certify');
        const certified = verifyCertifiedKey({ publicArea: b64(c.public, 'tpm_certify.public'), certifyInfo: b64(c.certification, 'tpm_certify.certification'), signature: { format: 'tpmt', bytes: b64(c.signature, 'tpm_certify.signature') }, ak: aik, expectedNonce: challenge });
        if (spkiHash(publicKeyFromJwk(certified.jwk, 'certified key')) !== spkiHash(requestJwk)) throw fail('tpm.key_certification_invalid', 'the certified key is not request_key');
      }
      const quote = verifyTpmQuote({
        attest: b64(current.quote, 'current_attestation.quote'),
        signature: { format: 'tpmt', bytes: b64(current.signature, 'current_attestation.signature') },
        ak: aik,
        pcrs: pcrValuesOf(current.pcrs),
        expectedNonce: nonce,
      });

      let boot: BootConfiguration | undefined;
      const logs = Array.isArray(current.logs) ? (current.logs as unknown[]) : [];
      const tcg = logs.map((l, i) => obj(l, `logs[${i}]`)).filter((l) => l.type === 'TCG');
      if (tcg.length > 1) throw fail('tpm.unsupported', 'more than one TCG log (resume logs) is not supported');
      if (tcg[0]) boot = readBootConfiguration(checkEventLog(parseTcgEventLog(b64(tcg[0].log, 'logs[0].log')), quote));

      const validated = aikValidated(current.aik_cert === undefined || current.aik_cert === '' ? new Uint8Array(0) : b64(current.aik_cert, 'aik_cert'), aik, deps.now());
      const claims: Claims = {
        'x-ms-attestation-type': 'tpm',
        cnf: { jwk: requestKey.jwk },
        aikValidated: validated,
        aikPubHash: spkiHash(aik),
        tpmVersion: 2,
        'x-conclave-tpm-pcrs': Object.fromEntries(quote.pcrs.map((p) => [String(p.index), Buffer.from(p.value).toString('hex')])),
      };
      if (boot?.secureBoot !== undefined) claims.secureBootEnabled = boot.secureBoot;
      if (boot?.complete) claims.bootDebuggingDisabled = !boot.bootDebugging;
      if (typeof att.rp_data === 'string' && att.rp_data !== '') claims.rp_data = att.rp_data;
      return { kind: 'request', wrapped, claims: claimsOf(quote, claims), requiredPcrs: quote.pcrs.map((p) => p.index), aikValidated: validated };
    },
  };
}
