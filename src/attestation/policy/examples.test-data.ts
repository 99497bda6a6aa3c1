/**
 * Every attestation policy published in Microsoft's Azure Attestation documentation, as test vectors.
 * Each constant cites the page it comes from. Whitespace is as published except where noted; quirks of the
 * published text (typographic quotes, `=` for `==`, missing `;`) are kept on purpose, so the parser is
 * tested against what users copy from the docs. Short public examples, quoted as test data only.
 */

export interface PolicyExample {
  readonly name: string;
  readonly source: string;
  readonly text: string;
}

// https://learn.microsoft.com/azure/attestation/author-sign-policy
// Uses `type=` (single =) in conditions and omits the `;` after rules; parsed leniently.
export const AUTHOR_SIGN_SAMPLE = `version=1.0;
authorizationrules
{
    c:[type="secureBootEnabled", issuer=="AttestationService"]=> permit()
};

issuancerules
{
    c:[type="secureBootEnabled", issuer=="AttestationService"]=> issue(claim=c)
    c:[type="notSafeMode", issuer=="AttestationService"]=> issue(claim=c)
};
`;

// https://learn.microsoft.com/azure/attestation/author-sign-policy
export const AUTHOR_SIGN_DRAFT_DENY = `version=1.0;
authorizationrules
{
=>deny();
};

issuancerules
{
};
`;

// https://learn.microsoft.com/azure/attestation/author-sign-policy
export const AUTHOR_SIGN_STEP_PERMIT = `version=1.0;
authorizationrules
{
[type=="secureBootEnabled", value==true, issuer=="AttestationService"]=>permit();
};

issuancerules
{
};
`;

// https://learn.microsoft.com/azure/attestation/author-sign-policy
export const AUTHOR_SIGN_STEP_ISSUE = `version=1.0;
authorizationrules
{
[type=="secureBootEnabled", value==true, issuer=="AttestationService"]=>permit();
};

issuancerules
{
=> issue(type="SecurityLevelValue", value=100);
};
`;

// https://learn.microsoft.com/azure/attestation/policy-examples
// The page has placeholders <product-id>, "<mrsigner>", "<custom-name>"; filled with 1, an MRSIGNER from skr-policy-examples and "custom-mrsigner".
export const SGX_CUSTOM = `version= 1.0;
authorizationrules
{
       [ type=="x-ms-sgx-is-debuggable", value==false ]
        && [ type=="x-ms-sgx-product-id", value==1 ]
        && [ type=="x-ms-sgx-svn", value>= 0 ]
        && [ type=="x-ms-sgx-mrsigner", value=="9fa48b1629bd246a1de3d38fb7df97f6554cd65d6b3b72e85b86848ae6b578ba"]
    => permit();
};
issuancerules {
c:[type=="x-ms-sgx-mrsigner"] => issue(type="custom-mrsigner", value=c.value);
};
`;

// https://learn.microsoft.com/azure/attestation/policy-examples
export const SGX_DEFAULT = `version= 1.1;
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

// https://learn.microsoft.com/azure/attestation/policy-examples
export const SGX_MULTIPLE_ENCLAVES = `version= 1.0;
authorizationrules 
{
	[ type=="x-ms-sgx-is-debuggable", value==true ]&&
	[ type=="x-ms-sgx-mrsigner", value=="mrsigner1"] => permit(); 
	[ type=="x-ms-sgx-is-debuggable", value==true ]&& 
	[ type=="x-ms-sgx-mrsigner", value=="mrsigner2"] => permit(); 
};
`;

// https://github.com/MicrosoftDocs/azure-docs/blob/08f31af283e198b2bfc7554f1f87ca1d95070311/articles/attestation/policy-examples.md
// The 2020 revision of policy-examples (also policy-samples.md); typographic quotes as published.
export const SGX_DEFAULT_2020 = `Version= 1.0;
authorizationrules
{
	c:[type==”$is-debuggable”] => permit();
};
issuancerules
{
	c:[type==”$is-debuggable”] => issue(type=”is-debuggable”, value=c.value);
	c:[type==”$sgx-mrsigner”] => issue(type=”sgx-mrsigner”, value=c.value);
	c:[type==”$sgx-mrenclave”] => issue(type=”sgx-mrenclave”, value=c.value);
	c:[type==”$product-id”] => issue(type=”product-id”, value=c.value);
	c:[type==”$svn”] => issue(type=”svn”, value=c.value);
	c:[type==”$tee”] => issue(type=”tee”, value=c.value);
};
`;

// https://github.com/MicrosoftDocs/azure-docs/blob/2ac22f203b94322e39ad1c47ff86ea7b99878c7b/articles/attestation/policy-samples.md
export const VBS_NO_SECURITY = `version=1.0;
authorizationrules
{
=> permit();
};
issuancerules
{
c:[type == "aas-ehd", issuer == "CustomClaim"] => issue(claim = c);
=> issueproperty(type = "omit_x5c", value = true);
};
`;

// https://github.com/MicrosoftDocs/azure-docs/blob/2ac22f203b94322e39ad1c47ff86ea7b99878c7b/articles/attestation/policy-samples.md
export const VBS_OPTIMUM_SECURITY = `version=1.0;
authorizationrules
{
[type == "aikValidated", value == true, issuer=="AttestationService"] &&
[type == "tpmVersion", value >= 2, issuer=="AttestationService"] &&
[type == "secureBootEnabled", value == true, issuer=="AttestationService"] &&
[type == "iommuEnabled", value == true, issuer=="AttestationService"] &&
[type == "bootDebuggingDisabled", value == true, issuer=="AttestationService"] &&
[type == "notSafeMode", value == true, issuer=="AttestationService"] &&
[type == "notWinPE", value == true, issuer=="AttestationService"] &&
[type == "vbsEnabled", value == true, issuer=="AttestationService"] &&
[type == "vbsReportPresent", value == true, issuer=="AttestationService"] &&
[type == "enclaveAuthorId", value == "BDfK4lN9i5sHdrYbEebO09Iy6TCPYOIa2rL9kePalZg", issuer == "AttestationService"] &&
[type == "enclaveImageId", value == "GRcSAAEFIBMABRQDEgEiBQ", issuer == "AttestationService"] &&
[type == "enclaveOwnerId", value == "ECAwQEExIREAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", issuer == "AttestationService"] &&
[type == "enclaveFamilyId", value == "_v4AAAAAAAAAAAAAAAAAAA", issuer == "AttestationService"] &&
[type == "enclaveSvn", value >= 0, issuer == "AttestationService"] &&
[type == "enclavePlatformSvn", value >= 1, issuer == "AttestationService"] &&
[type == "enclaveFlags", value == 0, issuer == "AttestationService"]
=> permit();
};
issuancerules
{
c:[type == "aas-ehd", issuer == "CustomClaim"] => issue(claim = c);
=> issueproperty(type = "omit_x5c", value = true);
};
`;

// https://learn.microsoft.com/azure/attestation/claim-sets
export const SGX_KEY_ROTATION_BEFORE = `version= 1.0;
authorizationrules 
{
[ type=="x-ms-sgx-is-debuggable", value==false]&&
[ type=="x-ms-sgx-mrsigner", value=="mrsigner1"] => permit(); 
};
`;

// https://learn.microsoft.com/azure/attestation/claim-sets
export const SGX_KEY_ROTATION_DURING = `version= 1.0;
authorizationrules 
{
[ type=="x-ms-sgx-is-debuggable", value==false]&&
[ type=="x-ms-sgx-mrsigner", value=="mrsigner1"] => permit(); 
[ type=="x-ms-sgx-is-debuggable", value==false ]&& 
[ type=="x-ms-sgx-mrsigner", value=="mrsigner2"] => permit(); 
};
`;

// https://learn.microsoft.com/azure/attestation/claim-sets
export const SGX_KEY_ROTATION_AFTER = `version= 1.0;
authorizationrules 
{ 
[ type=="x-ms-sgx-is-debuggable", value==false]&& 
[ type=="x-ms-sgx-mrsigner", value=="mrsigner2"] => permit(); 
};
`;

// https://learn.microsoft.com/azure/attestation/policy-version-1-0
export const TPM_V1_0 = `version=1.0;

