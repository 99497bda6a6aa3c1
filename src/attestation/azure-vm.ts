/**
 * Azure confidential VMs: hardware evidence (SNP report or TD quote) that binds the HCL runtime data,
 * then the vTPM evidence that runtime data's HCLAkPub vouches for (evidence/azure-vtpm), then the
 * claims MAA issues for it: the `SevSnpVm`/`TdxVm` shape (TEE claims at top level) for trustee's vTPM
 * evidence, and the `AzureGuest` shape (`x-ms-azurevm-*`, TEE claims under `x-ms-isolation-tee`).
 * Whether Conclave vouches (`x-ms-compliance-status`) is decided by the attestation policy, from the
 * facts these claims state (attestation/policy/defaults.ts).
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { b64url, toHex } from '../core/bytes.js';
import { fail, isConclaveError } from '../core/errors.js';
import { pemToDer } from '../core/x509.js';
import type { AzureVtpmEvidence } from '../evidence/azure-vtpm/evidence.js';
import type { GuestAttestationInfo } from '../evidence/azure-vtpm/guest.js';
import { type HclRuntimeClaims, parseHclReport, parseHclRuntimeClaims } from '../evidence/azure-vtpm/hcl.js';
import { type VtpmVerificationResult, encryptToTpmKey, pcrMap, verifyVtpmEvidence } from '../evidence/azure-vtpm/vtpm.js';
import type { QuoteCollateral, TdxQuoteVerificationResult } from '../evidence/dcap/index.js';
import { type SnpCertificates, type SnpTrustAnchors, SnpVerifierCache, checkReportDataBinding, verifyAzureHclReport } from '../evidence/snp/index.js';
import { decodeTcb, parseSnpReport, productFromCpuid, tcbLayoutOf } from '../evidence/snp/report.js';
import type { AmdProduct } from '../evidence/snp/roots.js';
import { type SnpVerificationResult, verifySnpReport } from '../evidence/snp/verify.js';
import { type Claims, type EvidenceClaims, claimsOf, snpClaims, tdxClaims } from './claims.js';
import type { SnpCertificateSource } from './ports.js';
import type { AmdCrlAnswer, SnpCrls } from './snp-crl.js';
import type { Verified } from '../core/verified.js';

export interface AzureVmDeps {
  readonly snpCertificates: SnpCertificateSource;
  /** The AMD CRL for each report (from the same source as the VCEK), and whether one is required. */
  readonly crls: SnpCrls;
  /** DCAP verification of a TD quote with the service's collateral (and its platform bookkeeping). */
  readonly verifyTdQuote: (quote: Uint8Array, at: Date) => Promise<{ result: Verified<TdxQuoteVerificationResult>; collateral: QuoteCollateral }>;
  /** The simulated TEE's AMD roots, present only under --simulate: tried after the real roots refuse a chain. */
  readonly simulatedAmdAnchors?: SnpTrustAnchors | undefined;
  /** The simulated TEE's own AMD CRL (signed by its ARK), which applies under its roots instead of AMD's. */
  readonly simulatedAmdCrl?: Uint8Array | undefined;
}

interface Hardware {
  readonly tee: 'sevsnpvm' | 'tdxvm';
  /** The TEE claims with MAA's names (`x-ms-attestation-type`, `x-ms-sevsnpvm-*` or `tdx_*`). */
  readonly teeClaims: EvidenceClaims;
  readonly runtime: HclRuntimeClaims;
}

/** The TEE claims of an SNP result, without the runtime copies snpClaims adds for the SevSnpVm shape. */
function snpTeeClaims(r: Verified<SnpVerificationResult>): EvidenceClaims {
  const all = snpClaims(r, 'azure-hcl');
  return claimsOf(r, Object.fromEntries(Object.entries(all).filter(([k]) => k === 'x-ms-attestation-type' || k.startsWith('x-ms-sevsnpvm-') || k.startsWith('x-conclave-sevsnpvm-'))));
}

function tdxTeeClaims(result: Verified<TdxQuoteVerificationResult>, quote: Uint8Array, collateral: QuoteCollateral): EvidenceClaims {
  return tdxClaims(result, quote, collateral);
}

