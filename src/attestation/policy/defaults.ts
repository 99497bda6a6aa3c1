/** The attestation types that have a policy, as named in the `/policies/{type}` route. */
export type PolicyAttestationType = 'SgxEnclave' | 'OpenEnclave' | 'TdxVm' | 'SevSnpVm' | 'AzureGuest' | 'Tpm' | 'VBS';

/**
 * The SGX default policy as MAA documents it (policy-examples, "Default policy for an SGX enclave",
 * https://learn.microsoft.com/azure/attestation/policy-examples): permit everything, pin the Azure default
 * TCB baseline, and issue the deprecated short claim names next to the `x-ms-sgx-*` claims the service
 * always emits.
 */
const SGX_DEFAULT = `version= 1.1;
configurationrules{
	=> issueproperty(type="x-ms-sgx-tcbidentifier", value="azuredefault");
};
authorizationrules{
	=> permit();
};
issuancerules{
	c:[type=="x-ms-sgx-is-debuggable"] => issue(type="is-debuggable", value=c.value);
	c:[type=="x-ms-sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value);
	c:[type=="x-ms-sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);
	c:[type=="x-ms-sgx-product-id"] => issue(type="product-id", value=c.value);
	c:[type=="x-ms-sgx-svn"] => issue(type="svn", value=c.value);
	c:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);
};
`;

/**
 * Permit-all with no policy-issued claims. MAA publishes no default text for these types; their tokens'
 * standard claims (`x-ms-sevsnpvm-*`, `tdx_*`, TPM/VBS claims) are emitted by the service itself, not by
 * issuance rules (claim-sets; attestation-token-examples), so an empty issuance section reproduces them.
 * Inferred — see docs/attestation-policy.md §Default policies.
 */
const PERMIT_ALL = `version=1.0;
authorizationrules
{
	=> permit();
};
issuancerules
{
};
`;

/**
 * Azure confidential VMs: when Conclave vouches `x-ms-compliance-status: azure-compliant-cvm`. These
 * rules are the whole decision (the service issues no compliance claim itself), so an operator sees and
 * can change it with `PUT /policies/{type}`: add pins (`x-ms-sevsnpvm-idkeydigest`, launch measurement,
 * `tdx_mrtd`) to require Azure's own paravisor, or relax a condition. See docs/attestation-policy.md.
 *
 * - the hardware report verified (AMD/Intel chain) and binds the HCL runtime data (else no token at all);
 * - the vTPM quote verified with the HCLAkPub that runtime data names (`x-conclave-vtpm-verified`);
 * - the HCL ran at VMPL 0 (SNP) and the TEE is not debuggable; TDX: the quote's TCB status is not Revoked;
 * - secure boot is on in the signed vm-configuration, and not off in the replayed boot log;
 * - no boot, kernel or hypervisor debugger in the replayed boot log, no boot configuration event the log
 *   carries outside the quoted PCRs, and no quoted boot configuration PCR (11–14) the log does not reproduce.
 */
const AZURE_CVM_CONDITIONS = (tee: string, prefix: string) => {
  const debug =
    tee === 'sevsnpvm'
      ? `[type=="${prefix}x-ms-sevsnpvm-vmpl", value==0] &&\n\t[type=="${prefix}x-ms-sevsnpvm-is-debuggable", value==false]`
      : // A Revoked TCB (platform, TDX module or QE) is never compliant: Intel's QvE calls it terminal (the service refuses it too).
        `[type=="${prefix}tdx_td_attributes_debug", value==false] &&\n\t![type=="${prefix}attester_tcb_status", value=="Revoked"]`;
  return `[type=="${prefix}x-ms-attestation-type", value=="${tee}"] &&
\t[type=="x-conclave-vtpm-verified", value==true] &&
\t${debug} &&
\t[type=="x-conclave-secure-boot-config", value==true] &&
\t![type=="secureboot", value==false] &&
\t![type=="x-ms-azurevm-debuggersdisabled", value==false] &&
\t![type=="x-conclave-boot-configuration-complete", value==false]`;
};

