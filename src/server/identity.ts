/**
 * What MSAL (inside the stock Azure Identity credentials, JS and Python) needs from an authority, so a
 * workload with nothing but AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and
 * AZURE_AUTHORITY_HOST=https://<conclave> gets Conclave access tokens: tenant discovery
 * (`/{tenant}/v2.0/.well-known/openid-configuration`, and `/adfs/.well-known/openid-configuration` for the
 * AD FS form), the client-credentials token endpoint `/{tenant}/oauth2/v2.0/token`, a JWKS, and an
 * instance-discovery answer for clients pointed at it. Tokens are the ones `POST /oauth2/token` issues.
 * docs/vault.md "Stock Azure credentials" explains which settings each SDK needs.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
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
  app.post<{ Params: { tenant: string } }>('/:tenant/oauth2/v2.0/token', route('OAuth2 client-credentials token endpoint (MSAL)', IDENTITY.tenantToken), async (req, reply) => {
    tenantOf(req.params.tenant);
    return tokenResponse(ctx, (req.body ?? {}) as Record<string, string | undefined>, reply);
  });
}

/** RFC 6749 §5.1 / §5.2: the token, or the error shape MSAL turns into its exception. */
export async function tokenResponse(ctx: AppContext, form: Record<string, string | undefined>, reply: FastifyReply): Promise<unknown> {
  try {
    const t = await ctx.auth.issueToken(form, Math.floor(ctx.now().getTime() / 1000));
    return { ...t, ext_expires_in: t.expires_in };
  } catch (e) {
    const err = e as { status?: number; detail?: { error?: string }; message?: string };
    reply.status(err.status ?? 400);
    if (err.status === 401) reply.header('WWW-Authenticate', 'Basic realm="conclave"');
    const error = err.detail?.error ?? ((err.status ?? 400) >= 500 ? 'temporarily_unavailable' : 'invalid_request');
    return { error, error_description: (err.status ?? 400) >= 500 ? 'the service is temporarily unavailable' : (err.message ?? 'invalid request') };
  }
}