/** TD quote REPORTDATA must be SHA-256(HCL variable data) ‖ 32 zero bytes (evidence-and-collateral §4.3). */
function checkTdBinding(result: TdxQuoteVerificationResult, runtimeData: Uint8Array): void {
  try {
    checkReportDataBinding(Buffer.from(result.td.reportdata, 'hex'), runtimeData, 'sha256', true);
  } catch (e) {
    if (isConclaveError(e, 'snp.runtime_data_mismatch')) throw fail('attestation.runtime_data_mismatch', 'the TD quote REPORTDATA does not bind the HCL runtime data', e.detail, e);
    throw e;
  }
}

function runtimeOf(bytes: Uint8Array): HclRuntimeClaims {
  return parseHclRuntimeClaims(bytes);
}

/** Facts of the vTPM evidence as claims; `x-conclave-*` where MAA has no name. */
export function vtpmClaims(v: VtpmVerificationResult, runtime: HclRuntimeClaims): Claims {
  const claims: Claims = {
    'x-conclave-vtpm-verified': true,
    'x-conclave-vtpm-pcrs': pcrMap(v.quote),
    'x-conclave-vtpm-nonce': toHex(v.quote.extraData),
    'x-conclave-secure-boot-config': runtime.vmConfiguration?.['secure-boot'] === true,
  };
  const boot = v.boot;
  if (boot) {
    if (boot.secureBoot !== undefined) claims.secureboot = boot.secureBoot;
    claims['x-conclave-boot-configuration-complete'] = boot.complete;
    if (boot.complete) {
      claims['x-ms-azurevm-bootdebug-enabled'] = boot.bootDebugging;
      claims['x-ms-azurevm-kerneldebug-enabled'] = boot.kernelDebugging;
      claims['x-ms-azurevm-hypervisordebug-enabled'] = boot.hypervisorDebugging;
      claims['x-ms-azurevm-debuggersdisabled'] = !(boot.bootDebugging || boot.kernelDebugging || boot.hypervisorDebugging);
      claims['x-ms-azurevm-testsigning-enabled'] = boot.testSigning;
      claims['x-ms-azurevm-flightsigning-enabled'] = boot.flightSigning;
      claims['x-ms-azurevm-signingdisabled'] = !boot.codeIntegrity;
      claims['x-ms-azurevm-elam-enabled'] = boot.elam;
      claims['x-ms-azurevm-hvci-policy'] = boot.hvciPolicy;
    }
  }
  return claims;
}

