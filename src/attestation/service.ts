/**
 * The attestation service (MAA semantics): evidence bytes → verified facts → claims → policy → token.
 * Pure domain logic over ports: collateral, policy storage, the signing key and the clock come in as
 * parameters; the HTTP layer (server/attestation) only translates wire formats.
 */
import { parsePckSgxExtension } from '../evidence/dcap/pck-extension.js';
import { createPublicKey } from 'node:crypto';
import { b64url, fromB64 } from '../core/bytes.js';
import { ConclaveError, fail, isConclaveError } from '../core/errors.js';
import { createTurnQueue } from '../core/turns.js';
import { parseCertificate, verifyChain } from '../core/x509.js';
import { INTEL_SGX_ROOT_CA } from '../evidence/dcap/roots.js';
import { VerifierCache, pckChainDers, verifyQuote } from '../evidence/dcap/index.js';
import { parseQuoteView } from '../evidence/dcap/quote.js';
import { RecentBytes } from '../evidence/dcap/recent-bytes.js';
import type { Quote } from '../evidence/dcap/quote.js';
import type { SimulatedTee } from '../evidence/simulated/index.js';
import { SIMULATED_ROOT_CN } from '../evidence/simulated/index.js';
import { SnpVerifierCache, parseMaaSevSnpEvidence, verifyAzureHclReport, verifyParsedMaaSevSnpEvidenceAsync } from '../evidence/snp/index.js';
import { isHclReport, parseHclReport } from '../evidence/azure-vtpm/hcl.js';
import { parseAzureVtpmEvidence } from '../evidence/azure-vtpm/evidence.js';
import { parseGuestAttestationInfo } from '../evidence/azure-vtpm/guest.js';
import { createAzureVmAttester, sealTokenToTpmKey } from './azure-vm.js';
import { createTpmProtocol } from './tpm-protocol.js';
import { type SnpCrlRequirement, createSnpCrls } from './snp-crl.js';
import { decodeTcb, parseSnpReport, productFromCpuid, tcbLayoutOf } from '../evidence/snp/report.js';
import { type Claims, type EvidenceClaims, claimsOf, incomingClaims, sgxClaims, snpClaims, tdxClaims } from './claims.js';
import {
  type Claim,
  type CompiledPolicy,
  DEFAULT_EVALUATION_BUDGET,
  DEFAULT_POLICIES,
  type EvaluationBudget,
  type PolicyAttestationType,
  type PolicyConfiguration,
  type PolicyEvaluation,
  compilePolicy,
  decodePolicyJws,
  evaluatePolicy,
  looksLikeJws,
  parsePolicy,
  policyHash,
  verifyManagementJws,
} from './policy/index.js';
import type { PlatformSeen } from '../collateral/baseline.js';
import type { PolicyAuthorization, PolicyStore, QuoteCollateralSource, SnpCertificateSource, StoredPolicy } from './ports.js';
import { type DataInput, checkInitTimeBinding, checkReportDataBinding, parseDataInput } from './runtime-data.js';
import { type TokenSigner, issueToken } from './token.js';
import { GpuVerifierCache } from '../evidence/nvidia/index.js';
import { type GpuReferenceSource, attestGpus, gpuPolicyClaims } from './gpu.js';

/** The `/attest/{type}` evidence types this service verifies. */
export const ATTEST_TYPES = ['SgxEnclave', 'OpenEnclave', 'TdxVm', 'SevSnpVm'] as const;
export type AttestType = (typeof ATTEST_TYPES)[number];

/** Types that have a policy (`/policies/{type}`). */
export const POLICY_TYPES: readonly PolicyAttestationType[] = ['SgxEnclave', 'OpenEnclave', 'TdxVm', 'SevSnpVm', 'AzureGuest', 'Tpm', 'VBS'];

/** The claim that holds the TEE claims of an Azure VM token (and, in policies, the prefix that addresses them). */
const ISOLATION_TEE = 'x-ms-isolation-tee';

/** Finds the canonical spelling of a type in a URL (MAA matches case-insensitively: the sidecar sends `SevSnpVM`). */
export function canonicalType<T extends string>(raw: string, types: readonly T[]): T {
  const t = types.find((x) => x.toLowerCase() === raw.toLowerCase());
  if (!t) throw fail('attestation.type_unknown', `unknown attestation type "${raw}"; expected one of ${types.join(', ')}`, { type: raw });
  return t;
}

