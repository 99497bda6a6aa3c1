import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ConclaveError, type ErrorCode } from '../core/errors.js';

/** The wire shapes of errors, one per API family; `oauth` is the token endpoints' (RFC 6749 §5.2). */
export type ErrorFamily = 'akv' | 'maa' | 'pcs' | 'oauth' | 'conclave';

/**
 * RFC 6749 §5.2: `error` from the RFC's list (a code may name one in `detail.error`), a description in
 * our own words; an unknown client is 401 with a challenge. Outages are `temporarily_unavailable` (the
 * authorization endpoint's code, which MSAL and the Azure SDKs retry on).
 */
function oauthError(e: ConclaveError): { error: string; error_description: string } {
  const named = (e.detail as { error?: unknown } | undefined)?.error;
  if (e.status >= 500) return { error: e.status === 503 ? 'temporarily_unavailable' : 'server_error', error_description: e.status === 503 ? 'the service is temporarily unavailable' : 'internal error' };
  if (typeof named === 'string') return { error: named, error_description: e.message };
  return { error: e.status === 401 ? 'invalid_client' : 'invalid_request', error_description: e.message };
}

/** AKV's error codes (KeyNotFound, BadParameter, …) for our catalogue codes. */
function akvCode(code: ErrorCode, status: number): string {
  switch (code) {
    case 'key.not_found':
      return 'KeyNotFound';
    case 'auth.unauthenticated':
      return 'Unauthorized';
    case 'auth.forbidden':
    case 'key.operation_not_allowed':
    case 'release.not_exportable':
    case 'release.policy_unsatisfied':
      return 'Forbidden';
    case 'key.conflict':
    case 'store.conflict':
      return 'Conflict';
    case 'request.too_large':
      return 'RequestTooLarge';
    case 'request.rate_limited':
      return 'Throttled';
    case 'release.token_invalid':
      return 'InvalidToken';
    case 'role.assignment_not_found':
      return 'RoleAssignmentNotFound';
    case 'role.definition_not_found':
      return 'RoleDefinitionNotFound';
    case 'role.conflict':
      return 'Conflict';
    case 'store.unavailable':
    case 'hsm.unavailable':
    case 'hsm.key_untrusted':
      return 'ServiceUnavailable';
    default:
      return status >= 500 ? 'InternalServerError' : 'BadParameter';
  }
}

/**
 * PCCS answers an error with its status and one fixed message per status (DCAP
 * QuoteGeneration/pccs/constants/pccs_status_code.js); the message goes in `Error-Message`.
 */
const PCCS_STATUS_MESSAGES: Readonly<Record<number, string>> = {
  400: 'Invalid request parameters.',
  401: 'Authentication failed.',
  404: 'No cache data for this platform.',
  460: "The integrity of the data can't be verified.",
  461: 'The platform was not found in the cache.',
  462: 'Certificates are not available for certain TCBs.',
  500: 'Internal server error occurred.',
  502: 'Unable to retrieve the collateral from the Intel SGX PCS.',
  503: 'Server is currently unable to process the request.',
};

/**
 * Intel PCS names its 400 errors (`Error-Code: InvalidRequestSyntax`, `InvalidPlatformManifest`, PCS API
 * v4); other statuses carry Conclave's code, which `X-Conclave-Error-Code` always holds.
 */
function pcsErrorCode(e: ConclaveError): string {
  if (e.status !== 400) return e.code;
  return e.detail?.parameter === 'platformManifest' || e.detail?.parameter === 'platform_manifest' ? 'InvalidPlatformManifest' : 'InvalidRequestSyntax';
}

/** PCS and PCCS echo the caller's Request-ID or make a 32-hex one (PCCS middleware/addRequestId.js). */
export function pcsRequestId(request: FastifyRequest): string {
  const rid = request.headers['request-id'];
  return typeof rid === 'string' && /^[\x21-\x7e]{1,128}$/.test(rid) ? rid : randomUUID().replaceAll('-', '');
}

/** A header value: printable ASCII only. */
function headerSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 512);
}

/** Turns anything thrown in a handler into a ConclaveError (framework errors included). */
export function toConclaveError(err: unknown): ConclaveError {
  if (err instanceof ConclaveError) return err;
  const fe = err as FastifyError;
  switch (fe?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ConclaveError('request.too_large', 'request body is larger than the configured limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ConclaveError('request.unsupported_media_type', 'unsupported content type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ConclaveError('request.invalid', 'request body is not valid JSON');
    case 'FST_ERR_VALIDATION':
      return new ConclaveError('request.invalid', fe.message);
  }
  if (fe?.statusCode === 400 && fe instanceof SyntaxError) return new ConclaveError('request.invalid', 'request body is not valid JSON');
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new ConclaveError('request.invalid', fe.message, undefined, { status: fe.statusCode });
  }
  return new ConclaveError('internal', 'internal error', undefined, { cause: err });
}

/**
 * Sends `err` in the family's wire shape. 5xx details stay in the log; clients get the code and a
 * safe message. PCS answers with `Error-Code`/`Error-Message` headers and no body, as Intel PCS does.
 */
export function sendError(family: ErrorFamily, err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const e = toConclaveError(err);
  if (e.status >= 500) request.log.error({ err: e.cause ?? e, code: e.code }, e.message);
  else request.log.info({ code: e.code, detail: e.detail }, e.message);
  reply.status(e.status);
  // Overload and outages say when to come back (RFC 9110 §10.2.3); clients and SDKs honour it.
  if (e.status === 429 || e.status === 503) {
    const after = (e.detail as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
    reply.header('Retry-After', String(typeof after === 'number' && after > 0 ? Math.ceil(after) : 1));
  }
  const message = e.status >= 500 && e.code === 'internal' ? 'internal error' : e.message;
  switch (family) {
    case 'akv':
      return reply.send({ error: { code: akvCode(e.code, e.status), message, innererror: { code: e.code } } });
    case 'maa':
      return reply.send({ error: { code: e.code, message } });
    case 'pcs':
      if (!reply.hasHeader('request-id')) reply.header('Request-ID', pcsRequestId(request));
      return reply
        .header('Error-Code', pcsErrorCode(e))
        .header('Error-Message', PCCS_STATUS_MESSAGES[e.status] ?? headerSafe(message))
        .header('X-Conclave-Error-Code', e.code)
        .type('text/plain; charset=utf-8')
        .send(message);
    case 'oauth':
      reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
      if (e.status === 401) reply.header('WWW-Authenticate', 'Basic realm="conclave"');
      return reply.send(oauthError(e));
    default:
      return reply.send({ error: { code: e.code, message, ...(e.detail && e.status < 500 ? { detail: e.detail } : {}) } });
  }
}