export function createAzureVmAttester(deps: AzureVmDeps) {
  const snpCache = new SnpVerifierCache();

  /** The report's certificates (from the evidence, else the collateral source) and the AMD CRL for it. */
  async function certificatesFor(report: Uint8Array, pem: string | undefined, der: Uint8Array | undefined): Promise<{ certs: SnpCertificates; amd: AmdCrlAnswer }> {
    const parsed = parseSnpReport(report);
    let certs: SnpCertificates | undefined;
    if (der) certs = { vcek: der };
    else if (pem) {
      const [vcek, ...chain] = pemToDer(pem);
      if (vcek) certs = { vcek, chain };
    }
    if (!certs) {
      // No certificate in the evidence: the VCEK comes from the collateral service (KDS/THIM), by chip and TCB.
      const product = parsed.cpuid ? productFromCpuid(parsed.cpuid.family, parsed.cpuid.model) : undefined;
      if (!product) throw fail('snp.certificate_missing', 'the SNP report names no product (report version 2 has no CPUID); send the VCEK with the evidence');
      certs = await deps.snpCertificates.getVcek({ product, chipId: parsed.chipId, tcb: decodeTcb(parsed.reportedTcb, tcbLayoutOf(product)) });
    }
    return { certs, amd: await deps.crls.crlFor(parsed, certs) };
  }

  /**
   * Real AMD roots (with the AMD CRL) first; the simulated roots (with the simulated TEE's own CRL) only when
   * the operator opted in (the token then says so). Under `--snp-crl required` a result without a CRL is refused.
   */
  function withAmdRoots<T extends { readonly crlChecked: boolean; readonly product: AmdProduct; readonly signingKey: 'vcek' | 'vlek' }>(
    amd: AmdCrlAnswer,
    verify: (anchors: SnpTrustAnchors | undefined, crl: Uint8Array | undefined) => T,
  ): { value: T; simulated: boolean } {
    let checked: { value: T; simulated: boolean; crl: AmdCrlAnswer };
    try {
      checked = { value: verify(undefined, amd.crl), simulated: false, crl: amd };
    } catch (e) {
      if (!isConclaveError(e, 'snp.chain_invalid') || !deps.simulatedAmdAnchors) throw e;
      checked = { value: verify(deps.simulatedAmdAnchors, deps.simulatedAmdCrl), simulated: true, crl: { crl: deps.simulatedAmdCrl } };
    }
    deps.crls.require(checked.value, checked.crl);
    return { value: checked.value, simulated: checked.simulated };
  }

  /** Trustee's az-snp-vtpm / az-tdx-vtpm evidence: hardware, binding, then the vTPM quote. */
  async function hardwareOfTrustee(ev: AzureVtpmEvidence, at: Date): Promise<Hardware & { simulated: boolean; snp?: Verified<SnpVerificationResult>; tdx?: { result: Verified<TdxQuoteVerificationResult>; collateral: QuoteCollateral; quote: Uint8Array } }> {
    const hcl = parseHclReport(ev.hclReport);
    if (ev.form === 'trustee-az-snp-vtpm') {
      if (hcl.reportType !== 'snp') throw fail('evidence.malformed', 'az-snp-vtpm evidence holds an HCL report of a TDX VM');
      const { certs, amd } = await certificatesFor(hcl.hwReport, ev.vcek?.pem, ev.vcek?.der);
      const { value: r, simulated } = withAmdRoots(amd, (trustAnchors, crl) => verifyAzureHclReport(ev.hclReport, { ...certs, crl }, { at, cache: snpCache, trustAnchors }));
      return { tee: 'sevsnpvm', teeClaims: snpTeeClaims(r), runtime: runtimeOf(hcl.runtimeData), snp: r, simulated };
    }
    if (hcl.reportType !== 'tdx') throw fail('evidence.malformed', 'az-tdx-vtpm evidence holds an HCL report of an SNP VM');
    if (!ev.tdQuote) throw fail('tpm.malformed', 'az-tdx-vtpm evidence without a TD quote');
    const { result, collateral } = await deps.verifyTdQuote(ev.tdQuote, at);
    checkTdBinding(result, hcl.runtimeData);
    return { tee: 'tdxvm', teeClaims: tdxTeeClaims(result, ev.tdQuote, collateral), runtime: runtimeOf(hcl.runtimeData), tdx: { result, collateral, quote: ev.tdQuote }, simulated: false };
  }

  return {
    /**
     * `/attest/SevSnpVm` or `/attest/TdxVm` with trustee's vTPM evidence. `expectedNonce`, when given
     * (the request's runtimeData), must be the quote's qualifying data; a version 2 document's quote
     * nonce must also be what the HCL user-data carries.
     */
    async attestTrustee(ev: AzureVtpmEvidence, expectedNonce: Uint8Array | undefined, at: Date): Promise<{ claims: EvidenceClaims; simulated: boolean }> {
      const hw = await hardwareOfTrustee(ev, at);
      const v = verifyVtpmEvidence({ hclAkPub: hw.runtime.hclAkPub, quote: ev.tpmQuote, expectedNonce });
      if (ev.version === 2) {
        const nonce = toHex(v.quote.extraData);
        if (nonce === '' || !hw.runtime.userData?.toLowerCase().startsWith(nonce)) {
          throw fail('tpm.nonce_mismatch', 'version 2 evidence: the quote nonce is not the report data in the HCL user-data', { nonce, userData: hw.runtime.userData });
        }
      }
      const base = hw.snp ? snpClaims(hw.snp, 'azure-hcl') : tdxClaims(hw.tdx!.result, hw.tdx!.quote, hw.tdx!.collateral);
      return { claims: claimsOf([base, v], { ...base, 'x-ms-runtime': hw.runtime.json, ...vtpmClaims(v, hw.runtime), 'x-conclave-evidence-form': 'azure-vtpm' }), simulated: hw.simulated };
    },

    /** `/attest/AzureGuest`: the guest attestation library's AttestationInfo. */
    async attestGuest(info: GuestAttestationInfo, at: Date): Promise<{ claims: EvidenceClaims; simulated: boolean; encryptionKey?: { n: string; e: string } }> {
      const iso = info.isolation;
      if (iso.type === 'TrustedLaunch') {
        throw fail('tpm.unsupported', 'Trusted Launch VMs have no hardware report to bind the vTPM; only confidential VMs (SevSnp, Tdx) are attested');
      }
      let hw: Hardware;
      let simulated = false;
      if (iso.type === 'SevSnp') {
        const { certs, amd } = await certificatesFor(iso.snpReport, iso.vcekCertChainPem, undefined);
        const checked = withAmdRoots(amd, (trustAnchors, crl) => verifySnpReport(iso.snpReport, { ...certs, crl }, { at, cache: snpCache, trustAnchors }));
        const r = checked.value;
        simulated = checked.simulated;
        checkReportDataBinding(Buffer.from(r.reportData, 'hex'), iso.runtimeData, 'sha256', true);
        hw = { tee: 'sevsnpvm', teeClaims: snpTeeClaims(r), runtime: runtimeOf(iso.runtimeData) };
      } else {
        const { result, collateral } = await deps.verifyTdQuote(iso.tdQuote, at);
        checkTdBinding(result, iso.runtimeData);
        hw = { tee: 'tdxvm', teeClaims: tdxTeeClaims(result, iso.tdQuote, collateral), runtime: runtimeOf(iso.runtimeData) };
      }
      const v = verifyVtpmEvidence({
        hclAkPub: hw.runtime.hclAkPub,
        akPublicArea: info.tpm.aikPub,
        quote: { message: info.tpm.quote, signature: info.tpm.signature, pcrs: info.tpm.pcrs },
        eventLog: info.tcgLog,
        encryptionKey: info.tpm.encryptionKey,
      });
      const os = info.os;
      const vmid = hw.runtime.vmConfiguration?.vmUniqueId;
      const keys = v.encryptionKey ? [{ ...v.encryptionKey.jwk, key_ops: ['encrypt'], kid: 'TpmEphemeralEncryptionKey' }] : [];
      const claims: Claims = {
        'x-ms-attestation-type': 'azurevm',
        'x-ms-azurevm-attestation-protocol-ver': info.protocolVersion,
        'x-ms-azurevm-attested-pcrs': v.quote.pcrs.map((p) => p.index),
        // Reported by the guest itself (not measured), as MAA reports them.
        'x-ms-azurevm-is-windows': /^windows$/i.test(os.type),
        'x-ms-azurevm-ostype': os.type,
        'x-ms-azurevm-osdistro': os.distro,
        'x-ms-azurevm-osbuild': os.build,
        'x-ms-azurevm-osversion-major': os.versionMajor,
        'x-ms-azurevm-osversion-minor': os.versionMinor,
        ...(typeof vmid === 'string' ? { 'x-ms-azurevm-vmid': vmid } : {}),
        ...vtpmClaims(v, hw.runtime),
        'x-ms-isolation-tee': { ...hw.teeClaims, 'x-ms-runtime': hw.runtime.json },
        'x-ms-runtime': { 'client-payload': info.clientPayload, keys },
        'x-conclave-evidence-form': 'azure-guest',
      };
      const jwk = v.encryptionKey?.jwk;
      return { claims: claimsOf([hw.teeClaims, v], claims), simulated, ...(jwk && jwk.kty === 'RSA' ? { encryptionKey: { n: jwk.n, e: jwk.e } } : {}) };
    },
  };
}

