/**
 * The attestation service on the wire: Microsoft Azure Attestation's data plane (`/attest/{type}`,
 * `/certs`, OpenID metadata) and policy management plane, with MAA's member names.
 */
import { API_VERSION, JWKS, TOKEN_ANSWER, maaErrors } from './common.js';
import { S, route } from './schema.js';

const MAA_QUERY = S.object({ 'api-version': API_VERSION });
/** `{data, dataType}`; an empty `data` is no data (the MAA sidecar sends `{data: "", dataType: ""}`). */
const DATA = S.object({ data: S.optional(S.string({ description: 'base64url' })), dataType: S.optional(S.enum(['Binary', 'JSON', ''], { description: 'Binary when empty or absent' })) });

/** MAA's AttestSgxEnclaveRequest / AttestOpenEnclaveRequest / AttestTdxVmRequest / AttestSevSnpVmRequest. */
export const ATTEST_BODY = S.object({
  quote: S.optional(S.string({ description: 'the quote or report, base64url' })),
  report: S.optional(S.string({ description: 'OpenEnclave report or SEV-SNP evidence, base64url' })),
  runtimeData: S.optional(DATA),
  initTimeData: S.optional(DATA),
  draftPolicyForAttestation: S.optional(S.string({ description: 'a policy to evaluate instead of the stored one (text)' })),
  nonce: S.optional(S.unknown({ description: 'any JSON value, echoed in the token as the nonce claim' })),
  gpuEvidence: S.optional(S.unknown({ description: 'NVIDIA serialised evidence of the VM GPUs (composite attestation)' })),
});
/** `/attest/Tpm`: one message of MAA's TPM protocol; `/attest/AzureGuest`: the guest's attestation info. */
export const TPM_BODY = S.object({ data: S.string({ description: 'base64url of the protocol message' }) });

const JWS_BODY = S.string({ description: 'a JWS (compact serialisation; text/plain or application/json string)' });
// Path parameters are bounded by the router (100); an unknown type is the handler's 404, attestation.type_unknown.
const TYPE = S.string({ maxLength: 100, description: 'SgxEnclave, OpenEnclave, TdxVm, SevSnpVm, AzureGuest, Tpm' });

export const ATTESTATION = {
  attest: route({
    params: S.object({ type: TYPE }),
    query: MAA_QUERY,
    // One object for every type: its members are all optional, so `/attest/Tpm`'s `{data}` and
    // `/attest/AzureGuest`'s `{AttestationInfo}` conform too; the evidence parsers own their contents.
    body: ATTEST_BODY,
    responses: { 200: { description: 'the attestation token ({token}; {data} for Tpm)', schema: S.anyOf([TOKEN_ANSWER, TPM_BODY]) }, ...maaErrors },
  }),
  certs: route({ body: null, responses: { 200: { description: 'the token signing keys', schema: JWKS } } }),
  openIdConfiguration: route({
    body: null,
    responses: { 200: { description: 'OpenID provider metadata', schema: S.object({ issuer: S.string(), jwks_uri: S.string(), id_token_signing_alg_values_supported: S.optional(S.array(S.string())), claims_supported: S.optional(S.array(S.string())) }) } },
  }),
  getPolicy: route({ params: S.object({ type: TYPE }), query: MAA_QUERY, body: null, responses: { 200: { description: 'a token whose x-ms-policy claim is the policy JWS', schema: TOKEN_ANSWER }, ...maaErrors } }),
  setPolicy: route({ params: S.object({ type: TYPE }), query: MAA_QUERY, body: JWS_BODY, bodyType: 'text/plain', responses: { 200: { description: 'a token with x-ms-policy-result Updated', schema: TOKEN_ANSWER }, ...maaErrors } }),
  resetPolicy: route({ bodyOptional: true, params: S.object({ typeAction: S.string({ maxLength: 100, description: '{type}:reset' }) }), query: MAA_QUERY, body: JWS_BODY, bodyType: 'text/plain', responses: { 200: { description: 'a token with x-ms-policy-result Removed', schema: TOKEN_ANSWER }, ...maaErrors } }),
  listCertificates: route({ query: MAA_QUERY, body: null, responses: { 200: { description: 'a token whose x-ms-policy-certificates claim lists them', schema: TOKEN_ANSWER }, ...maaErrors } }),
  modifyCertificates: route({ query: MAA_QUERY, body: JWS_BODY, bodyType: 'text/plain', responses: { 200: { description: 'a token with x-ms-certificate-thumbprint and x-ms-policycertificates-result', schema: TOKEN_ANSWER }, ...maaErrors } }),
};
