/** The web console's JSON API on the wire (the pages themselves are static assets). */
import { OBJECT, conclaveErrors } from './common.js';
import { S, route } from './schema.js';

const SESSION = S.object({ principal: S.object({ id: S.string() }), csrfToken: S.string(), expiresAt: S.string({ format: 'date-time' }), method: S.optional(S.string()) });
const redirect = { 303: { description: 'a redirect (Location)' } };

export const CONSOLE = {
  signInCode: route({ body: null, responses: { 201: { description: 'a one-time sign-in link (5 minutes)', schema: S.object({ url: S.string(), expiresAt: S.string({ format: 'date-time' }) }) }, ...conclaveErrors } }),
  signIn: route({
    body: S.anyOf([S.object({ code: S.string() }), S.object({ clientId: S.string(), clientSecret: S.string() }), S.object({ accessToken: S.string({ maxLength: 16384 }) })]),
    responses: { 200: { description: 'the session (and its __Host- cookie)', schema: SESSION }, ...conclaveErrors },
  }),
  session: route({ body: null, responses: { 200: { description: 'the session', schema: SESSION }, ...conclaveErrors } }),
  signOut: route({ body: null, responses: { 204: { description: 'signed out' } } }),
  oidcStart: route({ body: null, responses: { ...redirect, 404: { description: 'not configured', schema: conclaveErrors[400]!.schema } } }),
  oidcCallback: route({ query: S.object({ code: S.optional(S.string()), state: S.optional(S.string()), error: S.optional(S.string()) }), body: null, responses: redirect }),
  overview: route({ body: null, responses: { 200: { description: 'services, readiness, trust mode and activity', schema: S.object({ server: OBJECT, readiness: S.array(S.object({ name: S.string(), ok: S.boolean() })), attestations: OBJECT }) }, ...conclaveErrors } }),
  releasePolicyCheck: route({
    bodyOptional: true,
    body: S.object({ policy: S.optional(S.unknown({ description: 'a release policy (JSON or its text); absent: answered as invalid' })), token: S.optional(S.unknown({ description: 'an attestation token (a JWT) to dry-run against; looked at only when the policy is valid' })) }),
    responses: { 200: { description: 'whether the policy is valid and, with a token, its decision', schema: S.object({ valid: S.boolean() }) }, ...conclaveErrors },
  }),
};
