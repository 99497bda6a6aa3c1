/**
 * The client side of MAA's TPM attestation protocol with a fake TPM, as a Windows or Linux TPM client
 * would run it: the init message, then an attReqV2 request JWS signed by a request key whose binding to
 * the TPM is the quote's qualifying data (H(jwk ‖ 0x00 ‖ challenge)).
 */
import { createHash } from 'node:crypto';
import { signJws } from '../../src/core/jwt.js';
import type { FakeTpm } from '../../src/evidence/tpm/testing.js';
import { generateRsaKeyPair } from '../../src/core/keygen.js';

export const TPM_INIT = JSON.stringify({ type: 'aikcert' });

export interface TpmRequestOptions {
  readonly aikCert?: Uint8Array;
  readonly pcrs?: readonly number[];
  readonly rpData?: string;
  readonly withLog?: boolean;
  /** Replace the quote's qualifying data (to test a wrong nonce). */
  readonly nonceOverride?: Uint8Array;
}

/** The request message `{"request": JWS}` answering a challenge message. */
export function tpmRequest(tpm: FakeTpm, challengeReply: string, opts: TpmRequestOptions = {}): string {
  const { challenge, service_context } = JSON.parse(challengeReply) as { challenge: string; service_context: string };
  const requestKey = generateRsaKeyPair(2048);
  const j = requestKey.publicKey.export({ format: 'jwk' });
  const jwk = { kty: 'RSA', n: j.n, e: j.e };
  const nonce = opts.nonceOverride ?? createHash('sha256').update(JSON.stringify(jwk)).update(Buffer.of(0)).update(Buffer.from(challenge, 'base64url')).digest();
  const pcrs = opts.pcrs ?? Array.from({ length: 24 }, (_, i) => i);
  const q = tpm.quote(pcrs, nonce);
  const akJwk = tpm.akPublic.export({ format: 'jwk' });
  const payload = {
    att_type: 'basic',
    att_data: {
      rp_id: 'https://relying-party.example',
      rp_data: opts.rpData ?? '',
      challenge,
      tpm_att_data: {
        current_attestation: {
          logs: opts.withLog === false ? [] : [{ type: 'TCG', log: Buffer.from(tpm.eventLog()).toString('base64url') }],
          aik_cert: opts.aikCert ? Buffer.from(opts.aikCert).toString('base64url') : '',
          aik_pub: { kty: 'RSA', n: akJwk.n, e: akJwk.e },
          pcrs: [{ algorithm: 11, values: q.pcrs.map((p) => ({ index: p.index, digest: Buffer.from(p.value).toString('base64url') })) }],
          quote: Buffer.from(q.message).toString('base64url'),
          signature: Buffer.from(q.tpmtSignature).toString('base64url'),
        },
      },
      request_key: { jwk, info: { tpm_quote: { hash_alg: 'sha-256' } } },
      custom_claims: [],
      service_context,
    },
  };
  return JSON.stringify({ request: signJws({ alg: 'PS256', typ: 'attReqV2' }, payload, requestKey.privateKey) });
}
