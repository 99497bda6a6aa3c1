/**
 * Shapes shared by the route families: the error bodies of each family (server/wire-errors.ts writes
 * them), api-version queries, paging, JWKs.
 */
import { S, type Schema } from './schema.js';

/** AKV and Managed HSM: `{error: {code: KeyNotFound, message, innererror: {code: key.not_found}}}`. */
export const AKV_ERROR = S.object({
  error: S.object({ code: S.string({ description: 'AKV error code (KeyNotFound, BadParameter, Forbidden, …)' }), message: S.string(), innererror: S.optional(S.object({ code: S.string({ description: 'Conclave catalogue code (docs/errors.md)' }) })) }),
});

/** MAA: `{error: {code, message}}` with Conclave's catalogue code. */
export const MAA_ERROR = S.object({ error: S.object({ code: S.string({ description: 'catalogue code (docs/errors.md)' }), message: S.string() }) });

/** Conclave's own APIs: the catalogue code, a message, and the detail of a 4xx (fields, expected and actual values). */
export const CONCLAVE_ERROR = S.object({
  error: S.object({ code: S.string({ description: 'catalogue code (docs/errors.md)' }), message: S.string(), detail: S.optional(S.record(S.unknown())) }),
});

/** Intel PCS / PCCS errors: status, `Error-Code` and `Error-Message` headers, the message as text. */
export const PCS_ERROR = { description: 'error: Error-Code, Error-Message and X-Conclave-Error-Code headers; the message as text/plain', type: 'text/plain' } as const;

type Answers = Readonly<Record<number, { readonly description: string; readonly schema?: Schema; readonly type?: string }>>;

/** The error answers of a family, added to every route's responses. */
export const akvErrors: Answers = { 400: { description: 'invalid request (BadParameter)', schema: AKV_ERROR }, 401: { description: 'bearer challenge (WWW-Authenticate)', schema: AKV_ERROR }, 403: { description: 'forbidden', schema: AKV_ERROR }, 404: { description: 'not found', schema: AKV_ERROR } };
export const maaErrors: Answers = { 400: { description: 'invalid request or evidence', schema: MAA_ERROR }, 401: { description: 'no valid bearer token', schema: MAA_ERROR } };
export const conclaveErrors: Answers = { 400: { description: 'invalid request', schema: CONCLAVE_ERROR }, 401: { description: 'no valid bearer token', schema: CONCLAVE_ERROR }, 403: { description: 'not allowed', schema: CONCLAVE_ERROR } };
export const pcsErrors: Answers = { 400: PCS_ERROR, 404: PCS_ERROR, 503: PCS_ERROR };

export const API_VERSION = S.string({ description: 'api-version of the Azure API (required by AKV and MAA)', maxLength: 64 });

/** An AKV-style query: `api-version`, paging (`maxresults` 1–25, `$skiptoken` from a nextLink). */
export const AKV_QUERY = S.object({ 'api-version': S.optional(API_VERSION) });
export const AKV_PAGED_QUERY = S.object({
  'api-version': S.optional(API_VERSION),
  maxresults: S.optional(S.string({ pattern: '^[0-9]{1,2}$', description: 'page size, 1 to 25' })),
  $skiptoken: S.optional(S.string({ maxLength: 64, description: 'from the previous page nextLink' })),
});

/** A JSON Web Key (RFC 7517): the members Conclave reads or writes, others allowed. */
export const JWK = S.object({
  kty: S.string({ description: 'RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM' }),
  kid: S.optional(S.string()),
  key_ops: S.optional(S.array(S.string())),
  n: S.optional(S.string()),
  e: S.optional(S.string()),
  crv: S.optional(S.string()),
  x: S.optional(S.string()),
  y: S.optional(S.string()),
  x5c: S.optional(S.array(S.string())),
  alg: S.optional(S.string()),
  use: S.optional(S.string()),
});

export const JWKS = S.object({ keys: S.array(JWK) });

/** An answer that is one signed JWT: `{token}`. */
export const TOKEN_ANSWER = S.object({ token: S.string({ description: 'a JWS (compact serialisation)' }) });

export const OBJECT = S.record(S.unknown());
