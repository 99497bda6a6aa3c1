/**
 * Appraisal policies of Intel's appraisal flow (DCAP 1.21+, `tee_appraise_verification_token`): a signed
 * JWT per FMSPC that a verifier fetches with `GET appraisalpolicy?fmspc=` (QCNL
 * `tee_qcnl_get_default_platform_policy`) and an administrator uploads with
 * `PUT appraisalpolicy {policy, is_default, fmspc}` (PCCSAdminTool `put -u …/appraisalpolicy`).
 * The cache stores and serves them; their signature is the appraising verifier's to check. The upload is
 * checked for what PCCS checks (services/appraisalPolicyService.js): a compact JWT whose payload's
 * `policy_payload` holds a `policy_array` of environments with known class ids.
 */
import { createHash } from 'node:crypto';
import { fail } from '../core/errors.js';

/** Policy class ids Intel defines, and the policy type PCCS files them under. */
const CLASS_TYPES: Readonly<Record<string, number>> = {
  '3123ec35-8d38-4ea5-87a5-d6c48b567570': 0, // SGX platform
  '9eec018b-7481-4b1c-8e1a-9f7c0c8c777f': 1, // TDX 1.0 platform
  'f708b97f-0fb2-4e6b-8b03-8a5bcd1221d3': 2, // TDX 1.5 platform
};
/** TD QE policies travel with a platform policy and set no type of their own. */
const TDQE_CLASS = '3769258c-75e6-4bc7-8d72-d2b0e224cad2';

export interface AppraisalPolicyUpload {
  readonly policy: string;
  readonly isDefault: boolean;
  /** Upper-case hex. */
  readonly fmspc: string;
  readonly type: number;
}

function invalid(message: string, field: string): never {
  throw fail('request.invalid', `appraisal policy: ${message}`, { parameter: field });
}

/** PCCS identifies a policy by the SHA-384 (hex) of its JWT text. */
export function appraisalPolicyId(policy: string): string {
  return createHash('sha384').update(policy, 'utf8').digest('hex');
}

export function parseAppraisalPolicy(body: unknown): AppraisalPolicyUpload {
  if (typeof body !== 'object' || body === null) invalid('the body must be JSON {policy, is_default, fmspc}', 'policy');
  const b = body as Record<string, unknown>;
  if (typeof b.is_default !== 'boolean') invalid('is_default must be a boolean', 'is_default');
  if (typeof b.fmspc !== 'string' || !/^[0-9a-fA-F]{12}$/.test(b.fmspc)) invalid('fmspc must be 12 hex characters', 'fmspc');
  if (typeof b.policy !== 'string' || b.policy.length > 256 * 1024) invalid('policy must be a JWT of at most 256 KiB', 'policy');
  const parts = b.policy.trim().split('.');
  if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p))) invalid('policy must be a compact JWT', 'policy');
  let payload: { policy_payload?: unknown };
  let inner: { policy_array?: { environment?: { class_id?: unknown } }[] };
  try {
    payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as typeof payload;
    inner = JSON.parse(String(payload.policy_payload)) as typeof inner;
  } catch {
    invalid('the JWT payload must carry policy_payload as JSON text', 'policy');
  }
  if (!Array.isArray(inner?.policy_array)) invalid('policy_payload has no policy_array', 'policy');
  let type: number | undefined;
  for (const p of inner.policy_array) {
    const id = typeof p?.environment?.class_id === 'string' ? p.environment.class_id.toLowerCase() : undefined;
    if (id === undefined) invalid('a policy has no environment.class_id', 'policy');
    // Own members only: a class_id such as constructor or __proto__ must not find Object.prototype's.
    if (Object.hasOwn(CLASS_TYPES, id)) {
      type = CLASS_TYPES[id];
      break;
    }
    if (id !== TDQE_CLASS) invalid(`unknown policy class_id ${id}`, 'policy');
  }
  if (type === undefined) invalid('no platform policy in policy_array', 'policy');
  return { policy: b.policy.trim(), isDefault: b.is_default, fmspc: b.fmspc.toUpperCase(), type };
}