/**
 * MAA's sealed AzureGuest response (cvm-guest-attestation `DecryptMaaToken`): base64url of JSON
 * `{EncryptedInnerKey: base64(RSAES-PKCS1-v1_5(TPM key, AES-256 key)), EncryptionParams: {BlockMode:
 * "ChainingModeGCM", BlockPadding: "PKCS7", Cipher: "AES", KeySizeInBits: 256, Iv: base64(12 bytes)},
 * AuthenticationData: base64(GCM tag), Jwt: base64(AES-256-GCM(token), AAD "Transport Key")}`. Only the
 * TPM that holds the PolicyPCR-bound key, in the attested boot state, can open it.
 */
export function sealTokenToTpmKey(token: string, key: { n: string; e: string }): string {
  const aesKey = randomBytes(32);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', aesKey, iv);
  cipher.setAAD(Buffer.from('Transport Key'));
  const jwt = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
  const sealed = {
    EncryptedInnerKey: Buffer.from(encryptToTpmKey(key, aesKey)).toString('base64'),
    EncryptionParams: { BlockMode: 'ChainingModeGCM', BlockPadding: 'PKCS7', Cipher: 'AES', KeySizeInBits: 256, Iv: iv.toString('base64') },
    AuthenticationData: cipher.getAuthTag().toString('base64'),
    Jwt: jwt.toString('base64'),
  };
  aesKey.fill(0);
  return b64url(JSON.stringify(sealed));
}
