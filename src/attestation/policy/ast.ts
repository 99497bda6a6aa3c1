/**
 * The syntax tree of an MAA attestation policy (policy versions 1.0, 1.1, 1.2).
 * Grammar: docs "Claim and claim rules" (claim-rule-grammar), "Attestation policy version 1.0/1.1/1.2",
 * "Claim rule functions supported in policy version 1.2+". See docs/attestation-policy.md.
 */

/** A single claim value. MAA's value types are String, Integer and Boolean (claim-rule-grammar §Claim). */
export type ClaimValue = string | number | boolean;

/**
 * A claim. A set value (`JsonToClaimValue` of a JSON array) becomes one claim per member with the same type
 * (claim-rule-functions §JsonToClaimValue), so every claim holds a single value.
 */
export interface Claim {
  readonly type: string;
  readonly value: ClaimValue;
  /** `AttestationService` (default for incoming claims), `AttestationPolicy` (added by the policy) or `CustomClaim`. */
  readonly issuer?: string;
}

export type PolicyVersion = '1.0' | '1.1' | '1.2';

/** Where a node starts in the policy text, 1-based. */
export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

export type ClaimProperty = 'type' | 'value' | 'valueType' | 'issuer';

export type ComparisonOperator = '==' | '!=' | '<' | '<=' | '>' | '>=';

export type Expression =
  | { readonly kind: 'literal'; readonly value: ClaimValue; readonly at: SourcePosition }
  | { readonly kind: 'property'; readonly identifier: string; readonly property: ClaimProperty; readonly at: SourcePosition }
  | { readonly kind: 'call'; readonly name: string; readonly args: readonly Expression[]; readonly at: SourcePosition };

export interface PropertyCondition {
  readonly property: ClaimProperty;
  readonly operator: ComparisonOperator;
  readonly operand: Expression;
}

/** `[!] [ident:] [prop op expr, …]`. */
export interface Condition {
  readonly identifier: string | undefined;
  /** `![…]`: true when no claim satisfies the condition (1.2 "Not condition operator"). */
  readonly negated: boolean;
  readonly properties: readonly PropertyCondition[];
  readonly at: SourcePosition;
}

export type Action =
  | { readonly kind: 'permit' }
  | { readonly kind: 'deny' }
  | {
      readonly kind: 'issue' | 'add' | 'issueproperty';
      /** `issue(claim=c)`: the bound claim to copy. */
      readonly claim?: string;
      readonly type?: Expression;
      readonly value?: Expression;
      readonly valueType?: Expression;
      readonly issuer?: Expression;
    };

export interface Rule {
  readonly conditions: readonly Condition[];
  readonly action: Action;
  readonly at: SourcePosition;
}

/** The typed result of `configurationrules` (policy version 1.1 and 1.2 docs, "configuration rules" table). */
export interface PolicyConfiguration {
  /** TPM/VBS: whether a valid AIK certificate is required (default true). */
  readonly require_valid_aik_cert?: boolean;
  /** TPM/VBS: bitmask of PCR indices that must be in the TPM quote (default 0xFFFFFF). */
  readonly required_pcr_mask?: number;
  /** SGX: the TCB baseline to evaluate against (`azuredefault` or a TCB evaluation data number), custom-tcb-baseline-enforcement. */
  readonly 'x-ms-sgx-tcbidentifier'?: string;
  /** Any other `issueproperty` of the configuration section, kept verbatim. */
  readonly [name: string]: ClaimValue | undefined;
}

export interface Policy {
  readonly version: PolicyVersion;
  readonly configurationRules: readonly Rule[];
  readonly authorizationRules: readonly Rule[];
  readonly issuanceRules: readonly Rule[];
  /** Values of the configuration section, resolved at parse time. */
  readonly configuration: PolicyConfiguration;
  /** The text this was parsed from. */
  readonly text: string;
}