authorizationrules { 
    => permit();
};


issuancerules
{
[type=="aikValidated", value==true]&& 
[type=="secureBootEnabled", value==true] &&
[type=="bootDebuggingDisabled", value==true] && 
[type=="notSafeMode", value==true] => issue(type="PlatformAttested", value=true);
};
`;

// https://learn.microsoft.com/azure/attestation/policy-version-1-1
export const TPM_V1_1 = `version=1.1;

configurationrules{
=> issueproperty(type = "required_pcr_mask", value = 15);
=> issueproperty(type = "require_valid_aik_cert", value = false);
};

authorizationrules { 
    => permit();
};


issuancerules
{
[type=="aikValidated", value==true]&& 
[type=="secureBootEnabled", value==true] &&
[type=="bootDebuggingDisabled", value==true] && 
[type=="notSafeMode", value==true] => issue(type="PlatformAttested", value=true);

[type=="aikValidated", value==false]&& 
[type=="secureBootEnabled", value==true] &&
[type=="bootDebuggingDisabled", value==true] && 
[type=="notSafeMode", value==true] => issue(type="PlatformAttested", value=false);
};
`;

// https://learn.microsoft.com/azure/attestation/policy-version-1-2
// Uses `issuer="…"` (single =) and a positional type argument `issue("PlatformAttested", …)`; parsed leniently.
export const TPM_V1_2 = `version=1.2;

authorizationrules { 
    => permit();
};


issuancerules
{

// Verify if secureboot is enabled
c:[type == "events", issuer=="AttestationService"] => add(type = "efiConfigVariables", value = JmesPath(c.value, "Events[?EventTypeString == 'EV_EFI_VARIABLE_DRIVER_CONFIG' && ProcessedData.VariableGuid == '8BE4DF61-93CA-11D2-AA0D-00E098032B8C']"));

c:[type=="efiConfigVariables", issuer="AttestationPolicy"]=> add(type = "secureBootEnabled", value = JsonToClaimValue(JmesPath(c.value, "[?ProcessedData.UnicodeName == 'SecureBoot'] | length(@) == \`1\` && @[0].ProcessedData.VariableData == 'AQ'")));
![type=="secureBootEnabled", issuer=="AttestationPolicy"] => add(type="secureBootEnabled", value=false);

//Verfify in Defender ELAM is loaded.
c:[type=="boolProperties", issuer=="AttestationPolicy"] => add(type="elamDriverLoaded", value=JsonToClaimValue(JmesPath(c.value, "[*].EVENT_LOADEDMODULE_AGGREGATION[] | [? EVENT_IMAGEVALIDATED == \`true\` && (equals_ignore_case(EVENT_FILEPATH, '\\\\windows\\\\system32\\\\drivers\\\\wdboot.sys') || equals_ignore_case(EVENT_FILEPATH, '\\\\windows\\\\system32\\\\drivers\\\\wd\\\\wdboot.sys'))] | @ != \`null\`")));
[type=="elamDriverLoaded", issuer=="AttestationPolicy"] => add(type="WindowsDefenderElamDriverLoaded", value=true);
![type=="elamDriverLoaded", issuer=="AttestationPolicy"] => add(type="WindowsDefenderElamDriverLoaded", value=false);

[type=="WindowsDefenderElamDriverLoaded", value==true] &&
[type=="secureBootEnabled", value==true] => issue("PlatformAttested", value=true);

};
`;

// https://learn.microsoft.com/azure/attestation/claim-rule-functions
export const MEASURED_BOOT_V1_2 = `version=1.2;

authorizationrules { 
  => permit();
};


issuancerules
{

c:[type == "events", issuer=="AttestationService"] => add(type = "efiConfigVariables", value = JmesPath(c.value, "Events[?EventTypeString == 'EV_EFI_VARIABLE_DRIVER_CONFIG' && ProcessedData.VariableGuid == '8BE4DF61-93CA-11D2-AA0D-00E098032B8C']"));

c:[type=="efiConfigVariables", issuer="AttestationPolicy"]=> issue(type = "secureBootEnabled", value = JsonToClaimValue(JmesPath(c.value, "[?ProcessedData.UnicodeName == 'SecureBoot'] | length(@) == \`1\` && @[0].ProcessedData.VariableData == 'AQ'")));
![type=="secureBootEnabled", issuer=="AttestationPolicy"] => issue(type="secureBootEnabled", value=false);

};
`;

// https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies
export const TPM_SAMPLE_V1_0 = `version=1.0;

authorizationrules { 
    => permit();
};

issuancerules
{
[type=="aikValidated", value==true]&& 
[type=="secureBootEnabled", value==true] &&
[type=="bootDebuggingDisabled", value==true] && 
[type=="vbsEnabled", value==true] && 
[type=="notWinPE", value==true] && 
[type=="notSafeMode", value==true] => issue(type="PlatformAttested", value=true);
};
`;

// https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies
export const TPM_SAMPLE_V1_2 = `version=1.2;

configurationrules{
};

authorizationrules { 
	=> permit();
};

issuancerules{

c:[type == "aikValidated", issuer=="AttestationService"] =>issue(type="aikValidated", value=c.value);

// SecureBoot enabled 
c:[type == "events", issuer=="AttestationService"] => add(type = "efiConfigVariables", value = JmesPath(c.value, "Events[?EventTypeString == 'EV_EFI_VARIABLE_DRIVER_CONFIG' && ProcessedData.VariableGuid == '8BE4DF61-93CA-11D2-AA0D-00E098032B8C']"));
c:[type == "efiConfigVariables", issuer=="AttestationPolicy"]=> issue(type = "SecureBootEnabled", value = JsonToClaimValue(JmesPath(c.value, "[?ProcessedData.UnicodeName == 'SecureBoot'] | length(@) == \`1\` && @[0].ProcessedData.VariableData == 'AQ'")));
![type=="SecureBootEnabled", issuer=="AttestationPolicy"] => issue(type="SecureBootEnabled", value=false);

// Retrieve bool properties Code integrity
c:[type=="events", issuer=="AttestationService"] => add(type="boolProperties", value=JmesPath(c.value, "Events[? EventTypeString == 'EV_EVENT_TAG' && (PcrIndex == \`12\` || PcrIndex == \`13\` || PcrIndex == \`19\` || PcrIndex == \`20\`)].ProcessedData.EVENT_TRUSTBOUNDARY"));
c:[type=="boolProperties", issuer=="AttestationPolicy"] => add(type="codeIntegrityEnabledSet", value=JsonToClaimValue(JmesPath(c.value, "[*].EVENT_CODEINTEGRITY")));
c:[type=="codeIntegrityEnabledSet", issuer=="AttestationPolicy"] => issue(type="CodeIntegrityEnabled", value=ContainsOnlyValue(c.value, true));
![type=="CodeIntegrityEnabled", issuer=="AttestationPolicy"] => issue(type="CodeIntegrityEnabled", value=false);

// Bitlocker Boot Status, The first non zero measurement or zero.
c:[type=="events", issuer=="AttestationService"] => add(type="srtmDrtmEventPcr", value=JmesPath(c.value, "Events[? EventTypeString == 'EV_EVENT_TAG' && (PcrIndex == \`12\` || PcrIndex == \`19\`)].ProcessedData.EVENT_TRUSTBOUNDARY"));
c:[type=="srtmDrtmEventPcr", issuer=="AttestationPolicy"] => add(type="BitlockerStatus", value=JsonToClaimValue(JmesPath(c.value, "[*].EVENT_BITLOCKER_UNLOCK | @[? Value != \`0\`].Value | @[0]")));
[type=="BitlockerStatus", issuer=="AttestationPolicy"] => issue(type="BitlockerStatus", value=true);
![type=="BitlockerStatus", issuer=="AttestationPolicy"] => issue(type="BitlockerStatus", value=false);

// Elam Driver (windows defender) Loaded
c:[type=="boolProperties", issuer=="AttestationPolicy"] => add(type="elamDriverLoaded", value=JsonToClaimValue(JmesPath(c.value, "[*].EVENT_LOADEDMODULE_AGGREGATION[] | [? EVENT_IMAGEVALIDATED == \`true\` && (equals_ignore_case(EVENT_FILEPATH, '\\\\windows\\\\system32\\\\drivers\\\\wdboot.sys') || equals_ignore_case(EVENT_FILEPATH, '\\\\windows\\\\system32\\\\drivers\\\\wd\\\\wdboot.sys'))] | @ != \`null\`")));
[type=="elamDriverLoaded", issuer=="AttestationPolicy"] => issue(type="ELAMDriverLoaded", value=true);
![type=="elamDriverLoaded", issuer=="AttestationPolicy"] => issue(type="ELAMDriverLoaded", value=false);

};
`;

// https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies
export const TPM_KNOWN_PCRS = `version=1.2;

