/**
 * The collateral cache on the wire: Intel PCS v3/v4 and THIM (same paths under /metadata/THIM), PCCS's
 * additions, AMD KDS and THIM AMD, NVIDIA RIM and OCSP, and Conclave's collateral administration.
 * PCS answers carry their issuer chains in headers (`SGX-TCB-Info-Issuer-Chain`, …) as Intel's do.
 */
import { OBJECT, conclaveErrors, pcsErrors } from './common.js';
import { S, type Schema, route } from './schema.js';

const hex = (digits: number | string, description: string) => S.string({ pattern: `^[0-9a-fA-F]{${digits}}$`, description });
const FMSPC = hex(12, 'FMSPC, 12 hex digits');
const PCE_ID = hex(4, 'PCE ID, 4 hex digits');
const QE_ID = hex('1,260', 'QE ID, hex');
const ENC_PPID = hex('0,768', 'encrypted PPID, hex (all zeros: none)');
const CPUSVN = hex(32, 'CPU SVN, 32 hex digits');
const PCESVN = hex('1,4', 'PCE SVN, hex');
/** One of `words` in any letter case (PCS and PCCS compare these parameters case-insensitively). */
const anyCase = (words: readonly string[], description: string) =>
  S.string({ pattern: `^(${words.map((w) => [...w].map((c) => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c)).join('')).join('|')})$`, description: `${words.join(', ')} (any case): ${description}` });
const UPDATE = S.optional(anyCase(['standard', 'early'], 'TCB update channel'));
const ENCODING = S.optional(S.string({ description: 'der or pem (any case); anything else or absent: hex of the DER, as PCCS' }));
const pcs = (description: string, type = 'application/json', schema?: Schema) => ({ 200: { description, type, ...(schema ? { schema } : {}) }, ...pcsErrors });
const admin = (schema: Schema = OBJECT, description = 'OK') => ({ 200: { description, schema }, ...conclaveErrors });

/** The signed TCB info or enclave identity as PCS answers it: the signed body and its signature. */
const SIGNED = (member: string) => S.object({ [member]: OBJECT, signature: S.string({ description: 'hex' }) });
const PLATFORM_QUERY = S.object({ pceid: PCE_ID, qeid: S.optional(QE_ID), encrypted_ppid: S.optional(ENC_PPID) });
/** A PCE SVN in a JSON body: 4 hex digits, or a number whose decimal digits read as them (as the handlers take it). */
const BODY_PCESVN = S.anyOf([S.string({ maxLength: 4, description: 'PCE SVN, 4 hex digits' }), S.integer({ minimum: 0, maximum: 9999 })]);
const MANIFEST_BODY = S.object({ platformManifest: S.string({ description: 'platform manifest, hex' }), pceid: PCE_ID, cpusvn: S.optional(CPUSVN), pcesvn: S.optional(BODY_PCESVN) });
// A product the KDS does not know is a 404 (request.not_found) from the handler; bounded as the router bounds path parameters.
const PRODUCT = S.string({ maxLength: 100, description: 'Milan, Genoa, Turin' });
const SPL = S.optional(S.string({ pattern: '^[0-9]{1,3}$' }));

