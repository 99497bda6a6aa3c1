/**
 * NVIDIA routes of the collateral cache, in the shapes NVIDIA's tools speak, so they can point at
 * Conclave instead of NVIDIA's services (`NV_RIM_URL`, `NV_OCSP_URL`):
 *   GET  /v1/rim/{id}  → `{id, rim: base64(XML), sha256}` (the NVIDIA RIM service answer)
 *   POST /ocsp         → an OCSP response for the request's CertID (application/ocsp-request → -response)
 * Both serve from the cache, fetch on a miss when an upstream is configured (coalesced across requests and
 * replicas), serve stale with a Warning when a refresh fails, and travel in offline bundles.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CollateralItem, CollateralKind } from '../../collateral/cache/item.js';
import { checkRimId, fetchOcsp, fetchRim, ocspScope, rimScope, rimServiceBody } from '../../collateral/nvidia.js';
import type { CollateralService } from '../../collateral/service.js';
import { isConclaveError } from '../../core/errors.js';
import { parseOcspRequest } from '../../core/ocsp.js';
import { type Prepared, STALE_WARNING, prepare } from './responses.js';
import { COLLATERAL } from '../../wire/collateral.js';

export interface NvidiaRouteDeps {
  readonly svc: CollateralService;
  readonly serve: (request: FastifyRequest, reply: FastifyReply, build: () => Promise<Prepared>) => Promise<FastifyReply>;
  readonly cached: (kind: CollateralKind, key: string, fetch: () => Promise<CollateralItem>) => Promise<CollateralItem>;
  readonly failing: (item: CollateralItem) => boolean;
  readonly now: () => number;
  /** Runs `fn` on behalf of the caller: its fetches on a miss count against that client's budget (lookup.ts). */
  readonly asClient: <T>(client: string, fn: () => Promise<T>) => Promise<T>;
}

const PCS = { family: 'pcs' as const };
/** RFC 6960 §4.2.1 OCSPResponseStatus values a cache answers with when it has no response to give. */
const OCSP_MALFORMED_REQUEST = 1;
const OCSP_TRY_LATER = 3;
const OCSP_UNAUTHORIZED = 6;
const MAX_OCSP_REQUEST = 4096;

function ocspError(status: number): Buffer {
  return Buffer.from([0x30, 0x03, 0x0a, 0x01, status]);
}

export function registerNvidiaCollateralRoutes(app: FastifyInstance, d: NvidiaRouteDeps): void {
  app.get('/v1/rim/:id', { config: { ...PCS, wire: COLLATERAL.rim }, schema: { summary: 'NVIDIA RIM by id (NVIDIA RIM service answer)', tags: ['NVIDIA'] } }, (request, reply) =>
    d.serve(request, reply, async () => {
      const id = checkRimId((request.params as { id: string }).id);
      const item = await d.cached('nvidia_rim', rimScope(id), () => fetchRim(d.svc, id));
      return prepare(item, {}, Buffer.from(JSON.stringify(rimServiceBody(id, item.body))), 'application/json', d.now(), d.failing(item));
    }),
  );

  app.register(async (ocsp) => {
    ocsp.addContentTypeParser('application/ocsp-request', { parseAs: 'buffer', bodyLimit: MAX_OCSP_REQUEST }, (_req, body, done) => done(null, body));
    ocsp.post('/ocsp', { config: { ...PCS, wire: COLLATERAL.ocsp }, bodyLimit: MAX_OCSP_REQUEST, schema: { summary: 'NVIDIA OCSP (cached responses by CertID)', tags: ['NVIDIA'] } }, async (request, reply) => {
      reply.header('content-type', 'application/ocsp-response');
      let scope: string;
      let certId: ReturnType<typeof parseOcspRequest>['certId'];
      try {
        certId = parseOcspRequest(new Uint8Array(request.body as Buffer)).certId;
        scope = ocspScope(certId);
      } catch {
        return reply.code(200).send(ocspError(OCSP_MALFORMED_REQUEST));
      }
      let item: CollateralItem;
      try {
        item = await d.asClient(request.ip, () => d.cached('nvidia_ocsp', scope, () => fetchOcsp(d.svc, certId)));
      } catch (e) {
        // Not cached and nothing upstream: not authoritative for it. An upstream failure: try later.
        return reply.code(200).send(ocspError(isConclaveError(e, 'collateral.not_found') ? OCSP_UNAUTHORIZED : OCSP_TRY_LATER));
      }
      const t = d.now();
      const stale = d.failing(item) || (item.nextUpdate !== null && t > item.nextUpdate);
      if (item.nextUpdate !== null && t > item.nextUpdate - 24 * 3600_000) d.svc.refreshSoon(item);
      if (stale) reply.header('warning', STALE_WARNING);
      return reply.code(200).send(Buffer.from(item.body));
    });
  });
}
