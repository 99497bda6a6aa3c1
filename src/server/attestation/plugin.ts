import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ATTEST_TYPES, type AttestRequest, POLICY_TYPES, canonicalType } from '../../attestation/service.js';
import { issueResultToken, openIdMetadata, signingKeySet } from '../../attestation/token.js';
import { encodePolicyJws, managementPayload, policyTokenHash, type PolicyAttestationType, verifyManagementJws } from '../../attestation/policy/index.js';
import { fail } from '../../core/errors.js';
import { parseCertificate } from '../../core/x509.js';
import { ATTESTATION_READER_ROLE_ID } from '../../vault/roles.js';
import type { AppContext } from '../context.js';
import { createRateLimiter } from '../rate-limit.js';
import type { RouteTypes, WireRoute } from '../../wire/schema.js';
import { ATTESTATION } from '../../wire/attestation.js';
import { type RouteAuth, authOnce } from '../wire-input.js';

/** api-versions of MAA's data plane that we accept (skr-maa-protocol.md §4.1); a missing one is refused as MAA does. */
export const MAA_API_VERSIONS = ['2018-09-01-preview', '2020-10-01', '2022-08-01', '2022-09-01-preview', '2023-04-01-preview', '2025-06-01', '2026-03-11-preview'];

function checkApiVersion(request: FastifyRequest): void {
  const v = (request.query as Record<string, string | undefined>)['api-version'];
  if (!v) throw fail('request.invalid', `the api-version query parameter is required; supported: ${MAA_API_VERSIONS.join(', ')}`);
  if (!MAA_API_VERSIONS.includes(v)) throw fail('request.invalid', `api-version ${v} is not supported; supported: ${MAA_API_VERSIONS.join(', ')}`, { apiVersion: v });
}

const maa = (wire: WireRoute, auth?: RouteAuth) => ({ config: { family: 'maa' as const, wire, ...(auth ? { auth } : {}) } });

/**
 * The `attestation` service: MAA's data plane (`/attest/*`, `/certs`, OpenID metadata) and its policy
 * management plane (`/policies/*`, `/certificates*`), which needs an administrator's bearer token.
 */