export interface AttestationServiceDeps {
  /** DER certificates of the TPM AIK CA roots the operator trusts (`/attest/Tpm` `aikValidated`). */
  readonly tpmAikRoots?: readonly Uint8Array[];
  readonly collateral: QuoteCollateralSource;
  /** `azure` (default, as MAA): collateral past its nextUpdate is reported; `strict`: refused, naming the item. */
  readonly freshness?: 'azure' | 'strict';
  readonly snpCertificates: SnpCertificateSource;
  /** Whether SNP evidence needs the AMD CRL (`required`) or is attested without one that cannot be had (default). */
  readonly snpCrl?: SnpCrlRequirement | undefined;
  readonly policies: PolicyStore;
  readonly signer: () => Promise<TokenSigner>;
  /** Signs tokens from simulated evidence (present only with `simulated`); never the production key. */
  readonly simulatedSigner?: () => Promise<TokenSigner>;
  readonly issuer: () => string;
  readonly now: () => Date;
  /** A monotonic millisecond clock for cache expiry (not for verification, which uses `now`). */
  readonly cacheClockMs: () => number;
  readonly tokenLifetimeSeconds: number;
  /** Present only when the operator opted in (`--simulate`): its roots are trusted, its tokens say so. */
  readonly simulated?: SimulatedTee | undefined;
  /** NVIDIA RIMs for GPU evidence (composite attestation); without it GPU measurements are not compared. */
  readonly gpuReferences?: GpuReferenceSource | undefined;
  /** Called with each verified Intel platform (FMSPC and TCB), for the collateral baseline dry run. */
  readonly onPlatformSeen?: (p: PlatformSeen, at: Date) => void;
}

export interface AttestRequest {
  readonly quote?: unknown;
  readonly report?: unknown;
  readonly runtimeData?: unknown;
  readonly initTimeData?: unknown;
  readonly draftPolicyForAttestation?: unknown;
  readonly nonce?: unknown;
  /** Composite attestation: NVIDIA serialised evidence of the VM's GPUs (TdxVm and SevSnpVm only). */
  readonly gpuEvidence?: unknown;
}

export interface AttestationService {
  attest(type: AttestType, body: AttestRequest): Promise<{ token: string; claims: Claims }>;
  /** `/attest/Tpm`: one message of MAA's TPM protocol (`data` of the request), the `data` of the answer. */
  attestTpm(body: unknown): Promise<{ data: string }>;
  /** `/attest/AzureGuest`: the token, and the token sealed to the vTPM's ephemeral key when the guest sent one. */
  attestGuest(body: unknown): Promise<{ token: string; claims: Claims; sealed: string | undefined }>;
  /** The policy in force for a type (stored or default). */
  policy(type: PolicyAttestationType): Promise<StoredPolicy & { isDefault: boolean }>;
  /** Checks and stores a policy JWS; returns what was stored. */
  setPolicy(type: PolicyAttestationType, jws: string, isolated: boolean): Promise<StoredPolicy>;
  resetPolicy(type: PolicyAttestationType, jws: string, isolated: boolean): Promise<void>;
}

interface CachedPolicy {
  readonly compiled: CompiledPolicy;
  readonly stored: StoredPolicy & { isDefault: boolean };
  readonly hash: string;
}

/**
 * The largest `draftPolicyForAttestation` evaluated (policy text or its JWS). Drafts come from anyone who
 * can attest; MAA's own samples are a few kilobytes.
 */
export const MAX_DRAFT_POLICY_CHARS = 64 * 1024;

/** Evaluations waiting for their turn of the event loop before new ones are refused (429). */
const MAX_WAITING_EVALUATIONS = 256;

/**
 * What a policy evaluation may spend inline, before it is handed to the evaluation queue: a small slice
 * of the full budget (the published policies take under a hundred steps on their claim sets).
 */
const INLINE_EVALUATION_BUDGET: EvaluationBudget = { ...DEFAULT_EVALUATION_BUDGET, maxSteps: 2_000, maxMillis: 2 };

/** Policy caches re-check the store's version at most this often, bounding cross-replica staleness. */
const POLICY_RECHECK_MS = 1000;

