import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ATTEST_TYPES, type AttestRequest, POLICY_TYPES, canonicalType, createAttestationService } from '../../attestation/service.js';
import { issueToken, openIdMetadata, signingKeySet, type TokenSigner } from '../../attestation/token.js';
import { encodePolicyJws, managementPayload, policyTokenHash, type PolicyAttestationType, verifyManagementJws } from '../../attestation/policy/index.js';
import { fail } from '../../core/errors.js';
import { parseCertificate, pemToDer } from '../../core/x509.js';
import { loadOrCreateSimulatedTee } from '../../evidence/simulated/index.js';
import { createPolicyStore } from '../../storage/attestation-store.js';
import { createCollateralStore } from '../../storage/collateral-store.js';
import { createHttpClient } from '../../upstream/http.js';
import type { AppContext } from '../context.js';
import { createRateLimiter } from '../rate-limit.js';
import { createKdsCertificateSource, createNvidiaRimSource, createPcsCollateralSource } from '../../upstream/collateral-source.js';

/** api-versions of MAA's data plane that we accept (skr-maa-protocol.md §4.1); a missing one is refused as MAA does. */
export const MAA_API_VERSIONS = ['2018-09-01-preview', '2020-10-01', '2022-08-01', '2022-09-01-preview', '2023-04-01-preview', '2025-06-01', '2026-03-11-preview'];

function checkApiVersion(request: FastifyRequest): void {
  const v = (request.query as Record<string, string | undefined>)['api-version'];
  if (!v) throw fail('request.invalid', `the api-version query parameter is required; supported: ${MAA_API_VERSIONS.join(', ')}`);
  if (!MAA_API_VERSIONS.includes(v)) throw fail('request.invalid', `api-version ${v} is not supported; supported: ${MAA_API_VERSIONS.join(', ')}`, { apiVersion: v });
}

const maa = { config: { family: 'maa' as const } };

/**
 * The `attestation` service: MAA's data plane (`/attest/*`, `/certs`, OpenID metadata) and its policy
 * management plane (`/policies/*`, `/certificates*`), which needs an administrator's bearer token.
 */
