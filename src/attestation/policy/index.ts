export type {
  Action,
  Claim,
  ClaimProperty,
  ClaimValue,
  ComparisonOperator,
  Condition,
  Expression,
  Policy,
  PolicyConfiguration,
  PolicyVersion,
  PropertyCondition,
  Rule,
  SourcePosition,
} from './ast.js';
export { DEFAULT_POLICIES, type PolicyAttestationType } from './defaults.js';
export {
  type CompiledPolicy,
  compilePolicy,
  DEFAULT_EVALUATION_BUDGET,
  type EvaluationBudget,
  type EvaluationOptions,
  evaluatePolicy,
  POLICY_ISSUER,
  type PolicyEvaluation,
  SERVICE_ISSUER,
} from './evaluator.js';
export { type DecodedPolicyJws, decodePolicyJws, encodePolicyJws, looksLikeJws, type ManagementJws, managementPayload, verifyManagementJws, type PolicyJwsHeader, policyHash, policyTokenHash } from './jws.js';
export { parsePolicy } from './parser.js';