export function createAttestationService(deps: AttestationServiceDeps): AttestationService {
  const dcapCache = new VerifierCache();
  const snpCache = new SnpVerifierCache();
  const gpuCache = new GpuVerifierCache();
  const policyCache = new Map<string, CachedPolicy>();
  // Policy evaluation is CPU-bound and budgeted; one at a time, each in its own turn of the event loop.
  const evaluationTurn = createTurnQueue(MAX_WAITING_EVALUATIONS);
  let policyVersion = -1;
  let versionCheckedAt = 0;
  /**
   * Moves whenever cached policies are dropped (a new version seen, a local set or reset): a policy read
   * that was in flight across such a drop read what the store held before the change, and must not be
   * cached over what was loaded since.
   */
  let policyGeneration = 0;

  /**
   * Evaluates at once when the evaluation fits {@link INLINE_EVALUATION_BUDGET} (every published policy
   * does, in well under a millisecond); one that does not is abandoned and evaluated again with the full
   * budget in its own turn of the event loop (evaluationTurn). Evaluation is deterministic, so both give
   * the same answer; the event loop never spends more than the small budget inline.
   */
  function evaluate(compiled: CompiledPolicy, incoming: readonly Claim[]): PolicyEvaluation | Promise<PolicyEvaluation> {
    try {
      return evaluatePolicy(compiled, incoming, { budget: INLINE_EVALUATION_BUDGET });
    } catch (e) {
      if (!isConclaveError(e, 'attestation.policy_budget')) throw e;
    }
    return evaluationTurn(() => evaluatePolicy(compiled, incoming));
  }

  /** The cached policy of a type while no version check is due (no promise, no turn of the event loop); else undefined. */
  function cachedPolicy(type: PolicyAttestationType): CachedPolicy | undefined {
    return deps.cacheClockMs() - versionCheckedAt > POLICY_RECHECK_MS ? undefined : policyCache.get(type);
  }

  /** A local set or reset of `type`: its cached policy, and any read of it in flight, is dropped; the version is checked again. */
  function policyChanged(type: PolicyAttestationType): void {
    policyCache.delete(type);
    policyGeneration++;
    versionCheckedAt = 0;
  }

  async function currentPolicy(type: PolicyAttestationType): Promise<CachedPolicy> {
    const nowMs = deps.cacheClockMs();
    if (nowMs - versionCheckedAt > POLICY_RECHECK_MS) {
      versionCheckedAt = nowMs;
      const v = await deps.policies.version();
      if (v !== policyVersion) {
        policyCache.clear();
        policyGeneration++;
        policyVersion = v;
      }
    }
    let cached = policyCache.get(type);
    if (!cached) {
      const generation = policyGeneration;
      const stored = await deps.policies.getPolicy(type);
      const text = stored?.text ?? DEFAULT_POLICIES[type];
      const compiled = compilePolicy(parsePolicy(text));
      cached = {
        compiled,
        stored: stored ? { ...stored, isDefault: false } : { text, jws: '', isDefault: true },
        hash: policyHash(text),
      };
      if (generation === policyGeneration) policyCache.set(type, cached);
    }
    return cached;
  }

  /**
   * What the quote's PCK chain says before verification: which root it claims (the simulated one is
   * trusted only under --simulate) and which collateral it needs. Memoised by the chain's bytes, as a
   * platform sends the same chain with every quote; verifyQuote still checks the chain in full (validity at
   * the verification time, the CRLs).
   */
  type PckFacts = { simulated: boolean; fmspc: string; pceId: string; caType: 'processor' | 'platform' };
  const pckFacts = new Map<string, PckFacts>();
  // The chains of the last few platforms, compared byte for byte before the text is made and looked up.
  const recentPckFacts = new RecentBytes<PckFacts>();
  function pckFactsOf(quote: Quote) {
    const certData = quote.signatureData.certificationData.data;
    let facts = recentPckFacts.get(certData);
    if (!facts) facts = pckFactsOfText(certData);
    if (facts.simulated && !deps.simulated) {
      throw fail('evidence.untrusted_root', 'the quote chains to the simulated TEE root, which this server trusts only when started with --simulate', {
        root: SIMULATED_ROOT_CN,
      });
    }
    return facts;
  }
  function pckFactsOfText(certData: Uint8Array): PckFacts {
    // At most 32 KiB and leaf, PCK CA and root, before the text is made, remembered or decoded (the verifier refuses more anyway).
    const ders = pckChainDers(certData);
    const pem = Buffer.from(certData.buffer, certData.byteOffset, certData.byteLength).toString('latin1');
    let facts = pckFacts.get(pem);
    if (!facts) {
      const chain = ders.map(parseCertificate);
      const pck = chain[0];
      if (!pck) throw fail('quote.pck_chain_invalid', 'the quote carries no PCK certificate');
      const root = chain[chain.length - 1]!;
      const simulated = root.subjectCN === SIMULATED_ROOT_CN || root.issuerCN === SIMULATED_ROOT_CN;
      // A real chain is checked to the pinned Intel SGX Root CA (signatures and CA rules; validity and
      // revocation come with the collateral) before its FMSPC chooses which collateral to fetch: an
      // anonymous caller cannot make the server ask its upstream for invented FMSPCs.
      if (!simulated) verifyChain(chain, INTEL_SGX_ROOT_CA, { at: new Date(0), enforceValidity: false, code: 'quote.pck_chain_invalid' });
      const ext = parsePckSgxExtension(pck);
      facts = {
        simulated,
        fmspc: ext.fmspc,
        pceId: ext.pceId,
        caType: /platform/i.test(pck.issuerCN ?? '') ? 'platform' : 'processor',
      };
      if (pckFacts.size >= 1024) pckFacts.clear();
      pckFacts.set(pem, facts);
    }
    recentPckFacts.set(certData, facts);
    return facts;
  }

  async function attestQuote(tee: 'sgx' | 'tdx', quoteBytes: Uint8Array, runtime: DataInput | undefined, initTime: DataInput | undefined, at: Date) {
    const { result, collateral, simulated } = await verifyDcap(tee, quoteBytes, at);
    if (result.tee === 'sgx') {
      if (runtime) checkReportDataBinding(result.report.reportdata, runtime, 'SGX runtime data');
      if (initTime) checkInitTimeBinding(result.report.configid, initTime, 'SGX CONFIGID');
      return { claims: sgxClaims(result, quoteBytes, collateral, runtime, initTime), simulated };
    }
    if (runtime) checkReportDataBinding(result.td.reportdata, runtime, 'TDX runtime data');
    if (initTime) checkInitTimeBinding(result.td.mrconfigid, initTime, 'TDX MRCONFIGID');
    return { claims: tdxClaims(result, quoteBytes, collateral, runtime, initTime), simulated };
  }

  /** DCAP verification with the service's collateral (or the simulated TEE's, under --simulate). */
  async function verifyDcap(tee: 'sgx' | 'tdx', quoteBytes: Uint8Array, at: Date) {
    // Views, not copies: the quote bytes are this request's own (decoded from its body) and nothing writes them.
    const quote = parseQuoteView(quoteBytes);
    if ((quote.header.teeType === 0 ? 'sgx' : 'tdx') !== tee) {
      throw fail('quote.unsupported', `a ${tee === 'sgx' ? 'TDX' : 'SGX'} quote was sent to the ${tee === 'sgx' ? 'SGX' : 'TDX'} route`);
    }
    const pck = pckFactsOf(quote);
    const simulated = pck.simulated ? deps.simulated : undefined;
    const collateral = simulated ? simulated.collateral(tee) : await deps.collateral.getQuoteCollateral({ tee, fmspc: pck.fmspc, pceId: pck.pceId, caType: pck.caType });
    // The quote's two ECDSA P-256 signatures are checked here, on the event loop (about 60 µs each). Handed
    // to the threadpool (verifyQuoteAsync) they cost more than they free: each hop costs the event loop about
    // 20 µs and the process 30–45 µs more CPU, and a request waits for both (bench/README, quiet run 3: SGX
    // at 4 connections 0.69x / 0.66x of the floor on the event loop against 0.55x / 0.56x on the
    // threadpool, interleaved, server CPU 1015–1072 against 1215–1298 µs per attestation).
    const result = verifyQuote(quote, collateral, {
      at,
      freshness: deps.freshness ?? 'azure',
      cache: dcapCache,
      ...(simulated ? { trustAnchors: { intelRoot: simulated.intelRoot } } : {}),
    });
    // Intel calls a platform on a Revoked TCB not trustworthy (its QvE: a terminal result): no token, whatever
    // the policy. The verifier reports it (docs/dcap.md); OutOfDate and the others attest with their status.
    if (result.status === 'Revoked') {
      throw fail('quote.tcb_revoked', 'the quote verified at a TCB Intel has revoked (platform, QE or TDX module level); it is not attested', {
        tcbStatus: result.tcb.status,
        qeStatus: result.qe.status,
        ...(result.tee === 'tdx' && result.tcb.tdxModule?.status ? { tdxModuleStatus: result.tcb.tdxModule.status } : {}),
        fmspc: result.fmspc,
      });
    }
    deps.onPlatformSeen?.(
      {
        tee,
        fmspc: result.fmspc.toUpperCase(),
        cpusvn: Buffer.from(result.tcb.sgxtcbcomponents).toString('hex'),
        pcesvn: result.tcb.pcesvn,
        ...(result.tee === 'tdx' ? { teeTcbSvn: result.td.teetcbsvn } : {}),
      },
      at,
    );
    return { result, collateral, simulated: simulated !== undefined };
  }

  const crls = createSnpCrls(deps.snpCertificates, deps.snpCrl);
  const azure = createAzureVmAttester({
    snpCertificates: deps.snpCertificates,
    crls,
    simulatedAmdAnchors: deps.simulated?.amdAnchors,
    simulatedAmdCrl: deps.simulated?.amdCrl,
    async verifyTdQuote(quote, at) {
      const { result, collateral, simulated } = await verifyDcap('tdx', quote, at);
      if (simulated || result.tee !== 'tdx') throw fail('evidence.untrusted_root', 'Azure vTPM evidence needs a TD quote from real Intel hardware');
      return { result, collateral };
    },
  });

  async function attestSnp(reportField: string, runtime: DataInput | undefined, initTime: DataInput | undefined, at: Date) {
    const decoded = fromB64(reportField, 'report');
    const opts = { at, cache: snpCache };
    const vtpm = parseAzureVtpmEvidence(decoded);
    if (vtpm) {
      if (vtpm.form !== 'trustee-az-snp-vtpm') throw fail('request.invalid', 'TDX vTPM evidence belongs to /attest/TdxVm');
      const r = await azure.attestTrustee(vtpm, runtime?.bytes, at);
      if (initTime) checkInitTimeBinding(String(r.claims['x-ms-sevsnpvm-hostdata']), initTime, 'SNP HOST_DATA');
      return r;
    }
    if (isHclReport(decoded)) {
      // Azure CVM form: the HCL report from the vTPM binds its own runtime data (HCLAkPub, HCLEkPub, …).
      // It carries no certificates: the VCEK comes from the collateral service (KDS/THIM), by chip and TCB.
      const report = parseSnpReport(parseHclReport(decoded).hwReport);
      const product = report.cpuid ? productFromCpuid(report.cpuid.family, report.cpuid.model) : undefined;
      if (!product) throw fail('snp.certificate_missing', 'the SNP report names no product (report version 2 has no CPUID); send the VCEK with the evidence');
      const certs = await deps.snpCertificates.getVcek({ product, chipId: report.chipId, tcb: decodeTcb(report.reportedTcb, tcbLayoutOf(product)) });
      const amd = await crls.crlFor(report, certs);
      const r = verifyAzureHclReport(decoded, { ...certs, crl: amd.crl }, { ...opts, ...(runtime ? { runtimeData: runtime.bytes } : {}) });
      crls.require(r, amd);
      // The HCL form binds its own runtime data; init-time data binds through the SNP report's HOST_DATA as in the container form.
      if (initTime) checkInitTimeBinding(r.hostData, initTime, 'SNP HOST_DATA');
      // The bytes the report binds (the HCL variable data): a composite attestation derives the GPU nonce from them.
      return { claims: snpClaims(r, 'azure-hcl', runtime, initTime), simulated: false, boundRuntimeData: r.runtimeData ? fromB64(r.runtimeData.data, 'runtimeData') : undefined };
    }
    // Container form: base64url(JSON {SnpReport, VcekCertChain, Endorsements}). The chain is in the evidence;
    // the AMD CRL is not: it comes from the collateral source, by the report's product and signing key. Try
    // the pinned AMD roots (with that CRL) first; the simulated roots (with the simulated TEE's own CRL) only
    // when the operator opted in.
    // The report's P-384 signature is checked on the threadpool (the event loop keeps the other checks).
    const ev = parseMaaSevSnpEvidence(decoded);
    const report = parseSnpReport(ev.snpReport);
    const chain = { chain: ev.vcekCertChain };
    const amd = await crls.crlFor(report, chain);
    try {
      const r = await verifyParsedMaaSevSnpEvidenceAsync(ev, report, runtime?.bytes, initTime?.bytes, { ...opts, certs: { ...chain, crl: amd.crl } });
      crls.require(r, amd);
      return { claims: snpClaims(r, 'container', runtime, initTime), simulated: false };
    } catch (e) {
      if (!(e instanceof ConclaveError) || e.code !== 'snp.chain_invalid' || !deps.simulated) throw e;
      const own = { crl: deps.simulated.amdCrl };
      const r = await verifyParsedMaaSevSnpEvidenceAsync(ev, report, runtime?.bytes, initTime?.bytes, { ...opts, certs: { ...chain, crl: own.crl }, trustAnchors: deps.simulated.amdAnchors });
      crls.require(r, own);
      return { claims: snpClaims(r, 'container', runtime, initTime), simulated: true };
    }
  }

  async function finish(
    type: PolicyAttestationType,
    verified: { claims: EvidenceClaims; simulated: boolean },
    body: AttestRequest,
    at: Date,
    checkConfiguration?: (config: PolicyConfiguration) => void,
  ): Promise<{ token: string; claims: Claims }> {
    // Policy: the stored one (or MAA's default), or a draft evaluated without storing (unsigned token).
    let compiled: CompiledPolicy;
    let hash: string;
    let signerCertDer: Uint8Array | undefined;
    const draft = body.draftPolicyForAttestation;
    if (draft !== undefined && draft !== null && draft !== '') {
      if (typeof draft !== 'string') throw fail('request.invalid', 'draftPolicyForAttestation must be a string');
      if (draft.length > MAX_DRAFT_POLICY_CHARS) throw fail('request.too_large', `draftPolicyForAttestation is longer than ${MAX_DRAFT_POLICY_CHARS} characters`, { field: 'draftPolicyForAttestation', max: MAX_DRAFT_POLICY_CHARS });
      const text = looksLikeJws(draft) ? decodePolicyJws(draft).policyText : draft;
      compiled = compilePolicy(parsePolicy(text));
      hash = policyHash(text);
    } else {
      const p = cachedPolicy(type) ?? (await currentPolicy(type));
      compiled = p.compiled;
      hash = p.hash;
      signerCertDer = p.stored.signerCertDer;
    }
    const incoming = incomingClaims(verified.claims);
    for (const c of gpuPolicyClaims(verified.claims)) incoming.push(c);
    // Inline evaluations (every published policy) answer at once; only one over the inline budget is awaited.
    let evaluation = evaluate(compiled, incoming);
    if (evaluation instanceof Promise) evaluation = await evaluation;
    if (!evaluation.permitted) {
      throw fail('attestation.policy_denied', `the attestation policy denied the evidence: ${evaluation.trace.join('; ') || 'no authorization rule permitted it'}`, {
        trace: evaluation.trace,
      });
    }
    checkConfiguration?.(evaluation.config);
    const claims: Claims = { ...verified.claims };
    // Claim names are the policy's: own members only, never Object.prototype's (toString, __proto__, …).
    for (const c of evaluation.issued) {
      if (Object.hasOwn(verified.claims, c.type)) continue; // the service's own claims are not overridable by policy
      if (c.type.startsWith(`${ISOLATION_TEE}.`)) {
        // `x-ms-isolation-tee.<name>`: a claim the policy places inside the nested TEE claims (AzureGuest shape).
        const tee = claims[ISOLATION_TEE];
        const name = c.type.slice(ISOLATION_TEE.length + 1);
        if (typeof tee === 'object' && tee !== null && !Object.hasOwn(tee, name)) claims[ISOLATION_TEE] = { ...tee, [name]: c.value };
        continue;
      }
      const prev = Object.hasOwn(claims, c.type) ? claims[c.type] : undefined;
      // Defined, not assigned: assigning `__proto__` would set the object's prototype instead of a claim.
      Object.defineProperty(claims, c.type, { value: prev === undefined ? c.value : Array.isArray(prev) ? [...prev, c.value] : [prev, c.value], writable: true, enumerable: true, configurable: true });
    }
    // The SevSnpVm token's nested copy of the TEE claims mirrors a policy-issued compliance status.
    const tee = claims[ISOLATION_TEE];
    if (typeof claims['x-ms-compliance-status'] === 'string' && typeof tee === 'object' && tee !== null && !('x-ms-compliance-status' in tee)) {
      claims[ISOLATION_TEE] = { ...tee, 'x-ms-compliance-status': claims['x-ms-compliance-status'] };
    }
    claims['x-ms-policy-hash'] = hash;
    if (signerCertDer) claims['x-ms-policy-signer'] = { kty: parseCertificate(signerCertDer).signatureAlgorithm.kind === 'ecdsa' ? 'EC' : 'RSA', x5c: [Buffer.from(signerCertDer).toString('base64')] };
    if (body.nonce !== undefined && body.nonce !== null && body.nonce !== '') claims.nonce = body.nonce;
    if (verified.simulated) claims['x-conclave-simulated'] = true;
    const isDraft = draft !== undefined && draft !== null && draft !== '';
    // The policy adds claims to what verification established; the token carries both, derived from the evidence.
    const token = await issueToken(claimsOf(verified.claims, claims), deps.issuer(), isDraft ? 'unsigned' : await signerFor(verified.simulated), { now: at, lifetimeSeconds: deps.tokenLifetimeSeconds });
    return { token, claims };
  }

  const tpmProtocol = createTpmProtocol(
    {
      signer: async () => {
        const k = await deps.signer();
        return { privateKey: k.privateKey, publicKey: createPublicKey(k.privateKey) };
      },
      now: deps.now,
    },
    deps.tpmAikRoots ?? [],
  );

  return {
    async attestTpm(body) {
      if (typeof body !== 'object' || body === null) throw fail('request.invalid', 'the request body must be a JSON object {"data": base64url}');
      const m = await tpmProtocol.handle((body as Record<string, unknown>).data);
      const answer = (reply: Record<string, unknown>) => ({ data: b64url(JSON.stringify(m.wrapped ? { payload: reply } : reply)) });
      if (m.kind === 'init') return answer(m.reply);
      const at = deps.now();
      const { token } = await finish('Tpm', { claims: m.claims, simulated: false }, {}, at, (config) => {
        // MAA's TPM configuration rules: a valid AIK certificate (default required) and the PCRs the quote must cover.
        if (config.require_valid_aik_cert !== false && !m.aikValidated) {
          throw fail('attestation.policy_denied', 'the AIK certificate does not chain to a trusted AIK CA (configure --tpm-aik-root, or set require_valid_aik_cert=false in the Tpm policy)', { rule: 'require_valid_aik_cert' });
        }
        const mask = config.required_pcr_mask ?? 0xffffff;
        const missing = Array.from({ length: 24 }, (_, i) => i).filter((i) => (mask >>> i) & 1 && !m.requiredPcrs.includes(i));
        if (missing.length > 0) throw fail('attestation.policy_denied', `the quote does not cover the PCRs required_pcr_mask names: ${missing.join(', ')}`, { rule: 'required_pcr_mask', missing });
      });
      return answer({ report: token });
    },

    async attest(type, body) {
      if (typeof body !== 'object' || body === null) throw fail('request.invalid', 'the request body must be a JSON object');
      const at = deps.now();
      const runtime = parseDataInput(body.runtimeData, 'runtimeData');
      const initTime = parseDataInput(body.initTimeData, 'initTimeData');
      const evidenceField = type === 'SgxEnclave' || type === 'TdxVm' ? 'quote' : 'report';
      const evidence = (body as Record<string, unknown>)[evidenceField];
      if (typeof evidence !== 'string' || evidence === '') throw fail('request.invalid', `the request needs "${evidenceField}" (base64url)`, { field: evidenceField });
      let verified: { claims: EvidenceClaims; simulated: boolean; boundRuntimeData?: Uint8Array | undefined };
      if (type === 'SevSnpVm') verified = await attestSnp(evidence, runtime, initTime, at);
      else {
        let bytes = fromB64(evidence, evidenceField);
        // Open Enclave wraps the quote in a 16-byte header {version=1, type=2 (remote), size u64}.
        if (type === 'OpenEnclave' && bytes.byteLength > 16 && bytes[0] === 1 && bytes[4] === 2) bytes = bytes.subarray(16);
        const vtpm = type === 'TdxVm' ? parseAzureVtpmEvidence(bytes) : undefined;
        if (vtpm) {
          if (vtpm.form !== 'trustee-az-tdx-vtpm') throw fail('request.invalid', 'SNP vTPM evidence belongs to /attest/SevSnpVm');
          verified = await azure.attestTrustee(vtpm, runtime?.bytes, at);
          if (initTime) checkInitTimeBinding(String(verified.claims.tdx_mrconfigid), initTime, 'TDX MRCONFIGID');
        } else verified = await attestQuote(type === 'TdxVm' ? 'tdx' : 'sgx', bytes, runtime, initTime, at);
      }

      // Composite attestation: the GPUs answer a nonce derived from the runtime data the CPU evidence binds.
      if (body.gpuEvidence !== undefined && body.gpuEvidence !== null) {
        if (type !== 'TdxVm' && type !== 'SevSnpVm') throw fail('request.invalid', 'gpuEvidence is accepted with TdxVm and SevSnpVm evidence only', { field: 'gpuEvidence' });
        // The runtime data the CPU evidence binds: the request's, or an Azure CVM HCL report's own variable data.
        const bound = runtime?.bytes ?? verified.boundRuntimeData;
        if (!bound) throw fail('request.invalid', 'gpuEvidence needs runtimeData: the GPU nonce is derived from the runtime data the CPU evidence binds', { field: 'runtimeData' });
        const gpu = await attestGpus(body.gpuEvidence, bound, { at, cache: gpuCache, references: deps.gpuReferences, simulated: deps.simulated?.gpus });
        if (gpu.simulated !== verified.simulated) throw fail('evidence.untrusted_root', 'simulated and real evidence cannot be combined in one attestation');
        verified = { claims: claimsOf([verified.claims, gpu.claims], { ...verified.claims, ...gpu.claims }), simulated: verified.simulated };
      }

      return finish(type, verified, body, at);
    },

    async attestGuest(body) {
      if (typeof body !== 'object' || body === null) throw fail('request.invalid', 'the request body must be a JSON object');
      const at = deps.now();
      const info = parseGuestAttestationInfo((body as Record<string, unknown>).AttestationInfo ?? (body as Record<string, unknown>).attestationInfo);
      const { claims, simulated, encryptionKey } = await azure.attestGuest(info, at);
      const done = await finish('AzureGuest', { claims, simulated }, {}, at);
      // MAA seals the token to the vTPM's ephemeral key; without one (a client that sent none) it comes back as is.
      return { ...done, sealed: encryptionKey ? sealTokenToTpmKey(done.token, encryptionKey) : undefined };
    },

  /** Policy evaluation and token issuance, the same for every evidence type. */
    async policy(type) {
      return (await currentPolicy(type)).stored;
    },

    async setPolicy(type, jws, isolated) {
      const decoded = decodePolicyJws(jws);
      const authorize = signerCheck(decoded.signed, decoded.signingCertificateDer, isolated);
      // An unknown signer is refused before the policy is parsed (as ever); the check that counts is the one
      // inside the write's transaction, against the certificates registered when the policy is written.
      if (authorize) authorize(await deps.policies.listCertificates());
      parsePolicy(decoded.policyText); // syntax errors reject the upload, with line and column
      const stored: StoredPolicy = { text: decoded.policyText, jws: jws.trim(), signerCertDer: decoded.signingCertificateDer };
      await deps.policies.setPolicy(type, stored, authorize);
      policyChanged(type);
      return stored;
    },

    async resetPolicy(type, jws, isolated) {
      // The signature is checked before the signer is looked up: naming a registered certificate in
      // x5c proves nothing, only a signature that verifies with it does.
      const reset = verifyManagementJws(jws);
      // A signed reset signs no payload (the Azure SDKs send `header..signature`). One that carries a payload is
      // another operation's JWS (a policy as GET /policies serves it, a certificate change) replayed: its
      // signature vouches for that operation, not for a reset.
      if (reset.signed && reset.payloadPart !== '') {
        throw fail('attestation.policy_invalid', 'a signed reset JWS must have an empty payload; this one carries a payload (another policy operation\'s JWS cannot reset a policy)', { field: 'payload' });
      }
      await deps.policies.resetPolicy(type, signerCheck(reset.signed, reset.signingCertificateDer, isolated));
      policyChanged(type);
    },
  };

  /** Simulated and real trust never share a key: simulated evidence is signed by the simulate-only key or not at all. */
  function signerFor(simulated: boolean): Promise<TokenSigner> {
    if (!simulated) return deps.signer();
    if (!deps.simulated || !deps.simulatedSigner) throw fail('evidence.untrusted_root', 'simulated evidence is trusted only by a server started with --simulate');
    return deps.simulatedSigner();
  }

  /**
   * Isolated mode: an unsigned policy operation is refused here; a signed one gets the check of its signer,
   * which the store runs inside the write's transaction (a certificate removed before the write is unknown).
   * Outside isolated mode: no check.
   */
  function signerCheck(signed: boolean, der: Uint8Array | undefined, isolated: boolean): PolicyAuthorization | undefined {
    if (!isolated) return undefined;
    if (!signed || !der) throw fail('attestation.policy_invalid', 'isolated mode: the policy must be signed by a policy-management certificate (unsigned policies are refused)');
    const signer = Buffer.from(der);
    return (registered) => {
      if (!registered.some((c) => signer.equals(c))) {
        throw fail('attestation.policy_invalid', 'isolated mode: the policy signer is not a registered policy-management certificate');
      }
    };
  }
}