const azureVmPolicy = (prefix: string, target: string) => `version=1.2;
authorizationrules
{
\t=> permit();
};
issuancerules
{
\t// Azure confidential VM (SEV-SNP): hardware report, vTPM binding, secure boot, no debugging.
\t${AZURE_CVM_CONDITIONS('sevsnpvm', prefix)}
\t\t=> issue(type="${target}", value="azure-compliant-cvm");
\t// Azure confidential VM (TDX): the same, with the TD not debuggable and its TCB not Revoked.
\t${AZURE_CVM_CONDITIONS('tdxvm', prefix)}
\t\t=> issue(type="${target}", value="azure-compliant-cvm");
};
`;

/** `/attest/SevSnpVm` and `/attest/TdxVm` with vTPM evidence: the claim at top level, as MAA's CVM tokens carry it. */
const AZURE_CVM_TOP_LEVEL = azureVmPolicy('', 'x-ms-compliance-status');

/**
 * Microsoft's utility-VM signers and the minimum SVN of each (the roots of trust Microsoft's CCF ships
 * for Azure confidential containers): the did:x509 issuer pins Microsoft Supply Chain RSA Root CA 2022
 * by its SHA-256 fingerprint and the signing certificate's EKU.
 */
export const AZURE_UVM_SIGNERS: readonly { readonly issuer: string; readonly feed: string; readonly minimumSvn: number }[] = [
  { issuer: 'did:x509:0:sha256:I__iuL25oXEVFdTP_aBLx_eT1RPHbCQ_ECBQfYZpt9s::eku:1.3.6.1.4.1.311.76.59.1.2', feed: 'ContainerPlat-AMD-UVM', minimumSvn: 100 },
  { issuer: 'did:x509:0:sha256:I__iuL25oXEVFdTP_aBLx_eT1RPHbCQ_ECBQfYZpt9s::eku:1.3.6.1.4.1.311.76.59.1.5', feed: 'ConfAKS-AMD-UVM', minimumSvn: 1 },
];

/**
 * Azure confidential containers: when Conclave vouches `x-ms-compliance-status: azure-compliant-uvm`.
 * The service has verified the SNP report, and the UVM reference information (COSE_Sign1) to the
 * did:x509 issuer it names, and that it endorses the report's launch measurement; these rules decide
 * which issuer and feed are trusted and the minimum SVN, and require a non-debuggable VM at VMPL 0.
 */
const azureUvmRule = (s: (typeof AZURE_UVM_SIGNERS)[number]) => `	[type=="x-ms-attestation-type", value=="sevsnpvm"] &&
	[type=="x-conclave-uvm-issuer", value=="${s.issuer}"] &&
	[type=="x-conclave-uvm-feed", value=="${s.feed}"] &&
	[type=="x-conclave-uvm-svn", value>=${s.minimumSvn}] &&
	[type=="x-ms-sevsnpvm-vmpl", value==0] &&
	[type=="x-ms-sevsnpvm-is-debuggable", value==false]
		=> issue(type="x-ms-compliance-status", value="azure-compliant-uvm");`;

/** `/attest/SevSnpVm`: Azure CVMs (vTPM evidence) and Azure confidential containers (UVM endorsement). */
const SEVSNPVM = AZURE_CVM_TOP_LEVEL.replace(
  /\n};\n$/,
  `\n\t// Azure confidential containers: the UVM endorsed by a trusted signer at or above its minimum SVN.\n${AZURE_UVM_SIGNERS.map(azureUvmRule).join('\n')}\n};\n`,
);
/** `/attest/AzureGuest`: the TEE claims and the compliance status live under `x-ms-isolation-tee`. */
const AZURE_GUEST = azureVmPolicy('x-ms-isolation-tee.', 'x-ms-isolation-tee.x-ms-compliance-status');

/** Policy text a fresh instance serves for each type until an administrator sets one. */
export const DEFAULT_POLICIES: Readonly<Record<PolicyAttestationType, string>> = {
  SgxEnclave: SGX_DEFAULT,
  // OpenEnclave evidence is SGX evidence in another envelope; MAA evaluates it with the same claim set.
  OpenEnclave: SGX_DEFAULT,
  TdxVm: AZURE_CVM_TOP_LEVEL,
  SevSnpVm: SEVSNPVM,
  AzureGuest: AZURE_GUEST,
  Tpm: PERMIT_ALL,
  VBS: PERMIT_ALL,
};
