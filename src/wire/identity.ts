/**
 * The identity endpoints on the wire: the OAuth2 token endpoint (RFC 6749, client credentials, form
 * encoded), the MSAL authority endpoints the Azure SDKs' credentials discover, and the service probes.
 */
import { JWKS, OBJECT, conclaveErrors } from './common.js';
import { S, route } from './schema.js';

export const TOKEN_FORM = S.object({
  grant_type: S.string({ description: 'client_credentials' }),
  client_id: S.optional(S.string()),
  client_secret: S.optional(S.string()),
  scope: S.optional(S.string()),
  resource: S.optional(S.string()),
});
const TOKEN = S.object({ access_token: S.string(), token_type: S.string(), expires_in: S.integer(), ext_expires_in: S.optional(S.integer()) });
const OAUTH_ERROR = S.object({ error: S.string({ description: 'RFC 6749 §5.2 code' }), error_description: S.optional(S.string()) });
const TENANT = S.object({ tenant: S.string({ maxLength: 128 }) });
const tokens = { 200: { description: 'an access token', schema: TOKEN }, 400: { description: 'RFC 6749 error', schema: OAUTH_ERROR }, 401: { description: 'client authentication failed', schema: OAUTH_ERROR } };

export const IDENTITY = {
  token: route({ body: TOKEN_FORM, bodyType: 'application/x-www-form-urlencoded', responses: tokens }),
  tenantToken: route({ params: TENANT, body: TOKEN_FORM, bodyType: 'application/x-www-form-urlencoded', responses: tokens }),
  openIdConfiguration: route({ params: TENANT, body: null, responses: { 200: { description: 'OpenID provider metadata', schema: S.object({ issuer: S.string(), token_endpoint: S.string(), jwks_uri: S.string() }) } } }),
  keys: route({ params: TENANT, body: null, responses: { 200: { description: 'the access tokens signing keys', schema: JWKS } } }),
  instanceDiscovery: route({ query: S.object({ 'api-version': S.optional(S.string()), authorization_endpoint: S.optional(S.string({ description: 'ignored (MSAL sends it)' })) }), body: null, responses: { 200: { description: 'MSAL instance metadata', schema: OBJECT } } }),
  metrics: route({ body: null, responses: { 200: { description: 'Prometheus text exposition', type: 'text/plain' }, ...conclaveErrors } }),
};