authorizationrules
{    
    c:[type == "pcrs", issuer=="AttestationService"] =>  add(type="pcr0Validated", value=JsonToClaimValue(JmesPath(c.value, "PCRs[? Index == \`0\`].Digests.SHA256 | @[0] =='4c833b1c361fceffd8dc0f81eec76081b71e1a0eb2193caed0b6e1c7735ec33e' ")));
    c:[type == "pcrs", issuer=="AttestationService"] =>  add(type="pcr1Validated", value=JsonToClaimValue(JmesPath(c.value, "PCRs[? Index == \`1\`].Digests.SHA256 | @[0] =='8c25e3be6ad6f5bd33c9ae40d5d5461e88c1a7366df0c9ee5c7e5ff40d3d1d0e' ")));
    c:[type == "pcrs", issuer=="AttestationService"] =>  add(type="pcr2Validated", value=JsonToClaimValue(JmesPath(c.value, "PCRs[? Index == \`2\`].Digests.SHA256 | @[0] =='3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969' ")));
    c:[type == "pcrs", issuer=="AttestationService"] =>  add(type="pcr3Validated", value=JsonToClaimValue(JmesPath(c.value, "PCRs[? Index == \`3\`].Digests.SHA256 | @[0] =='3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969' ")));
    
    [type=="pcr0Validated", value==true] &&
    [type=="pcr1Validated", value==true] &&
    [type=="pcr2Validated", value==true] &&
    [type=="pcr3Validated", value==true] => permit();
};

issuancerules
{
};
`;

// https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies
export const TPM_SYSTEM_GUARD = `version = 1.2;

authorizationrules
{
    => permit();
};

issuancerules
{
    // Extract the DRTM state auth event
    // The rule attempts to find the valid DRTM state auth event by applying following conditions:
    // 1. There is only one DRTM state auth event in the events log
    // 2. The EVENT_DRTM_STATE_AUTH.SignatureValid field in the DRTM state auth event is set to true
    c:[type=="events", issuer=="AttestationService"] => add(type="validDrtmStateAuthEvent", value=JmesPath(c.value, "Events[? EventTypeString == 'EV_EVENT_TAG' && PcrIndex == \`20\` && ProcessedData.EVENT_TRUSTBOUNDARY.EVENT_DRTM_STATE_AUTH.SignatureValid != \`null\`] | length(@) == \`1\` && @[0] | @.{EventSeq:EventSeq, SignatureValid:ProcessedData.EVENT_TRUSTBOUNDARY.EVENT_DRTM_STATE_AUTH.SignatureValid}"));

    // Check if Signature is valid in extracted state auth events
    c:[type=="validDrtmStateAuthEvent", issuer=="AttestationPolicy"] => issue(type="drtmMleValid", value=JsonToClaimValue(JmesPath(c.value, "SignatureValid")));
    ![type=="drtmMleValid", issuer=="AttestationPolicy"] => issue(type="drtmMleValid", value=false);

    // Get the sequence number of the DRTM state auth event.
    // The sequence number is used to ensure that the SMM event appears before the last DRTM state auth event.
    [type=="drtmMleValid", value==true, issuer=="AttestationPolicy"] &&
    c:[type=="validDrtmStateAuthEvent", issuer=="AttestationPolicy"] => add(type="validDrtmStateAuthEventSeq", value=JmesPath(c.value, "EventSeq"));

    // Create query for SMM event
    // The query is constructed to find the SMM level from the SMM level event that appears exactly once before the valid DRTM state auth event in the event log
    [type=="drtmMleValid", value==true, issuer=="AttestationPolicy"] &&
    c:[type=="validDrtmStateAuthEventSeq", issuer=="AttestationPolicy"] => add(type="smmQuery", value=AppendString(AppendString("Events[? EventTypeString == 'EV_EVENT_TAG' && PcrIndex == \`20\` && EventSeq < \`", c.value), "\`].ProcessedData.EVENT_DRTM_SMM | length(@) == \`1\` && @[0] | @.Value"));

    // Extract SMM value
    [type=="drtmMleValid", value==true, issuer=="AttestationPolicy"] &&
    c1:[type=="smmQuery", issuer=="AttestationPolicy"] &&
    c2:[type=="events", issuer=="AttestationService"] => issue(type="smmLevel", value=JsonToClaimValue(JmesPath(c2.value, c1.value)));
};
`;

// https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies
export const VBS_ENCLAVE_IDENTITY = `version=1.2;