export async function attestationPlugin(app: FastifyInstance, ctx: AppContext): Promise<void> {
  if (!ctx.services.attestation) throw new Error('attestation plugin registered without an attestation service');
  const { service, signer, publishedSigners, policies } = ctx.services.attestation;
  const issuer = () => ctx.baseUrl();

  /** A service-signed token over a management result, as MAA answers policy calls. */
  const resultToken = async (claims: Record<string, unknown>) => ({
    token: await issueResultToken(claims, issuer(), await signer(), { now: ctx.now(), lifetimeSeconds: ctx.config.tokenLifetimeSeconds }),
  });
  const requireAdmin = authOnce(async (request: FastifyRequest) => {
    const principal = await ctx.auth.authenticate(request.headers.authorization, Math.floor(ctx.now().getTime() / 1000));
    if (!principal.isAdmin) throw fail('auth.forbidden', 'managing attestation policy needs the administrator');
    return principal;
  });
  /** What management routes check before their input, in MAA's order: the api-version, then the administrator. */
  const management = async (request: FastifyRequest) => {
    checkApiVersion(request);
    return requireAdmin(request);
  };
  /** A policy route's type (404 attestation.type_unknown), checked in the handler's order: before the body. */
  const policyType = (request: FastifyRequest) => canonicalType((request.params as { type: string }).type, POLICY_TYPES);
  /** `{type}:reset`: no such operation otherwise (404), then the type. */
  const resetType = (request: FastifyRequest) => {
    const raw = (request.params as { typeAction: string }).typeAction;
    const m = /^(.+):reset$/i.exec(raw);
    if (!m) throw fail('request.not_found', `no route for POST /policies/${raw}`);
    return canonicalType(m[1]!, POLICY_TYPES);
  };
  const policyWriter = async (request: FastifyRequest) => {
    await management(request);
    policyType(request);
  };
  const policyResetter = async (request: FastifyRequest) => {
    await management(request);
    resetType(request);
  };
  /** TPM attestation is for authenticated callers only (the SDKs' attestTpm needs credentials); the rest is public. */
  const tpmCaller = authOnce(async (request: FastifyRequest) => ctx.auth.authenticate(request.headers.authorization, Math.floor(ctx.now().getTime() / 1000)));
  const attestCaller = async (request: FastifyRequest) => {
    checkApiVersion(request);
    const raw = (request.params as { type: string }).type;
    const lower = raw.toLowerCase();
    if (lower === 'tpm') await tpmCaller(request);
    // An unknown type is a 404 (attestation.type_unknown) whatever the body, as the handler answers it.
    else if (lower !== 'azureguest') canonicalType(raw, ATTEST_TYPES);
  };
  /** Reading policy: the administrator or the Attestation Reader role. */
  const policyReader = authOnce(async (request: FastifyRequest) => {
    const principal = await ctx.auth.authenticate(request.headers.authorization, Math.floor(ctx.now().getTime() / 1000));
    if (!principal.isAdmin) {
      const assignments = (await ctx.services.vault?.service.listAssignments()) ?? [];
      if (!assignments.some((a) => a.principalId === principal.id && a.roleDefinitionId === ATTESTATION_READER_ROLE_ID && a.scope === '/')) {
        throw fail('auth.forbidden', 'reading attestation policy needs the administrator or the Attestation Reader role');
      }
    }
    return principal;
  });
  const reader = async (request: FastifyRequest) => {
    checkApiVersion(request);
    const principal = await policyReader(request);
    policyType(request);
    return principal;
  };
  const bodyText = (request: FastifyRequest): string => {
    const b = request.body;
    if (typeof b === 'string') return b;
    if (Buffer.isBuffer(b)) return b.toString('utf8');
    if (b && typeof b === 'object') throw fail('request.invalid', 'the body must be a JWS (text/plain)');
    return '';
  };

  // Draft policies are evaluated for anyone who can attest, as MAA does; they are rate-limited per client.
  const drafts = createRateLimiter({ perSecond: 5, burst: 20 });
  /**
   * Evidence names the chip, TCB or FMSPC whose collateral it needs before anything in it can be verified, so
   * the collateral an attestation fetches on a miss counts against its caller's miss budget (by address), as
   * the PCS and KDS routes' does: one client cannot take every upstream fetch the others' attestations need.
   */
  const lookup = ctx.services.collateral?.lookup;
  const asCaller = <T>(request: FastifyRequest, fn: () => Promise<T>): Promise<T> => (lookup ? lookup.asClient(request.ip, fn) : fn());
  app.post<RouteTypes<typeof ATTESTATION.attest>>('/attest/:type', { ...maa(ATTESTATION.attest, attestCaller), schema: { summary: 'Attest evidence (SgxEnclave, OpenEnclave, TdxVm, SevSnpVm, AzureGuest, Tpm)', tags: ['attestation'] } }, async (request) => {
    checkApiVersion(request);
    const raw = request.params.type;
    if (raw.toLowerCase() === 'tpm') {
      // MAA runs TPM attestation for authenticated callers only (the SDKs' attestTpm needs credentials).
      await tpmCaller(request);
      return asCaller(request, () => service.attestTpm(request.body));
    }
    if (raw.toLowerCase() === 'azureguest') {
      const r = await asCaller(request, () => service.attestGuest(request.body));
      return { token: r.sealed ?? r.token };
    }
    const type = canonicalType(raw, ATTEST_TYPES);
    const draft = request.body.draftPolicyForAttestation;
    if (draft !== undefined && draft !== null && draft !== '') drafts.take(request.ip, 'draft policy evaluations');
    const { token } = await asCaller(request, () => service.attest(type, request.body as AttestRequest));
    return { token };
  });

  app.get<RouteTypes<typeof ATTESTATION.certs>>('/certs', { ...maa(ATTESTATION.certs), schema: { summary: 'Token signing keys (JWKS with x5c)', tags: ['attestation'] } }, async () => signingKeySet(await publishedSigners()));
  app.get<RouteTypes<typeof ATTESTATION.openIdConfiguration>>('/.well-known/openid-configuration', { ...maa(ATTESTATION.openIdConfiguration), schema: { summary: 'OpenID metadata', tags: ['attestation'] } }, async () => openIdMetadata(issuer()));

  app.get<RouteTypes<typeof ATTESTATION.getPolicy>>('/policies/:type', { ...maa(ATTESTATION.getPolicy, reader), schema: { summary: 'Get the attestation policy of a type (administrator or Attestation Reader)', tags: ['attestation'] } }, async (request) => {
    await reader(request);
    const type = canonicalType(request.params.type, POLICY_TYPES);
    const p = await service.policy(type);
    const claims: Record<string, unknown> = { 'x-ms-policy': p.jws || encodePolicyJws(p.text) };
    if (p.signerCertDer) claims['x-ms-policy-signer'] = signerJwk(p.signerCertDer);
    return resultToken(claims);
  });

  app.put<RouteTypes<typeof ATTESTATION.setPolicy>>('/policies/:type', { ...maa(ATTESTATION.setPolicy, policyWriter), schema: { summary: 'Set the attestation policy of a type (JWS body)', tags: ['attestation'] } }, async (request) => {
    checkApiVersion(request);
    await requireAdmin(request);
    const type = canonicalType(request.params.type, POLICY_TYPES) as PolicyAttestationType;
    const jws = bodyText(request).trim();
    const stored = await service.setPolicy(type, jws, ctx.config.isolated);
    const claims: Record<string, unknown> = { 'x-ms-policy-result': 'Updated', 'x-ms-policy-token-hash': policyTokenHash(jws), 'x-ms-policy': stored.jws };
    if (stored.signerCertDer) claims['x-ms-policy-signer'] = signerJwk(stored.signerCertDer);
    return resultToken(claims);
  });

  // `POST /policies/{type}:reset` — the colon is part of the last path segment.
  app.post<RouteTypes<typeof ATTESTATION.resetPolicy>>('/policies/:typeAction', { ...maa(ATTESTATION.resetPolicy, policyResetter), schema: { summary: 'Reset a policy to the default (POST /policies/{type}:reset)', tags: ['attestation'] } }, async (request) => {
    checkApiVersion(request);
    await requireAdmin(request);
    const type = resetType(request);
    await service.resetPolicy(type, bodyText(request) || 'eyJhbGciOiJub25lIn0..', ctx.config.isolated);
    return resultToken({ 'x-ms-policy-result': 'Removed' });
  });

  app.get<RouteTypes<typeof ATTESTATION.listCertificates>>('/certificates', { ...maa(ATTESTATION.listCertificates, management), schema: { summary: 'Policy-management certificates', tags: ['attestation'] } }, async (request) => {
    checkApiVersion(request);
    await requireAdmin(request);
    const certs = await policies.listCertificates();
    return resultToken({ 'x-ms-policy-certificates': { keys: certs.map(signerJwk) } });
  });

  for (const action of ['add', 'remove'] as const) {
    app.post<RouteTypes<typeof ATTESTATION.modifyCertificates>>(`/certificates::${action}`, { ...maa(ATTESTATION.modifyCertificates, management), schema: { summary: `${action} a policy-management certificate (JWS signed by an existing one)`, tags: ['attestation'] } }, async (request) => {
      checkApiVersion(request);
      await requireAdmin(request);
      const jws = verifyManagementJws(bodyText(request));
      const policyCertificate = managementPayload(jws).policyCertificate as { x5c?: unknown } | undefined;
      const cert = Array.isArray(policyCertificate?.x5c) ? policyCertificate.x5c[0] : undefined;
      if (!jws.signed || typeof cert !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(cert)) {
        throw fail('attestation.policy_invalid', 'the body must be a JWS signed with x5c, whose payload is {"policyCertificate": {"kty", "x5c": [...]}}');
      }
      const signer = Buffer.from(jws.signingCertificateDer!);
      const target = new Uint8Array(Buffer.from(cert, 'base64'));
      try {
        parseCertificate(target);
      } catch (e) {
        throw fail('attestation.policy_invalid', 'policyCertificate.x5c[0] is not a certificate', undefined, e);
      }
      // Decided inside the change's transaction, against the certificates registered then (serialised with
      // every other policy and certificate change): a signer removed first is unknown, and of two removals
      // the second sees the first's.
      const authorize = (existing: readonly Uint8Array[]) => {
        // An existing management certificate must sign, in every mode: the first ones come from the operator
        // (--policy-certificate), never from a bearer token. (A certificate that signed its own addition outside
        // isolated mode stayed registered when the store was restarted with --isolated, and signed policies there.)
        const allowed = existing.some((c) => signer.equals(c));
        if (!allowed) {
          throw fail('attestation.policy_invalid', 'the certificate-management JWS must be signed by a registered policy-management certificate (the first ones are the operator\'s: --policy-certificate)');
        }
        // An isolated provider without a policy-management certificate could never be managed again.
        if (action === 'remove' && ctx.config.isolated && existing.length > 0 && existing.every((c) => Buffer.from(c).equals(target))) {
          throw fail('attestation.policy_invalid', 'the last policy-management certificate of an isolated provider cannot be removed; add its successor first');
        }
      };
      if (action === 'add') await policies.addCertificate(target, authorize);
      else await policies.removeCertificate(target, authorize);
      // The field names the Azure SDKs read (PolicyCertificatesModificationResult).
      return resultToken({
        'x-ms-certificate-thumbprint': createHash('sha1').update(target).digest('hex').toUpperCase(),
        'x-ms-policycertificates-result': action === 'add' ? 'IsPresent' : 'IsAbsent',
      });
    });
  }
}

function signerJwk(der: Uint8Array): Record<string, unknown> {
  const cert = parseCertificate(der);
  return { kty: cert.signatureAlgorithm.kind === 'ecdsa' ? 'EC' : 'RSA', x5c: [Buffer.from(der).toString('base64')] };
}
