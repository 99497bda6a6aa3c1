/**
 * What MSAL (inside the stock Azure Identity credentials, JS and Python) needs from an authority, so a
 * workload with nothing but AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and
 * AZURE_AUTHORITY_HOST=https://<conclave> gets Conclave access tokens: tenant discovery
 * (`/{tenant}/v2.0/.well-known/openid-configuration`, and `/adfs/.well-known/openid-configuration` for the
 * AD FS form), the client-credentials token endpoint `/{tenant}/oauth2/v2.0/token`, a JWKS, and an
 * instance-discovery answer for clients pointed at it. Tokens are the ones `POST /oauth2/token` issues.
 * docs/vault.md "Stock Azure credentials" explains which settings each SDK needs.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fail } from '../core/errors.js';
import type { AppContext } from './context.js';
import type { WireRoute } from '../wire/schema.js';
import { IDENTITY } from '../wire/identity.js';

/** A tenant path segment: a GUID, a domain-like name, `common`/`organizations`, or `adfs`. */
const TENANT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function tenantOf(raw: string): string {
  if (!TENANT.test(raw)) throw fail('request.not_found', `no tenant ${JSON.stringify(raw)}`);
  return raw;
}

/** The tenant token endpoint checks, before the form's members: a tenant it serves (404), then the form encoding. */
function tenantForm(request: FastifyRequest): Promise<void> {
  tenantOf((request.params as { tenant: string }).tenant);
  return formEncoded(request);
}

export function registerIdentityRoutes(app: FastifyInstance, ctx: AppContext): void {
  const route = (summary: string, wire: WireRoute) => ({ config: { family: 'conclave' as const, wire }, schema: { summary, tags: ['identity'] } });

  function openIdConfiguration(tenant: string, v2: boolean): Record<string, unknown> {
    const base = ctx.baseUrl();
    const root = `${base}/${tenant}`;
    return {
      issuer: v2 ? `${root}/v2.0` : root,
      authorization_endpoint: `${root}/oauth2/v2.0/authorize`,
      token_endpoint: `${root}/oauth2/v2.0/token`,
      device_authorization_endpoint: `${root}/oauth2/v2.0/devicecode`,
      end_session_endpoint: `${root}/oauth2/v2.0/logout`,
      jwks_uri: `${root}/discovery/v2.0/keys`,
      response_types_supported: ['token'],
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['ES256'],
      scopes_supported: ['.default'],
      tenant_region_scope: null,
      cloud_instance_name: new URL(base).host,
    };
  }

  app.get<{ Params: { tenant: string } }>('/:tenant/v2.0/.well-known/openid-configuration', route('OpenID configuration of the authority (MSAL tenant discovery)', IDENTITY.openIdConfiguration), async (req) =>
    openIdConfiguration(tenantOf(req.params.tenant), true),
  );
  app.get<{ Params: { tenant: string } }>('/:tenant/.well-known/openid-configuration', route('OpenID configuration, AD FS form (MSAL with tenant "adfs")', IDENTITY.openIdConfiguration), async (req) =>
    openIdConfiguration(tenantOf(req.params.tenant), false),
  );
  app.get<{ Params: { tenant: string } }>('/:tenant/discovery/v2.0/keys', route('Signing keys of the access tokens', IDENTITY.keys), async (req) => {
    tenantOf(req.params.tenant);
    return { keys: [await ctx.auth.accessTokenJwk()] };
  });
  /**
   * Instance discovery as login.microsoftonline.com answers it, for clients told to ask here (Python
   * msal's `instance_discovery="<url>"`); MSAL asks Microsoft's host by default, which is why the
   * documented settings skip it instead.
   */
  app.get('/common/discovery/instance', route('Instance discovery (MSAL)', IDENTITY.instanceDiscovery), async () => {
    const host = new URL(ctx.baseUrl()).host;
    return {
      tenant_discovery_endpoint: `${ctx.baseUrl()}/common/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    };
  });
  app.post<{ Params: { tenant: string } }>('/:tenant/oauth2/v2.0/token', { config: { family: 'oauth' as const, wire: IDENTITY.tenantToken, auth: tenantForm }, schema: { summary: 'OAuth2 client-credentials token endpoint (MSAL)', tags: ['identity'] } }, async (req, reply) => {
    tenantOf(req.params.tenant);
    return tokenResponse(ctx, req, reply, { msal: true });
  });
}

/** The client-credentials parameters (RFC 6749 §4.4.2, §2.3.1), each a single string or absent. */
const TOKEN_PARAMETERS = ['grant_type', 'client_id', 'client_secret', 'scope', 'client_info', 'client_assertion', 'client_assertion_type'] as const;

/**
 * The token request's form: the body must be `application/x-www-form-urlencoded` (RFC 6749 §4.4.2,
 * Appendix B) and no parameter may appear twice (§3.2); anything else is `invalid_request`. The form
 * parser (server/app.ts) gives a repeated parameter as an array.
 */
function tokenForm(request: FastifyRequest): Record<string, string | undefined> {
  checkFormEncoded(request);
  const body = (request.body ?? {}) as Record<string, unknown>;
  const form: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(body)) {
    if (typeof value !== 'string') throw fail('request.invalid', `parameter ${JSON.stringify(name.slice(0, 64))} appears more than once (RFC 6749 §3.2)`, { error: 'invalid_request' });
    if ((TOKEN_PARAMETERS as readonly string[]).includes(name)) form[name] = value;
  }
  if (form.grant_type === undefined) throw fail('request.invalid', 'grant_type is required', { error: 'invalid_request' });
  return form;
}

/** The token endpoint takes the form encoding only: checked before the form's members (server/wire-input.ts). */
export function formEncoded(request: FastifyRequest): Promise<void> {
  checkFormEncoded(request);
  return Promise.resolve();
}

function checkFormEncoded(request: FastifyRequest): void {
  const type = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw fail('request.invalid', 'the token endpoint takes an application/x-www-form-urlencoded body (RFC 6749 §4.4.2)', { error: 'invalid_request' });
  }
}

/**
 * RFC 6749 §5.1: the token, not cached. Errors (§5.2) are thrown as typed errors and answered by the
 * `oauth` error family (server/wire-errors.ts), whose descriptions are ours, never an internal error's.
 */
export async function tokenResponse(ctx: AppContext, request: FastifyRequest, reply: FastifyReply, extra: { msal?: boolean } = {}): Promise<unknown> {
  const t = await ctx.auth.issueToken(tokenForm(request), Math.floor(ctx.now().getTime() / 1000));
  reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
  return extra.msal ? { ...t, ext_expires_in: t.expires_in } : t;
}