authorizationrules { 
    [type=="vsmReportPresent", value==true] &&
    [type=="enclaveAuthorId", value=="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] &&
    [type=="enclaveImageId", value=="AQEAAAAAAAAAAAAAAAAAAA"] &&
    [type=="enclaveSvn", value>=0] =>  permit();
};

issuancerules
{
};
`;

// https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies
export const TPM_ISSUE_ALL_INCOMING = `version = 1.2;

configurationrules
{
};

authorizationrules
{
    => permit();
};

issuancerules
{
   c:[type=="bootEvents", issuer=="AttestationService"] => issue(type="outputBootEvents", value=c.value);
   c:[type=="events", issuer=="AttestationService"] => issue(type="outputEvents", value=c.value);
};
`;

// https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies
export const TPM_WINDOWS_SECURITY = `version=1.2;

authorizationrules { 
	=> permit();
};

issuancerules{

// SecureBoot enabled
c:[type == "events", issuer=="AttestationService"] => add(type = "efiConfigVariables", value = JmesPath(c.value, "Events[?EventTypeString == 'EV_EFI_VARIABLE_DRIVER_CONFIG' && ProcessedData.VariableGuid == '8BE4DF61-93CA-11D2-AA0D-00E098032B8C']")); c:[type == "efiConfigVariables", issuer=="AttestationPolicy"]=> issue(type = "secureBootEnabled", value = JsonToClaimValue(JmesPath(c.value, "[?ProcessedData.UnicodeName == 'SecureBoot'] | length(@) == \`1\` && @[0].ProcessedData.VariableData == 'AQ'"))); ![type=="secureBootEnabled", issuer=="AttestationPolicy"] => issue(type="secureBootEnabled", value=false); 

// Boot debugging 
c:[type=="boolProperties", issuer=="AttestationPolicy"] => add(type="bootDebuggingEnabledSet", value=JsonToClaimValue(JmesPath(c.value, "[*].EVENT_BOOTDEBUGGING"))); c:[type=="bootDebuggingEnabledSet", issuer=="AttestationPolicy"] => issue(type="bootDebuggingDisabled", value=ContainsOnlyValue(c.value, false)); ![type=="bootDebuggingDisabled", issuer=="AttestationPolicy"] => issue(type="bootDebuggingDisabled", value=false); 

// Virtualization Based Security enabled 
c:[type=="events", issuer=="AttestationService"] => add(type="srtmDrtmEventPcr", value=JmesPath(c.value, "Events[? EventTypeString == 'EV_EVENT_TAG' && (PcrIndex == \`12\` || PcrIndex == \`19\`)].ProcessedData.EVENT_TRUSTBOUNDARY")); c:[type=="srtmDrtmEventPcr", issuer=="AttestationPolicy"] => add(type="vbsEnabledSet", value=JsonToClaimValue(JmesPath(c.value, "[*].EVENT_VBS_VSM_REQUIRED"))); c:[type=="srtmDrtmEventPcr", issuer=="AttestationPolicy"] => add(type="vbsEnabledSet", value=JsonToClaimValue(JmesPath(c.value, "[*].EVENT_VBS_MANDATORY_ENFORCEMENT"))); c:[type=="vbsEnabledSet", issuer=="AttestationPolicy"] => issue(type="vbsEnabled", value=ContainsOnlyValue(c.value, true)); ![type=="vbsEnabled", issuer=="AttestationPolicy"] => issue(type="vbsEnabled", value=false); c:[type=="vbsEnabled", issuer=="AttestationPolicy"] => issue(type="vbsEnabled", value=c.value);

// System Guard and SMM value
c:[type=="events", issuer=="AttestationService"] => add(type="validDrtmStateAuthEvent", value=JmesPath(c.value, "Events[? EventTypeString == 'EV_EVENT_TAG' && PcrIndex == '20' && ProcessedData.EVENT_TRUSTBOUNDARY.EVENT_DRTM_STATE_AUTH.SignatureValid !=null] | length(@) == '1' && @[0] | @.{EventSeq:EventSeq, SignatureValid:ProcessedData.EVENT_TRUSTBOUNDARY.EVENT_DRTM_STATE_AUTH.SignatureValid}"));

// Check if Signature is valid in extracted state auth events
c:[type=="validDrtmStateAuthEvent", issuer=="AttestationPolicy"] => issue(type="drtmMleValid", value=JsonToClaimValue(JmesPath(c.value, "SignatureValid")));
![type=="drtmMleValid", issuer=="AttestationPolicy"] => issue(type="drtmMleValid", value=false);

// Get the sequence number of the DRTM state auth event.
// The sequence number is used to ensure that the SMM event appears before the last DRTM state auth event.
[type=="drtmMleValid", value==true, issuer=="AttestationPolicy"] && c:[type=="validDrtmStateAuthEvent", issuer=="AttestationPolicy"] => add(type="validDrtmStateAuthEventSeq", value=JmesPath(c.value, "EventSeq"));

// Create query for SMM event
// The query is constructed to find the SMM level from the SMM level event that appears exactly once before the valid DRTM state auth event in the event log
[type=="drtmMleValid", value==true, issuer=="AttestationPolicy"] && c:[type=="validDrtmStateAuthEventSeq", issuer=="AttestationPolicy"] => add(type="smmQuery", value=AppendString(AppendString("Events[? EventTypeString == 'EV_EVENT_TAG' && PcrIndex == 20 && EventSeq <", c.value), "].ProcessedData.EVENT_DRTM_SMM | length(@) == 1 && @[0] | @.Value"));

// Extract SMM value
[type=="drtmMleValid", value==true, issuer=="AttestationPolicy"] &&
c1:[type=="smmQuery", issuer=="AttestationPolicy"] &&
c2:[type=="events", issuer=="AttestationService"] => issue(type="smmLevel", value=JsonToClaimValue(JmesPath(c2.value, c1.value)));

};
`;

// https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies
export const TPM_LINUX_BOOT = `version = 1.2;

configurationrules
{
};

authorizationrules
{
    [type == "aikValidated", value==true]
    => permit();
};

issuancerules {
    // Retrieve all EFI Boot variables with event = 'EV_EFI_VARIABLE_BOOT' 
    c:[type == "events", issuer=="AttestationService"] => add(type ="efiBootVariables", value = JmesPath(c.value, "Events[?EventTypeString == 'EV_EFI_VARIABLE_BOOT']"));

    // Retrieve all EFI Driver Config variables with event = 'EV_EFI_VARIABLE_DRIVER_CONFIG' 
    c:[type == "events", issuer=="AttestationService"] => add(type ="efiConfigVariables", value = JmesPath(c.value, "Events[?EventTypeString == 'EV_EFI_VARIABLE_DRIVER_CONFIG']"));

   // Grab all IMA events
   c:[type=="events", issuer=="AttestationService"] => add(type="imaMeasurementEvents", value=JmesPath(c.value, "Events[?EventTypeString == 'IMA_MEASUREMENT_EVENT']"));

   // Look for "Boot Order" from EFI Boot Data
   c:[type == "efiBootVariables", issuer=="AttestationPolicy"] => add(type = "bootOrderFound", value = JmesPath(c.value, "[?ProcessedData.UnicodeName == 'BootOrder'] | length(@) == \`1\` && @[0].PcrIndex == \`1\` && @[0].ProcessedData.VariableData"));
   c:[type=="bootOrderFound", issuer=="AttestationPolicy"] => issue(type="bootOrder", value=JsonToClaimValue(c.value));
   ![type=="bootOrderFound", issuer=="AttestationPolicy"] => issue(type="bootOrder", value=0);

   // Look for "Secure Boot" from EFI Driver Configuration Data
   c:[type == "efiConfigVariables", issuer=="AttestationPolicy"] => issue(type = "secureBootEnabled", value = JsonToClaimValue(JmesPath(c.value, "[?ProcessedData.UnicodeName == 'SecureBoot'] | length(@) == \`1\` && @[0].PcrIndex == \`7\` && @[0].ProcessedData.VariableData == 'AQ'")));
   ![type=="secureBootEnabled", issuer=="AttestationPolicy"] => issue(type="secureBootEnabled", value=false);

   // Look for "Platform Key" from EFI Boot Data
   c:[type == "efiConfigVariables", issuer=="AttestationPolicy"] => add(type = "platformKeyFound", value = JmesPath(c.value, "[?ProcessedData.UnicodeName == 'PK'] | length(@) == \`1\` && @[0].PcrIndex == \`7\` && @[0].ProcessedData.VariableData"));
   c:[type=="platformKeyFound", issuer=="AttestationPolicy"] => issue(type="platformKey", value=JsonToClaimValue(c.value));
   ![type=="platformKeyFound", issuer=="AttestationPolicy"] => issue(type="platformKey", value=0);
  
   // Look for "Key Exchange Key" from EFI Driver Configuration Data
   c:[type == "efiConfigVariables", issuer=="AttestationPolicy"] => add(type = "keyExchangeKeyFound", value = JmesPath(c.value, "[?ProcessedData.UnicodeName == 'KEK'] | length(@) == \`1\` && @[0].PcrIndex == \`7\` && @[0].ProcessedData.VariableData"));
   c:[type=="keyExchangeKeyFound", issuer=="AttestationPolicy"] => issue(type="keyExchangeKey", value=JsonToClaimValue(c.value));
   ![type=="keyExchangeKeyFound", issuer=="AttestationPolicy"] => issue(type="keyExchangeKey", value=0);

   // Look for "Key Database" from EFI Driver Configuration Data
   c:[type == "efiConfigVariables", issuer=="AttestationPolicy"] => add(type = "keyDatabaseFound", value = JmesPath(c.value, "[?ProcessedData.UnicodeName == 'db'] | length(@) == \`1\` && @[0].PcrIndex == \`7\` && @[0].ProcessedData.VariableData"));
   c:[type=="keyDatabaseFound", issuer=="AttestationPolicy"] => issue(type="keyDatabase", value=JsonToClaimValue(c.value));
   ![type=="keyDatabaseFound", issuer=="AttestationPolicy"] => issue(type="keyDatabase", value=0);

   // Look for "Forbidden Signatures" from EFI Driver  Configuration Data
   c:[type == "efiConfigVariables", issuer=="AttestationPolicy"] => add(type = "forbiddenSignaturesFound", value = JmesPath(c.value, "[?ProcessedData.UnicodeName == 'dbx'] | length(@) == \`1\` && @[0].PcrIndex == \`7\` && @[0].ProcessedData.VariableData"));
   c:[type=="forbiddenSignaturesFound", issuer=="AttestationPolicy"] => issue(type="forbiddenSignatures", value=JsonToClaimValue(c.value));
   ![type=="forbiddenSignaturesFound", issuer=="AttestationPolicy"] => issue(type="forbiddenSignatures", value=0);

   // Look for "Kernel Version" in IMA Measurement events
   c:[type=="imaMeasurementEvents", issuer=="AttestationPolicy"] => add(type="kernelVersionsFound", value=JmesPath(c.value, "[].ProcessedData.KernelVersion"));
   c:[type=="kernelVersionsFound", issuer=="AttestationPolicy"] => issue(type="kernelVersions", value=JsonToClaimValue(c.value));
   ![type=="kernelVersionsFound", issuer=="AttestationPolicy"] => issue(type="kernelVersions", value=0);

   // Look for "Built-In Trusted Keys" in IMA Measurement events
   c:[type=="imaMeasurementEvents", issuer=="AttestationPolicy"] => add(type="builtintrustedkeysFound", value=JmesPath(c.value, "[? ProcessedData.Keyring == '.builtin_trusted_keys'].ProcessedData.CertificateSubject"));
   c:[type=="builtintrustedkeysFound", issuer=="AttestationPolicy"] => issue(type="builtintrustedkeys", value=JsonToClaimValue(c.value));
   ![type=="builtintrustedkeysFound", issuer=="AttestationPolicy"] => issue(type="builtintrustedkeys", value=0);
};
`;

// https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies
export const TPM_DRIVER_LOADS = `version = 1.2;

configurationrules
{
};

authorizationrules
{
    => permit();
};

issuancerules {

c:[type=="events", issuer=="AttestationService"] => issue(type="alldriverloads", value=JmesPath(c.value, "Events[? EventTypeString == 'EV_EVENT_TAG' ].ProcessedData.EVENT_TRUSTBOUNDARY.EVENT_LOADEDMODULE_AGGREGATION[].EVENT_FILEPATH"));

c:[type=="events", issuer=="AttestationService"] => issue(type="DriverLoadPolicy", value=JmesPath(c.value, "events[? EventTypeString == 'EV_EVENT_TAG' && (PcrIndex == '13')].ProcessedData.EVENT_TRUSTBOUNDARY.EVENT_DRIVER_LOAD_POLICY.String"));

};
`;

// https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies
// issue() inside authorizationrules: only the incoming set sees it (no claims reach the token from that section).
export const TPM_KEY_ATTESTATION = `version=1.2;

authorizationrules
{
    // Key Attest Policy
    // -- Validating key types
	c:[type=="x-ms-tpm-request-key", issuer=="AttestationService"] => add(type="requestKeyType", value=JsonToClaimValue(JmesPath(c.value, "jwk.kty")));
    c:[type=="requestKeyType", issuer=="AttestationPolicy", value=="RSA"] => issue(type="requestKeyType", value="RSA");

    // -- Validating tpm_certify attributes
    c:[type=="x-ms-tpm-request-key", issuer=="AttestationService"] => add(type="requestKeyCertify", value=JmesPath(c.value, "info.tpm_certify"));
    c:[type=="requestKeyCertify", issuer=="AttestationPolicy"] => add(type="requestKeyCertifyObjAttr", value=JsonToClaimValue(JmesPath(c.value, "obj_attr")));
    c:[type=="requestKeyCertifyObjAttr", issuer=="AttestationPolicy", value==50] => issue(type="requestKeyCertifyObjAttrVerified", value=true);
    
    c:[type=="requestKeyCertifyObjAttrVerified", issuer=="AttestationPolicy" , value==true] => permit();

};

issuancerules
{
    
};
`;

// https://learn.microsoft.com/azure/attestation/custom-tcb-baseline-enforcement
// As published: "11” closes with a typographic quote and the section keyword is capitalised.
export const SGX_CUSTOM_TCB_BASELINE = `version = 1.1;  
configurationrules  
{  
=> issueproperty (  
type = "x-ms-sgx-tcbidentifier", value = "11”  
);  
};  

authorizationrules  
{  
=> permit();  
};  
Issuancerules  
{  
c:[type=="x-ms-sgx-is-debuggable"] => issue(type="is-debuggable", value=c.value);  
c:[type=="x-ms-sgx-mrsigner"] => issue(type="sgx-mrsigner", value=c.value);  
c:[type=="x-ms-sgx-mrenclave"] => issue(type="sgx-mrenclave", value=c.value);  
c:[type=="x-ms-sgx-product-id"] => issue(type="product-id", value=c.value);  
c:[type=="x-ms-sgx-svn"] => issue(type="svn", value=c.value);  
c:[type=="x-ms-attestation-type"] => issue(type="tee", value=c.value);  
};  
`;

/** The complete policies above, for parse-them-all tests. */
export const POLICY_EXAMPLES: readonly PolicyExample[] = [
  { name: 'AUTHOR_SIGN_SAMPLE', source: 'https://learn.microsoft.com/azure/attestation/author-sign-policy', text: AUTHOR_SIGN_SAMPLE },
  { name: 'AUTHOR_SIGN_DRAFT_DENY', source: 'https://learn.microsoft.com/azure/attestation/author-sign-policy', text: AUTHOR_SIGN_DRAFT_DENY },
  { name: 'AUTHOR_SIGN_STEP_PERMIT', source: 'https://learn.microsoft.com/azure/attestation/author-sign-policy', text: AUTHOR_SIGN_STEP_PERMIT },
  { name: 'AUTHOR_SIGN_STEP_ISSUE', source: 'https://learn.microsoft.com/azure/attestation/author-sign-policy', text: AUTHOR_SIGN_STEP_ISSUE },
  { name: 'SGX_CUSTOM', source: 'https://learn.microsoft.com/azure/attestation/policy-examples', text: SGX_CUSTOM },
  { name: 'SGX_DEFAULT', source: 'https://learn.microsoft.com/azure/attestation/policy-examples', text: SGX_DEFAULT },
  { name: 'SGX_MULTIPLE_ENCLAVES', source: 'https://learn.microsoft.com/azure/attestation/policy-examples', text: SGX_MULTIPLE_ENCLAVES },
  { name: 'SGX_DEFAULT_2020', source: 'https://github.com/MicrosoftDocs/azure-docs/blob/08f31af283e198b2bfc7554f1f87ca1d95070311/articles/attestation/policy-examples.md', text: SGX_DEFAULT_2020 },
  { name: 'VBS_NO_SECURITY', source: 'https://github.com/MicrosoftDocs/azure-docs/blob/2ac22f203b94322e39ad1c47ff86ea7b99878c7b/articles/attestation/policy-samples.md', text: VBS_NO_SECURITY },
  { name: 'VBS_OPTIMUM_SECURITY', source: 'https://github.com/MicrosoftDocs/azure-docs/blob/2ac22f203b94322e39ad1c47ff86ea7b99878c7b/articles/attestation/policy-samples.md', text: VBS_OPTIMUM_SECURITY },
  { name: 'SGX_KEY_ROTATION_BEFORE', source: 'https://learn.microsoft.com/azure/attestation/claim-sets', text: SGX_KEY_ROTATION_BEFORE },
  { name: 'SGX_KEY_ROTATION_DURING', source: 'https://learn.microsoft.com/azure/attestation/claim-sets', text: SGX_KEY_ROTATION_DURING },
  { name: 'SGX_KEY_ROTATION_AFTER', source: 'https://learn.microsoft.com/azure/attestation/claim-sets', text: SGX_KEY_ROTATION_AFTER },
  { name: 'TPM_V1_0', source: 'https://learn.microsoft.com/azure/attestation/policy-version-1-0', text: TPM_V1_0 },
  { name: 'TPM_V1_1', source: 'https://learn.microsoft.com/azure/attestation/policy-version-1-1', text: TPM_V1_1 },
  { name: 'TPM_V1_2', source: 'https://learn.microsoft.com/azure/attestation/policy-version-1-2', text: TPM_V1_2 },
  { name: 'MEASURED_BOOT_V1_2', source: 'https://learn.microsoft.com/azure/attestation/claim-rule-functions', text: MEASURED_BOOT_V1_2 },
  { name: 'TPM_SAMPLE_V1_0', source: 'https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies', text: TPM_SAMPLE_V1_0 },
  { name: 'TPM_SAMPLE_V1_2', source: 'https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies', text: TPM_SAMPLE_V1_2 },
  { name: 'TPM_KNOWN_PCRS', source: 'https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies', text: TPM_KNOWN_PCRS },
  { name: 'TPM_SYSTEM_GUARD', source: 'https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies', text: TPM_SYSTEM_GUARD },
  { name: 'VBS_ENCLAVE_IDENTITY', source: 'https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies', text: VBS_ENCLAVE_IDENTITY },
  { name: 'TPM_ISSUE_ALL_INCOMING', source: 'https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies', text: TPM_ISSUE_ALL_INCOMING },
  { name: 'TPM_WINDOWS_SECURITY', source: 'https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies', text: TPM_WINDOWS_SECURITY },
  { name: 'TPM_LINUX_BOOT', source: 'https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies', text: TPM_LINUX_BOOT },
  { name: 'TPM_DRIVER_LOADS', source: 'https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies', text: TPM_DRIVER_LOADS },
  { name: 'TPM_KEY_ATTESTATION', source: 'https://learn.microsoft.com/azure/attestation/tpm-attestation-sample-policies', text: TPM_KEY_ATTESTATION },
  { name: 'SGX_CUSTOM_TCB_BASELINE', source: 'https://learn.microsoft.com/azure/attestation/custom-tcb-baseline-enforcement', text: SGX_CUSTOM_TCB_BASELINE },
];

/** Rule lists the pages show without a surrounding policy; tests wrap them in one. */
// https://learn.microsoft.com/azure/attestation/claim-rule-grammar
// Typographic quotes as published.
export const CLAIM_RULE_GRAMMAR_RULES = `F1:[type==”OSName” , issuer==”CustomClaim”] && 
[type==”OSName” , issuer==”AttestationService”, value== F1.value ] 
=> issueproperty(type=”report_validity_in_minutes”, value=1440);

F1:[type==”OSName” , issuer==”CustomClaim”] && 
C2:[type==”OSName” , issuer==”AttestationService”, value== F1.value ] 
=> issue(claim = C2);
`;

// https://learn.microsoft.com/azure/attestation/claim-rule-functions
export const FUNCTIONS_JMESPATH_LITERAL_RULES = `=>add(type="JmesPathResult", value=JmesPath("{\\"foo\\": \\"bar\\"}", "foo"));
`;

// https://learn.microsoft.com/azure/attestation/claim-rule-functions
export const FUNCTIONS_JSON_TO_CLAIM_VALUE_RULES = `c:[type=="JsonIntegerData"] => add(type="IntegerResult", value=JsonToClaimValue(c.value));
c:[type=="JsonBooleanData"] => add(type="BooleanResult", value=JsonToClaimValue(c.value));
c:[type=="JsonStringData"] => add(type="StringResult", value=JsonToClaimValue(c.value));
`;

// https://learn.microsoft.com/azure/attestation/claim-rule-functions
export const FUNCTIONS_JSON_ARRAY_RULES = `c:[type=="JsonData"] => add(type="Result", value=JsonToClaimValue(c.value));
`;

// https://learn.microsoft.com/azure/attestation/claim-rule-functions
export const FUNCTIONS_IS_SUBSET_OF_RULES = `c1:[type == "Subset"] && c2:[type=="Superset"] => add(type="IsSubset", value=IsSubsetOf(c1.value, c2.value));
`;

// https://learn.microsoft.com/azure/attestation/claim-rule-functions
// No closing ; on the page.
export const FUNCTIONS_NOT_CONDITION_RULES = `![type=="Claim3"] => add(type="Claim3", value=300)
`;

export const RULE_EXAMPLES: readonly PolicyExample[] = [
  { name: 'CLAIM_RULE_GRAMMAR_RULES', source: 'https://learn.microsoft.com/azure/attestation/claim-rule-grammar', text: CLAIM_RULE_GRAMMAR_RULES },
  { name: 'FUNCTIONS_JMESPATH_LITERAL_RULES', source: 'https://learn.microsoft.com/azure/attestation/claim-rule-functions', text: FUNCTIONS_JMESPATH_LITERAL_RULES },
  { name: 'FUNCTIONS_JSON_TO_CLAIM_VALUE_RULES', source: 'https://learn.microsoft.com/azure/attestation/claim-rule-functions', text: FUNCTIONS_JSON_TO_CLAIM_VALUE_RULES },
  { name: 'FUNCTIONS_JSON_ARRAY_RULES', source: 'https://learn.microsoft.com/azure/attestation/claim-rule-functions', text: FUNCTIONS_JSON_ARRAY_RULES },
  { name: 'FUNCTIONS_IS_SUBSET_OF_RULES', source: 'https://learn.microsoft.com/azure/attestation/claim-rule-functions', text: FUNCTIONS_IS_SUBSET_OF_RULES },
  { name: 'FUNCTIONS_NOT_CONDITION_RULES', source: 'https://learn.microsoft.com/azure/attestation/claim-rule-functions', text: FUNCTIONS_NOT_CONDITION_RULES },
];

// https://learn.microsoft.com/azure/attestation/policy-examples "Unsigned Policy for an SGX enclave with PolicyFormat=JWT" (the same in the 2020 and current revisions)
export const SGX_UNSIGNED_JWS = 'eyJhbGciOiJub25lIn0.eyJBdHRlc3RhdGlvblBvbGljeSI6ICJkbVZ5YzJsdmJqMGdNUzR3TzJGMWRHaHZjbWw2WVhScGIyNXlkV3hsYzN0ak9sdDBlWEJsUFQwaUpHbHpMV1JsWW5WbloyRmliR1VpWFNBOVBpQndaWEp0YVhRb0tUdDlPMmx6YzNWaGJtTmxjblZzWlhON1l6cGJkSGx3WlQwOUlpUnBjeTFrWldKMVoyZGhZbXhsSWwwZ1BUNGdhWE56ZFdVb2RIbHdaVDBpYVhNdFpHVmlkV2RuWVdKc1pTSXNJSFpoYkhWbFBXTXVkbUZzZFdVcE8yTTZXM1I1Y0dVOVBTSWtjMmQ0TFcxeWMybG5ibVZ5SWwwZ1BUNGdhWE56ZFdVb2RIbHdaVDBpYzJkNExXMXljMmxuYm1WeUlpd2dkbUZzZFdVOVl5NTJZV3gxWlNrN1l6cGJkSGx3WlQwOUlpUnpaM2d0YlhKbGJtTnNZWFpsSWwwZ1BUNGdhWE56ZFdVb2RIbHdaVDBpYzJkNExXMXlaVzVqYkdGMlpTSXNJSFpoYkhWbFBXTXVkbUZzZFdVcE8yTTZXM1I1Y0dVOVBTSWtjSEp2WkhWamRDMXBaQ0pkSUQwLUlHbHpjM1ZsS0hSNWNHVTlJbkJ5YjJSMVkzUXRhV1FpTENCMllXeDFaVDFqTG5aaGJIVmxLVHRqT2x0MGVYQmxQVDBpSkhOMmJpSmRJRDAtSUdsemMzVmxLSFI1Y0dVOUluTjJiaUlzSUhaaGJIVmxQV011ZG1Gc2RXVXBPMk02VzNSNWNHVTlQU0lrZEdWbElsMGdQVDRnYVhOemRXVW9kSGx3WlQwaWRHVmxJaXdnZG1Gc2RXVTlZeTUyWVd4MVpTazdmVHMifQ.';

// https://learn.microsoft.com/azure/attestation/policy-examples "Signed Policy for an SGX enclave with PolicyFormat=JWT" (current revision: alg "RSA256", self-signed CN=AttestationCertificate0)
export const SGX_SIGNED_JWS = 'eyJhbGciOiJSU0EyNTYiLCJ4NWMiOlsiTUlJQzFqQ0NBYjZnQXdJQkFnSUlTUUdEOUVGakJcdTAwMkJZd0RRWUpLb1pJaHZjTkFRRUxCUUF3SWpFZ01CNEdBMVVFQXhNWFFYUjBaWE4wWVhScGIyNURaWEowYVdacFkyRjBaVEF3SGhjTk1qQXhNVEl6TVRneU1EVXpXaGNOTWpFeE1USXpNVGd5TURVeldqQWlNU0F3SGdZRFZRUURFeGRCZEhSbGMzUmhkR2x2YmtObGNuUnBabWxqWVhSbE1EQ0NBU0l3RFFZSktvWklodmNOQVFFQkJRQURnZ0VQQURDQ0FRb0NnZ0VCQUpyRWVNSlo3UE01VUJFbThoaUNLRGh6YVA2Y2xYdkhmd0RIUXJ5L3V0L3lHMUFuMGJ3MVU2blNvUEVtY2FyMEc1WmYxTUR4alZOdEF5QjZJWThKLzhaQUd4eFFnVVZsd1dHVmtFelpGWEJVQTdpN1B0NURWQTRWNlx1MDAyQkJnanhTZTBCWVpGYmhOcU5zdHhraUNybjYwVTYwQUU1WFx1MDAyQkE1M1JvZjFUUkNyTXNLbDRQVDRQeXAzUUtNVVlDaW9GU3d6TkFQaU8vTy9cdTAwMkJIcWJIMXprU0taUXh6bm5WUGVyYUFyMXNNWkptRHlyUU8vUFlMTHByMXFxSUY2SmJsbjZEenIzcG5uMXk0Wi9OTzJpdFBxMk5Nalx1MDAyQnE2N1FDblNXOC9xYlpuV3ZTNXh2S1F6QVR5VXFaOG1PSnNtSThUU05rLzBMMlBpeS9NQnlpeDdmMTYxQ2tjRm1LU3kwQ0F3RUFBYU1RTUE0d0RBWURWUjBUQkFVd0F3RUIvekFOQmdrcWhraUc5dzBCQVFzRkFBT0NBUUVBZ1ZKVWRCaXRud3ZNdDdvci9UMlo4dEtCUUZsejFVcVVSRlRUTTBBcjY2YWx2Y2l4VWJZR3gxVHlTSk5pbm9XSUJROU9QamdMa1dQMkVRRUtvUnhxN1NidGxqNWE1RUQ2VjRyOHRsejRISjY0N3MyM2V0blJFa2o5dE9Gb3ZNZjhOdFNVeDNGTnBhRUdabDJMUlZHd3dcdTAwMkJsVThQd0gzL2IzUmVCZHRhQTdrZmFWNVx1MDAyQml4ZWRjZFN5S1F1VkFUbXZNSTcxM1A4VlBsNk1XbXNNSnRrVjNYVi9ZTUVzUVx1MDAyQkdZcU1yN2tLWGwxM3lldUVmVTJWVkVRc1ovMXRnb29iZVZLaVFcdTAwMkJUcWIwdTJOZHNcdTAwMkJLamRIdmFNYngyUjh6TDNZdTdpR0pRZnd1aU1tdUxSQlJwSUFxTWxRRktLNmRYOXF6Nk9iT01zUjlpczZ6UDZDdmxGcEV6bzVGUT09Il19.eyJBdHRlc3RhdGlvblBvbGljeSI6ImRtVnljMmx2YmoweExqQTdZWFYwYUc5eWFYcGhkR2x2Ym5KMWJHVnpJSHRqT2x0MGVYQmxQVDBpSkdsekxXUmxZblZuWjJGaWJHVWlYU0FtSmlCYmRtRnNkV1U5UFhSeWRXVmRJRDAtSUdSbGJua29LVHM5UGlCd1pYSnRhWFFvS1R0OU8ybHpjM1ZoYm1ObGNuVnNaWE1nZXlBZ0lDQmpPbHQwZVhCbFBUMGlKR2x6TFdSbFluVm5aMkZpYkdVaVhTQTlQaUJwYzNOMVpTaDBlWEJsUFNKT2IzUkVaV0oxWjJkaFlteGxJaXdnZG1Gc2RXVTlZeTUyWVd4MVpTazdJQ0FnSUdNNlczUjVjR1U5UFNJa2FYTXRaR1ZpZFdkbllXSnNaU0pkSUQwLUlHbHpjM1ZsS0hSNWNHVTlJbWx6TFdSbFluVm5aMkZpYkdVaUxDQjJZV3gxWlQxakxuWmhiSFZsS1RzZ0lDQWdZenBiZEhsd1pUMDlJaVJ6WjNndGJYSnphV2R1WlhJaVhTQTlQaUJwYzNOMVpTaDBlWEJsUFNKelozZ3RiWEp6YVdkdVpYSWlMQ0IyWVd4MVpUMWpMblpoYkhWbEtUc2dJQ0FnWXpwYmRIbHdaVDA5SWlSelozZ3RiWEpsYm1Oc1lYWmxJbDBnUFQ0Z2FYTnpkV1VvZEhsd1pUMGljMmQ0TFcxeVpXNWpiR0YyWlNJc0lIWmhiSFZsUFdNdWRtRnNkV1VwT3lBZ0lDQmpPbHQwZVhCbFBUMGlKSEJ5YjJSMVkzUXRhV1FpWFNBOVBpQnBjM04xWlNoMGVYQmxQU0p3Y205a2RXTjBMV2xrSWl3Z2RtRnNkV1U5WXk1MllXeDFaU2s3SUNBZ0lHTTZXM1I1Y0dVOVBTSWtjM1p1SWwwZ1BUNGdhWE56ZFdVb2RIbHdaVDBpYzNadUlpd2dkbUZzZFdVOVl5NTJZV3gxWlNrN0lDQWdJR002VzNSNWNHVTlQU0lrZEdWbElsMGdQVDRnYVhOemRXVW9kSGx3WlQwaWRHVmxJaXdnZG1Gc2RXVTlZeTUyWVd4MVpTazdmVHMifQ.c0l-xqGDFQ8_kCiQ0_vvmDQYG_u544CYmoiucPNxd9MU8ZXT69UD59UgSuya2yl241NoVXA_0LaMEB2re0JnTbPD_dliJn96HnIOqnxXxRh7rKbu65ECUOMWPXbyKQMZ0I3Wjhgt_XyyhfEiQGfJfGzA95-wm6yWqrmW7dMI7JkczG9ideztnr0bsw5NRsIWBXOjVy7Bg66qooTnODS_OqeQ4iaNsN-xjMElHABUxXhpBt2htbhemDU1X41o8clQgG84aEHCgkE07pR-7IL_Fn2gWuPVC66yxAp00W1ib2L-96q78D9J52HPdeDCSFio2RL7r5lOtz8YkQnjacb6xA';

// https://github.com/MicrosoftDocs/azure-docs/blob/08f31af283e198b2bfc7554f1f87ca1d95070311/articles/attestation/policy-examples.md "Signed Policy" (2020 revision: RS256, CN=MaaTestCert1; AttestationPolicy holds the text, not its base64url)
export const SGX_SIGNED_JWS_2020 = 'eyAiYWxnIjoiUlMyNTYiLCAieDVjIjogWyJNSUlETERDQ0FoU2dBd0lCQWdJSVpTYW5zQ1djS1RNd0RRWUpLb1pJaHZjTkFRRUxCUUF3RnpFVk1CTUdBMVVFQXd3TVRXRmhWR1Z6ZEVObGNuUXhNQ0FYRFRJd01EUXlOVEF3TURBd01Gb1lEekl3TnpBd05ESTFNREF3TURBd1dqQVhNUlV3RXdZRFZRUUREQXhOWVdGVVpYTjBRMlZ5ZERFd2dnRWlNQTBHQ1NxR1NJYjNEUUVCQVFVQUE0SUJEd0F3Z2dFS0FvSUJBUUNjbFVEcGJnVDM3My9GZUZCS0lwZTFoL3k0dTM2Z09NSTJOcFZVS3pVZ2krdVp5U042dTE5OVlESEtwYVVUZE1iNzd6THdCRnJmdWx4SHo3aVkyTEFWTmo5R01kZXpIbGdrZDgyaTJ0N2Rmd3hkbG8xZTlrbGFhQmUrTEZWL1dITDJrN1JSeG5mRFU2YktrK3lkWWY4REtSRUdyZEc2bzJqRW1CQVBxREQzaSszNENVVjlyTnk2bW5VTGI1ZjFDZnI0eERZTEdUTDNyS0VDaU12SFAyVllnbTBneEpmdXlDR1laYkRmSWVtcTA3QmlMYmt4dm4xOG1qR0dzNHlCQ0ZLZmZrMG9Ya1FHMU9uRHpyWVdObGVtNW1mUE5DY1RqOUVUYzBqbEI3b2dMcVZWNUxxOW9pb0M1S3ErR3hLaWwxSk51UnQrZkxEZTFtZWlXWitldTg5N0FnTUJBQUdqZWpCNE1FWUdBMVVkSXdRL01EMkFGRWhERjBadDFqclNqQ0ZDVnZacG5YWTdvdk4xb1J1a0dUQVhNUlV3RXdZRFZRUUREQXhOWVdGVVpYTjBRMlZ5ZERHQ0NHVW1wN0FsbkNrek1CMEdBMVVkRGdRV0JCUklReGRHYmRZNjBvd2hRbGIyYVoxMk82THpkVEFQQmdOVkhSTUJBZjhFQlRBREFRSC9NQTBHQ1NxR1NJYjNEUUVCQ3dVQUE0SUJBUUE5MHJYSlY4WmpHcWRscWVZeEV3RTBoeENhdHBaY04yckdjUkMvVVJ0Um5KQlFiV3BCKzc5ZHpaSFhPK1VJRjd6aFZVd3czZVF5UXVhaDBhQzZzNnRCVUtqZ0Zqa0s5Wkw2U2MvNHFweWI2UkUxSGdqUkNjZWdtVSs4MENkY3F4Z29xWFRVeUZXeXFtQWxzSFh6VzN4aWpyTjFIOXpkdDdwdHNiQ1hPNHBiME5qcXo1NHpzS01RTDg0WlRNOWZYamt0N2FacEtuaGw1TlAzMTFTQ01VTzRrem1xaW0zMzFScFd2dXhabnQxZjFrbDRRZUxoL1lBRjcrT0VLTmFGZ3l4T1hGMkROdk1GRFlFV0V3NUY5dkRrMFZlc1VFck9nYTN2RmxJWTl5ZkU4aEY3OXFudHNNWVFuY0pBRklBNVJaZmZMVG45SGxZbVp0SmVPWmxDR3l6aSJdfQ.eyJBdHRlc3RhdGlvblBvbGljeSI6ICJ2ZXJzaW9uPSAxLjA7YXV0aG9yaXphdGlvbnJ1bGVze2M6W3R5cGU9PVwiJGlzLWRlYnVnZ2FibGVcIl0gPT4gcGVybWl0KCk7fTtpc3N1YW5jZXJ1bGVze2M6W3R5cGU9PVwiJGlzLWRlYnVnZ2FibGVcIl0gPT4gaXNzdWUodHlwZT1cImlzLWRlYnVnZ2FibGVcIiwgdmFsdWU9Yy52YWx1ZSk7YzpbdHlwZT09XCIkc2d4LW1yc2lnbmVyXCJdID0-IGlzc3VlKHR5cGU9XCJzZ3gtbXJzaWduZXJcIiwgdmFsdWU9Yy52YWx1ZSk7YzpbdHlwZT09XCIkc2d4LW1yZW5jbGF2ZVwiXSA9PiBpc3N1ZSh0eXBlPVwic2d4LW1yZW5jbGF2ZVwiLCB2YWx1ZT1jLnZhbHVlKTtjOlt0eXBlPT1cIiRwcm9kdWN0LWlkXCJdID0-IGlzc3VlKHR5cGU9XCJwcm9kdWN0LWlkXCIsIHZhbHVlPWMudmFsdWUpO2M6W3R5cGU9PVwiJHN2blwiXSA9PiBpc3N1ZSh0eXBlPVwic3ZuXCIsIHZhbHVlPWMudmFsdWUpO2M6W3R5cGU9PVwiJHRlZVwiXSA9PiBpc3N1ZSh0eXBlPVwidGVlXCIsIHZhbHVlPWMudmFsdWUpO2M6W3R5cGU9PVwiJHRlZS1mdXR1cmVcIl0gPT4gaXNzdWUodHlwZT1cInRlZS1mdXR1cmVcIiwgdmFsdWU9Yy52YWx1ZSk7fTsifQ.Rm_KOcxPzo_6AytCyoWrgRa50efT_87gR9_Yewxeuesji99drOepXp50qabnPc0oCyy5ArcPSETeYCaYQrrNVhCTEW-3U_WJxXKrHuQIa9IcE06muFrA4X4esjCitbgrTujKzf83puB5u8vUG0KI_y9FAKGIjrZzDRXAG0126DOCjMltUxyRpNpXq5Ex6SQI5q-CQctoO9kYkMrYoUTqAxiAJ8mpNvC4Ufe4TjF8t6SpSI2zXXta_gY_decJ8AkyDx4YkzbHn5QzjaXaXoHMgbj_76D_RnGhANC0u5rBHvqScFMTO50QnPW94frkn-9PBtWuQ0g7Q1TeERkoMknhBA';