export const COLLATERAL = {
  tcbInfo: route({ query: S.object({ fmspc: FMSPC, update: UPDATE, tcbEvaluationDataNumber: S.optional(S.string({ pattern: '^[0-9]{1,10}$' })) }), body: null, responses: pcs('signed TCB info (TCB-Info-Issuer-Chain header)', 'application/json', SIGNED('tcbInfo')) }),
  enclaveIdentity: route({ query: S.object({ update: UPDATE, tcbEvaluationDataNumber: S.optional(S.string({ pattern: '^[0-9]{1,10}$' })) }), body: null, responses: pcs('signed enclave identity (Enclave-Identity-Issuer-Chain header)', 'application/json', SIGNED('enclaveIdentity')) }),
  tcbEvaluationDataNumbers: route({ body: null, responses: pcs('signed TCB evaluation data numbers', 'application/json', SIGNED('tcbEvaluationDataNumbers')) }),
  pckCrl: route({ query: S.object({ ca: anyCase(['processor', 'platform'], 'PCK CA'), encoding: ENCODING }), body: null, responses: pcs('the PCK CRL (PEM, or DER with encoding=der; SGX-PCK-CRL-Issuer-Chain header)', 'application/x-pem-file') }),
  rootCaCrl: route({ query: S.object({ encoding: ENCODING }), body: null, responses: pcs('the Intel SGX Root CA CRL, hex of DER (as PCCS)', 'text/plain') }),
  pckCert: route({ query: S.object({ pceid: PCE_ID, qeid: S.optional(QE_ID), encrypted_ppid: S.optional(ENC_PPID), cpusvn: CPUSVN, pcesvn: PCESVN }), body: null, responses: pcs('the PCK certificate, PEM (SGX-PCK-Certificate-Issuer-Chain, SGX-TCBm, SGX-FMSPC headers)', 'application/x-pem-file') }),
  pckCerts: route({ query: PLATFORM_QUERY, body: null, responses: pcs('every PCK certificate of the platform with its TCB', 'application/json', S.array(S.object({ tcb: OBJECT, tcbm: S.string(), cert: S.string() }))) }),
  pckCertByManifest: route({ body: MANIFEST_BODY, responses: pcs('the PCK certificate selected for the platform', 'application/x-pem-file') }),
  pckCertsByManifest: route({ body: MANIFEST_BODY, responses: pcs('every PCK certificate of the platform', 'application/json', S.array(OBJECT)) }),
  crlByUri: route({ query: S.object({ uri: S.string({ maxLength: 2048, description: 'the CRL distribution point' }), ca: S.optional(S.string()), encoding: S.optional(S.string({ maxLength: 64 })) }), body: null, responses: pcs('the CRL', 'application/pkix-crl') }),
  fmspcs: route({ query: S.object({ platform: S.optional(anyCase(['all', 'client', 'E3', 'E5'], 'platform type')) }), body: null, responses: pcs('FMSPCs', 'application/json', S.array(S.object({ fmspc: S.string(), platform: S.string() }))) }),
  registerPlatform: route({
    query: S.object({ update: S.optional(S.string()) }),
    body: S.object({ qe_id: S.string(), pce_id: S.string(), cpu_svn: S.optional(S.string()), pce_svn: S.optional(BODY_PCESVN), enc_ppid: S.optional(S.string()), platform_manifest: S.optional(S.string()) }),
    responses: pcs('registered', 'text/plain'),
  }),
  listPlatforms: route({ query: S.object({ source: S.optional(S.string({ description: 'reg, reg_na or a JSON list of FMSPCs' })) }), body: null, responses: pcs('platforms (platform-count header)', 'application/json', S.array(OBJECT)) }),
  platformCollateral: route({ body: S.object({ platforms: S.array(OBJECT), collaterals: OBJECT }), responses: pcs('stored', 'text/plain') }),
  refresh: route({ query: S.object({ type: S.optional(S.enum(['certs'])), fmspc: S.optional(S.string({ description: 'a JSON list of FMSPCs (type=certs)' })) }), body: null, responses: pcs('refreshed', 'text/plain') }),
  getAppraisalPolicy: route({ query: S.object({ fmspc: FMSPC }), body: null, responses: pcs('the default appraisal policies, comma-separated', 'text/plain') }),
  putAppraisalPolicy: route({ body: S.object({ policy: S.string({ description: 'the appraisal policy JWT' }), is_default: S.optional(S.boolean()) }), responses: pcs('the policy id', 'text/plain') }),

  amdCertChain: route({ params: S.object({ product: PRODUCT }), body: null, responses: pcs('the ASK (or ASVK) then the ARK, PEM', 'application/x-pem-file') }),
  amdCrl: route({ params: S.object({ product: PRODUCT }), body: null, responses: pcs('the CRL of the product, DER', 'application/pkix-crl') }),
  vcek: route({ params: S.object({ product: PRODUCT }), query: S.object({ blSPL: SPL, teeSPL: SPL, snpSPL: SPL, ucodeSPL: SPL, fmcSPL: SPL }), body: null, responses: pcs('the VCEK of the chip (the path after the product is its hardware id) at that TCB, DER', 'application/pkix-cert') }),
  thimAmd: route({ query: S.object({ product: S.optional(S.string({ description: 'Milan, Genoa, Turin' })), chipId: S.optional(hex(128, 'chip id')), tcbm: S.optional(hex(16, 'reported TCB')) }), body: null, responses: pcs('VCEK, chain and TCB of the host', 'application/json', S.object({ vcekCert: S.string(), tcbm: S.string(), certificateChain: S.string() })) }),
  rim: route({ params: S.object({ id: S.string({ maxLength: 256 }) }), body: null, responses: pcs('the RIM (NVIDIA RIM service answer)', 'application/json', S.object({ id: S.string(), rim: S.string({ description: 'base64 of the signed SWID XML' }) })) }),
  ocsp: route({ body: S.unknown({ description: 'a DER OCSP request (application/ocsp-request)' }), bodyType: 'application/ocsp-request', responses: pcs('the cached OCSP response', 'application/ocsp-response') }),

  status: route({ body: null, responses: admin(S.object({ items: S.array(OBJECT) }), 'cached items') }),
  refreshNow: route({ query: S.object({ key: S.optional(S.string({ description: 'one cached item (all when absent)' })) }), body: null, responses: admin() }),
  getBaseline: route({ body: null, responses: admin() }),
  setBaseline: route({ body: OBJECT, responses: admin() }),
  dryRunBaseline: route({ query: S.object({ days: S.optional(S.string({ pattern: '^[0-9]{1,4}$' })) }), body: OBJECT, responses: admin() }),
  setAmdHost: route({ body: S.object({ product: S.string({ description: 'Milan, Genoa, Turin (another is a 404)' }), chipId: hex(128, 'chip id'), tcbm: hex(16, 'reported TCB') }), responses: admin(S.object({ product: S.string(), chipId: S.string(), tcbm: S.string() })) }),
  exportBundle: route({ body: null, responses: admin(OBJECT, 'the offline bundle') }),
  importBundle: route({ invalid: { body: 'collateral.bundle_invalid' }, body: S.anyOf([OBJECT, S.string({ description: 'the bundle as JSON text' })], { description: 'the offline bundle (GET /admin/collateral/bundle), as JSON or its text' }), responses: admin(S.object({ imported: S.integer() })) }),
};