export async function attestationPlugin(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const issuer = () => ctx.baseUrl();
  const signerOf = (name: string, subject: () => string) => async (): Promise<TokenSigner> => {
    const k = await ctx.serviceKey(name, 'RS256', subject());
    return { kid: k.kid, privateKey: k.privateKey, certDer: k.certDer };
  };
  const signer = signerOf('attestation-signing', () => ctx.baseUrl());
  // Tokens from simulated evidence get a signing key of their own, which exists only under --simulate:
  // a server without the flag never creates, publishes or trusts it (docs/security.md).
  const simulatedSigner = ctx.config.simulate ? signerOf('attestation-signing-simulated', () => `${ctx.baseUrl()} simulated TEE tokens, development only`) : undefined;
  const publishedSigners = async () => (simulatedSigner ? [await signer(), await simulatedSigner()] : [await signer()]);
  const policies = createPolicyStore(ctx.db, ctx.now);
  const sightings = createCollateralStore(ctx.db);
  // Collateral comes from our own collateral service when it runs in this process, else from the upstreams.
  const local = ctx.config.services.includes('collateral');
  const collateralBase = () => (local ? ctx.baseUrl() : ctx.config.upstreamIntel);
  const amdBase = () => (local ? ctx.baseUrl() : ctx.config.upstreamAmd);
  const rimBase = () => (local ? ctx.baseUrl() : ctx.config.upstreamNvidiaRim);
  const collateralHttp = createHttpClient({ ca: readFileSync(ctx.caPath), retries: 1 });
  const service = createAttestationService({
    collateral: createPcsCollateralSource(collateralBase, collateralHttp),
    gpuReferences: createNvidiaRimSource(rimBase, collateralHttp),
    snpCertificates: createKdsCertificateSource(amdBase, ctx.caPath),
    policies,
    signer,
    ...(simulatedSigner ? { simulatedSigner } : {}),
    issuer,
    now: ctx.now,
    cacheClockMs: () => performance.now(),
    tokenLifetimeSeconds: ctx.config.tokenLifetimeSeconds,
    simulated: ctx.config.simulate ? loadOrCreateSimulatedTee(ctx.config.dataDir) : undefined,
    // Platforms seen feed the collateral service's baseline dry run; recording never delays or fails attestation.
    onPlatformSeen: (p, at) => {
      sightings.recordPlatformSeen(p, 'attestation', at).catch((e: unknown) => ctx.logger.warn({ err: e }, 'could not record the platform seen'));
    },
  });
  await registerPolicyCertificates(ctx, policies);
  ctx.readiness.set('attestation-signing-key', async () => void (await signer()));

  /** A service-signed token over a management result, as MAA answers policy calls. */
  const resultToken = async (claims: Record<string, unknown>) => ({
    token: await issueToken(claims, issuer(), await signer(), { now: ctx.now(), lifetimeSeconds: ctx.config.tokenLifetimeSeconds }),
  });
  const requireAdmin = async (request: FastifyRequest) => {
    const principal = await ctx.auth.authenticate(request.headers.authorization, Math.floor(ctx.now().getTime() / 1000));
    if (!principal.isAdmin) throw fail('auth.forbidden', 'managing attestation policy needs the administrator');
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
  app.post('/attest/:type', { ...maa, schema: { summary: 'Attest evidence (SgxEnclave, OpenEnclave, TdxVm, SevSnpVm, AzureGuest)', tags: ['attestation'] } }, async (request) => {
    checkApiVersion(request);
    const raw = (request.params as { type: string }).type;
    if (raw.toLowerCase() === 'azureguest') {
      const r = await service.attestGuest(request.body ?? {});
      return { token: r.sealed ?? r.token };
    }
    const type = canonicalType(raw, ATTEST_TYPES);
    const draft = (request.body as { draftPolicyForAttestation?: unknown } | undefined)?.draftPolicyForAttestation;
    if (draft !== undefined && draft !== null && draft !== '') drafts.take(request.ip, 'draft policy evaluations');
    const { token } = await service.attest(type, (request.body ?? {}) as AttestRequest);
    return { token };
  });

  app.get('/certs', { ...maa, schema: { summary: 'Token signing keys (JWKS with x5c)', tags: ['attestation'] } }, async () => signingKeySet(await publishedSigners()));
  app.get('/.well-known/openid-configuration', { ...maa, schema: { summary: 'OpenID metadata', tags: ['attestation'] } }, async () => openIdMetadata(issuer()));

  app.get('/policies/:type', { ...maa, schema: { summary: 'Get the attestation policy of a type', tags: ['attestation'] } }, async (request) => {
    checkApiVersion(request);
    await requireAdmin(request);
    const type = canonicalType((request.params as { type: string }).type, POLICY_TYPES);
    const p = await service.policy(type);
    const claims: Record<string, unknown> = { 'x-ms-policy': p.jws || encodePolicyJws(p.text) };
    if (p.signerCertDer) claims['x-ms-policy-signer'] = signerJwk(p.signerCertDer);
    return resultToken(claims);
  });

  app.put('/policies/:type', { ...maa, schema: { summary: 'Set the attestation policy of a type (JWS body)', tags: ['attestation'] } }, async (request) => {
    checkApiVersion(request);
    await requireAdmin(request);
    const type = canonicalType((request.params as { type: string }).type, POLICY_TYPES) as PolicyAttestationType;
    const jws = bodyText(request).trim();
    const stored = await service.setPolicy(type, jws, ctx.config.isolated);
    const claims: Record<string, unknown> = { 'x-ms-policy-result': 'Updated', 'x-ms-policy-token-hash': policyTokenHash(jws), 'x-ms-policy': stored.jws };
    if (stored.signerCertDer) claims['x-ms-policy-signer'] = signerJwk(stored.signerCertDer);
    return resultToken(claims);
  });

  // `POST /policies/{type}:reset` — the colon is part of the last path segment.
  app.post('/policies/:typeAction', { ...maa, schema: { summary: 'Reset a policy to the default (POST /policies/{type}:reset)', tags: ['attestation'] } }, async (request) => {
    checkApiVersion(request);
    await requireAdmin(request);
    const raw = (request.params as { typeAction: string }).typeAction;
    const m = /^(.+):reset$/i.exec(raw);
    if (!m) throw fail('request.not_found', `no route for POST /policies/${raw}`);
    const type = canonicalType(m[1]!, POLICY_TYPES);
    await service.resetPolicy(type, bodyText(request) || 'eyJhbGciOiJub25lIn0..', ctx.config.isolated);
    return resultToken({ 'x-ms-policy-result': 'Removed' });
  });

  app.get('/certificates', { ...maa, schema: { summary: 'Policy-management certificates', tags: ['attestation'] } }, async (request) => {
    checkApiVersion(request);
    await requireAdmin(request);
    const certs = await policies.listCertificates();
    return resultToken({ 'x-ms-policy-certificates': { keys: certs.map(signerJwk) } });
  });

  for (const action of ['add', 'remove'] as const) {
    app.post(`/certificates::${action}`, { ...maa, schema: { summary: `${action} a policy-management certificate (JWS signed by an existing one)`, tags: ['attestation'] } }, async (request) => {
      checkApiVersion(request);
      await requireAdmin(request);
      const jws = verifyManagementJws(bodyText(request));
      const policyCertificate = managementPayload(jws).policyCertificate as { x5c?: unknown } | undefined;
      const cert = Array.isArray(policyCertificate?.x5c) ? policyCertificate.x5c[0] : undefined;
      if (!jws.signed || typeof cert !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(cert)) {
        throw fail('attestation.policy_invalid', 'the body must be a JWS signed with x5c, whose payload is {"policyCertificate": {"kty", "x5c": [...]}}');
      }
      const signerDer = jws.signingCertificateDer!;
      const existing = await policies.listCertificates();
      const target = new Uint8Array(Buffer.from(cert, 'base64'));
      try {
        parseCertificate(target);
      } catch (e) {
        throw fail('attestation.policy_invalid', 'policyCertificate.x5c[0] is not a certificate', undefined, e);
      }
      // An existing management certificate must sign. Outside isolated mode the very first one may sign
      // its own addition; in isolated mode the first ones come from the operator (--policy-certificate).
      const allowed =
        existing.some((c) => Buffer.from(c).equals(Buffer.from(signerDer))) ||
        (!ctx.config.isolated && existing.length === 0 && action === 'add' && Buffer.from(target).equals(Buffer.from(signerDer)));
      if (!allowed) throw fail('attestation.policy_invalid', 'the certificate-management JWS must be signed by a registered policy-management certificate');
      if (action === 'add') await policies.addCertificate(target);
      else await policies.removeCertificate(target);
      return resultToken({
        'x-ms-certificate-thumbprint': createHash('sha1').update(target).digest('hex').toUpperCase(),
        'x-ms-certificate-result': action === 'add' ? 'IsPresent' : 'IsAbsent',
      });
    });
  }
}

/**
 * Registers the operator's policy-management certificates (`--policy-certificate`). Isolated mode needs
 * at least one: the first management key must come from whoever runs the server, never from a bearer
 * token, or isolation would be only as strong as the administrator credential.
 */
async function registerPolicyCertificates(ctx: AppContext, policies: ReturnType<typeof createPolicyStore>): Promise<void> {
  for (const path of ctx.config.policyCertificates) {
    let ders: Uint8Array[];
    try {
      ders = pemToDer(readFileSync(path, 'latin1'));
      if (ders.length === 0) throw new Error('no PEM certificate');
      for (const der of ders) parseCertificate(der);
    } catch (e) {
      throw fail('config.invalid', `policy-certificate ${path} is not a readable PEM certificate file`, { option: 'policyCertificates' }, e);
    }
    for (const der of ders) await policies.addCertificate(der);
  }
  if (ctx.config.isolated && (await policies.listCertificates()).length === 0) {
    throw fail('config.invalid', 'isolated mode needs at least one policy-management certificate: pass --policy-certificate <pem-file>', { option: 'policyCertificates' });
  }
}

function signerJwk(der: Uint8Array): Record<string, unknown> {
  const cert = parseCertificate(der);
  return { kty: cert.signatureAlgorithm.kind === 'ecdsa' ? 'EC' : 'RSA', x5c: [Buffer.from(der).toString('base64')] };
}
