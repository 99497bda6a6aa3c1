/** The attestation types that have a policy, as named in the `/policies/{type}` route. */
export type PolicyAttestationType = 'SgxEnclave' | 'OpenEnclave' | 'TdxVm' | 'SevSnpVm' | 'Tpm' | 'VBS';

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

/** Policy text a fresh instance serves for each type until an administrator sets one. */
export const DEFAULT_POLICIES: Readonly<Record<PolicyAttestationType, string>> = {
  SgxEnclave: SGX_DEFAULT,
  // OpenEnclave evidence is SGX evidence in another envelope; MAA evaluates it with the same claim set.
  OpenEnclave: SGX_DEFAULT,
  TdxVm: PERMIT_ALL,
  SevSnpVm: PERMIT_ALL,
  Tpm: PERMIT_ALL,
  VBS: PERMIT_ALL,
};
