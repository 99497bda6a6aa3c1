/**
 * The vault's routes on the wire: Azure Key Vault / Managed HSM keys (REST api-version 7.x), access
 * control, full backup, and Conclave's vault administration. Members are named as AKV names them.
 */
import { AKV_PAGED_QUERY, AKV_QUERY, JWK, OBJECT, akvErrors, conclaveErrors } from './common.js';
import { S, route } from './schema.js';

/** A key name as created or imported: 1–127 letters, digits and dashes. */
const NAME = S.string({ pattern: '^[0-9A-Za-z-]{1,127}$', description: 'key name' });
/** A key name looked up: any name (one that cannot exist is a 404, key.not_found, from the vault), bounded as the router bounds path parameters. */
const LOOKUP_NAME = S.string({ maxLength: 127, description: 'key name' });
// Bounded as the router bounds every path parameter (100); anything but 32 hex digits is an operation the
// vault does not have (404, request.not_found), which the handler answers, not a malformed request.
const VERSION = S.string({ pattern: '^([0-9A-Fa-f]{32})?$', description: 'key version: 32 hex digits' });
export const NEW_KEY_PARAMS = S.object({ name: NAME });
export const KEY_PARAMS = S.object({ name: LOOKUP_NAME });
export const KEY_VERSION_PARAMS = S.object({ name: LOOKUP_NAME, version: VERSION });

const TAGS = S.record(S.string(), { description: 'tags (name → value)' });
const ATTRIBUTES = S.object({
  enabled: S.optional(S.boolean()),
  nbf: S.optional(S.integer({ description: 'not before (seconds since the epoch)' })),
  exp: S.optional(S.integer({ description: 'expires (seconds since the epoch)' })),
  created: S.optional(S.integer()),
  updated: S.optional(S.integer()),
  recoveryLevel: S.optional(S.string()),
  recoverableDays: S.optional(S.integer()),
  exportable: S.optional(S.boolean({ description: 'may be released (Secure Key Release)' })),
  hsmPlatform: S.optional(S.string()),
});
export const RELEASE_POLICY = S.object({
  contentType: S.optional(S.string({ description: 'application/json; charset=utf-8' })),
  data: S.optional(S.string({ description: 'the policy JSON, base64url' })),
  immutable: S.optional(S.boolean()),
});
const KEY_BUNDLE = S.object({
  key: JWK,
  attributes: S.optional(ATTRIBUTES),
  tags: S.optional(TAGS),
  managed: S.optional(S.boolean()),
  release_policy: S.optional(RELEASE_POLICY),
});
const DELETED_KEY_BUNDLE = S.object({
  key: JWK,
  attributes: S.optional(ATTRIBUTES),
  tags: S.optional(TAGS),
  recoveryId: S.optional(S.string()),
  deletedDate: S.optional(S.integer()),
  scheduledPurgeDate: S.optional(S.integer()),
});
const KEY_ITEM = S.object({ kid: S.string(), attributes: S.optional(ATTRIBUTES), tags: S.optional(TAGS), managed: S.optional(S.boolean()) });
const page = <T extends ReturnType<typeof S.object>>(item: T) => S.object({ value: S.array(item), nextLink: S.anyOf([S.string(), S.null()]) });

export const CREATE_KEY_BODY = S.object({
  kty: S.string({ description: 'RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM' }),
  key_size: S.optional(S.integer()),
  public_exponent: S.optional(S.integer()),
  key_ops: S.optional(S.array(S.string())),
  crv: S.optional(S.string()),
  attributes: S.optional(ATTRIBUTES),
  tags: S.optional(TAGS),
  release_policy: S.optional(RELEASE_POLICY),
});
export const IMPORT_KEY_BODY = S.object({
  key: S.record(S.unknown(), { description: 'a JWK with its private members, or {kty, key_hsm} for a BYOK transfer blob' }),
  Hsm: S.optional(S.boolean()),
  attributes: S.optional(ATTRIBUTES),
  tags: S.optional(TAGS),
  release_policy: S.optional(RELEASE_POLICY),
});
export const UPDATE_KEY_BODY = S.object({ key_ops: S.optional(S.array(S.string())), attributes: S.optional(ATTRIBUTES), tags: S.optional(TAGS), release_policy: S.optional(RELEASE_POLICY) });
export const ROTATION_POLICY = S.object({
  id: S.optional(S.string()),
  lifetimeActions: S.optional(S.array(S.object({ trigger: S.record(S.string()), action: S.object({ type: S.string({ description: 'Rotate or Notify' }) }) }))),
  attributes: S.optional(S.object({ expiryTime: S.optional(S.string()), created: S.optional(S.integer()), updated: S.optional(S.integer()) })),
});
export const KEY_OPERATION_BODY = S.object({
  alg: S.string(),
  value: S.string({ description: 'base64url' }),
  iv: S.optional(S.string()),
  aad: S.optional(S.string()),
  tag: S.optional(S.string()),
});
const KEY_OPERATION_RESULT = S.object({ kid: S.string(), value: S.string({ description: 'base64url' }), iv: S.optional(S.string()), tag: S.optional(S.string()), aad: S.optional(S.string()) });
export const VERIFY_BODY = S.object({ alg: S.string(), digest: S.string({ description: 'base64url' }), value: S.string({ description: 'the signature, base64url' }) });
export const RELEASE_BODY = S.object({
  target: S.string({ description: 'the attestation token (JWT) of the TEE receiving the key' }),
  nonce: S.optional(S.string()),
  enc: S.optional(S.string({ description: 'CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384' })),
});
const RELEASE_RESULT = S.object({ value: S.string({ description: 'a JWS over {request, response: {key: {key: JWK with key_hsm}}}' }) });
const BACKUP = S.object({ value: S.string({ description: 'the sealed key backup, base64url' }) });
const ROLE_ASSIGNMENT = S.object({ id: S.string(), name: S.string(), type: S.string(), properties: S.object({ scope: S.optional(S.string()), roleDefinitionId: S.string(), principalId: S.string() }) });
const ROLE_DEFINITION = S.object({ id: S.string(), name: S.string(), type: S.string(), properties: OBJECT });
const JOB = S.object({ status: S.string(), statusDetails: S.optional(S.anyOf([S.string(), S.null()])), error: S.optional(S.unknown()), startTime: S.optional(S.integer()), endTime: S.optional(S.anyOf([S.integer(), S.null()])), jobId: S.string(), azureStorageBlobContainerUri: S.optional(S.anyOf([S.string(), S.null()])) });
const ok = (schema: ReturnType<typeof S.object>, description = 'OK') => ({ 200: { description, schema }, ...akvErrors });

const ROLE_PARAMS = S.object({ key: S.optional(NAME), name: S.string({ maxLength: 128 }) });
const ROLE_SCOPE_PARAMS = S.object({ key: S.optional(NAME) });

export const VAULT = {
  createKey: route({ invalid: { body: 'key.invalid' }, params: NEW_KEY_PARAMS, query: AKV_QUERY, body: CREATE_KEY_BODY, responses: ok(KEY_BUNDLE) }),
  importKey: route({ invalid: { body: 'key.invalid' }, params: NEW_KEY_PARAMS, query: AKV_QUERY, body: IMPORT_KEY_BODY, responses: ok(KEY_BUNDLE) }),
  listKeys: route({ query: AKV_PAGED_QUERY, body: null, responses: ok(page(KEY_ITEM)) }),
  listVersions: route({ params: KEY_PARAMS, query: AKV_PAGED_QUERY, body: null, responses: ok(page(KEY_ITEM)) }),
  getRotationPolicy: route({ params: KEY_PARAMS, query: AKV_QUERY, body: null, responses: ok(ROTATION_POLICY) }),
  setRotationPolicy: route({ invalid: { body: 'key.invalid' }, params: KEY_PARAMS, query: AKV_QUERY, body: ROTATION_POLICY, responses: ok(ROTATION_POLICY) }),
  getKey: route({ params: KEY_PARAMS, query: AKV_QUERY, body: null, responses: ok(KEY_BUNDLE) }),
  getKeyVersion: route({ invalid: { params: 'request.not_found' }, params: KEY_VERSION_PARAMS, query: AKV_QUERY, body: null, responses: ok(KEY_BUNDLE) }),
  keyAttestation: route({ invalid: { params: 'request.not_found' }, params: KEY_VERSION_PARAMS, query: AKV_QUERY, body: null, responses: { ...akvErrors, 400: { description: 'always: key attestation is not offered (key.attestation_unavailable, docs/vault.md)', schema: akvErrors[400]!.schema! } } }),
  updateKey: route({ invalid: { body: 'key.invalid' }, params: KEY_PARAMS, query: AKV_QUERY, body: UPDATE_KEY_BODY, responses: ok(KEY_BUNDLE) }),
  updateKeyVersion: route({ invalid: { body: 'key.invalid', params: 'request.not_found' }, params: KEY_VERSION_PARAMS, query: AKV_QUERY, body: UPDATE_KEY_BODY, responses: ok(KEY_BUNDLE) }),
  rotateKey: route({ params: KEY_PARAMS, query: AKV_QUERY, body: null, responses: ok(KEY_BUNDLE) }),
  deleteKey: route({ params: KEY_PARAMS, query: AKV_QUERY, body: null, responses: ok(DELETED_KEY_BUNDLE) }),
  listDeleted: route({ query: AKV_PAGED_QUERY, body: null, responses: ok(page(KEY_ITEM)) }),
  getDeleted: route({ params: KEY_PARAMS, query: AKV_QUERY, body: null, responses: ok(DELETED_KEY_BUNDLE) }),
  recoverDeleted: route({ params: KEY_PARAMS, query: AKV_QUERY, body: null, responses: ok(KEY_BUNDLE) }),
  purgeDeleted: route({ params: KEY_PARAMS, query: AKV_QUERY, body: null, responses: { 204: { description: 'purged' }, ...akvErrors } }),
  backupKey: route({ params: KEY_PARAMS, query: AKV_QUERY, body: null, responses: ok(BACKUP) }),
  restoreKey: route({ query: AKV_QUERY, body: BACKUP, responses: ok(KEY_BUNDLE) }),
  keyOperation: route({ invalid: { params: 'request.not_found' }, params: KEY_VERSION_PARAMS, query: AKV_QUERY, body: KEY_OPERATION_BODY, responses: ok(KEY_OPERATION_RESULT) }),
  keyOperationLatest: route({ params: KEY_PARAMS, query: AKV_QUERY, body: KEY_OPERATION_BODY, responses: ok(KEY_OPERATION_RESULT) }),
  verify: route({ invalid: { params: 'request.not_found' }, params: KEY_VERSION_PARAMS, query: AKV_QUERY, body: VERIFY_BODY, responses: ok(S.object({ value: S.boolean() })) }),
  verifyLatest: route({ params: KEY_PARAMS, query: AKV_QUERY, body: VERIFY_BODY, responses: ok(S.object({ value: S.boolean() })) }),
  release: route({ params: KEY_PARAMS, query: AKV_QUERY, body: RELEASE_BODY, responses: ok(RELEASE_RESULT, 'the released key, wrapped to the key in the token') }),
  releaseVersion: route({ invalid: { params: 'request.not_found' }, params: KEY_VERSION_PARAMS, query: AKV_QUERY, body: RELEASE_BODY, responses: ok(RELEASE_RESULT, 'the released key, wrapped to the key in the token') }),
  random: route({ query: AKV_QUERY, body: S.object({ count: S.integer({ minimum: 1, maximum: 128 }) }), responses: ok(S.object({ value: S.string({ description: 'random bytes, base64url' }) })) }),

  listRoleAssignments: route({ invalid: 'role.invalid', params: ROLE_SCOPE_PARAMS, query: S.object({ 'api-version': S.optional(S.string()), $filter: S.optional(S.string({ maxLength: 512 })) }), body: null, responses: ok(page(ROLE_ASSIGNMENT)) }),
  getRoleAssignment: route({ invalid: 'role.invalid', params: ROLE_PARAMS, query: AKV_QUERY, body: null, responses: ok(ROLE_ASSIGNMENT) }),
  putRoleAssignment: route({ invalid: 'role.invalid', params: ROLE_PARAMS, query: AKV_QUERY, body: S.object({ properties: S.object({ roleDefinitionId: S.string(), principalId: S.string() }) }), responses: { 201: { description: 'created', schema: ROLE_ASSIGNMENT }, ...akvErrors } }),
  deleteRoleAssignment: route({ invalid: 'role.invalid', params: ROLE_PARAMS, query: AKV_QUERY, body: null, responses: ok(ROLE_ASSIGNMENT, 'the deleted assignment') }),
  listRoleDefinitions: route({ invalid: 'role.invalid', params: ROLE_SCOPE_PARAMS, query: S.object({ 'api-version': S.optional(S.string()), $filter: S.optional(S.string({ maxLength: 512 })) }), body: null, responses: ok(page(ROLE_DEFINITION)) }),
  getRoleDefinition: route({ invalid: 'role.invalid', params: ROLE_PARAMS, query: AKV_QUERY, body: null, responses: ok(ROLE_DEFINITION) }),
  putRoleDefinition: route({ invalid: 'role.invalid', params: ROLE_PARAMS, query: AKV_QUERY, body: S.object({ properties: OBJECT }), responses: { 201: { description: 'created or updated', schema: ROLE_DEFINITION }, ...akvErrors } }),
  deleteRoleDefinition: route({ invalid: 'role.invalid', params: ROLE_PARAMS, query: AKV_QUERY, body: null, responses: ok(ROLE_DEFINITION, 'the deleted definition') }),

  fullBackup: route({ query: AKV_QUERY, body: S.object({ storageResourceUri: S.optional(S.string()), token: S.optional(S.string()), useManagedIdentity: S.optional(S.boolean()) }), responses: { 202: { description: 'started (Azure-AsyncOperation names the status URL)', schema: JOB }, ...akvErrors } }),
  fullRestore: route({ query: AKV_QUERY, body: S.object({ folderToRestore: S.optional(S.string()), sasTokenParameters: S.optional(OBJECT) }), responses: { 202: { description: 'started', schema: JOB }, ...akvErrors } }),
  selectiveRestore: route({ params: KEY_PARAMS, query: AKV_QUERY, body: S.object({ folder: S.optional(S.string()), sasTokenParameters: S.optional(OBJECT) }), responses: { 202: { description: 'started', schema: JOB }, ...akvErrors } }),
  preBackup: route({ query: AKV_QUERY, body: S.object({ storageResourceUri: S.optional(S.string()), token: S.optional(S.string()), useManagedIdentity: S.optional(S.boolean()) }), responses: { 202: { description: 'checked (writes nothing)', schema: JOB }, ...akvErrors } }),
  preRestore: route({ query: AKV_QUERY, body: S.object({ folderToRestore: S.optional(S.string()), sasTokenParameters: S.optional(OBJECT) }), responses: { 202: { description: 'checked (restores nothing)', schema: JOB }, ...akvErrors } }),
  listSettings: route({ query: AKV_QUERY, body: null, responses: ok(S.object({ settings: S.array(OBJECT) })) }),
  getSetting: route({ params: S.object({ name: S.string({ maxLength: 128 }) }), query: AKV_QUERY, body: null, responses: ok(OBJECT) }),
  updateSetting: route({ params: S.object({ name: S.string({ maxLength: 128 }) }), query: AKV_QUERY, body: S.object({ value: S.optional(S.string()) }), responses: ok(OBJECT) }),
  backupJob: route({ params: S.object({ jobId: S.string({ maxLength: 64 }) }), query: AKV_QUERY, body: null, responses: ok(JOB) }),

  maintenance: route({ body: null, responses: { 200: { description: 'what ran', schema: OBJECT }, ...conclaveErrors } }),
  adminListAssignments: route({ body: null, responses: { 200: { description: 'role assignments', schema: S.object({ value: S.array(OBJECT) }) }, ...conclaveErrors } }),
  adminAssign: route({ invalid: { body: 'role.invalid' }, body: S.object({ principalId: S.string(), roleDefinitionId: S.optional(S.string()), role: S.optional(S.string()), scope: S.optional(S.string()) }), responses: { 200: { description: 'the assignment', schema: OBJECT }, ...conclaveErrors } }),
  adminUnassign: route({ params: S.object({ id: S.string({ maxLength: 128 }) }), body: null, responses: { 204: { description: 'removed' }, ...conclaveErrors } }),
  authorities: route({ body: null, responses: { 200: { description: 'trusted authorities', schema: S.object({ authorities: S.array(S.string()), builtin: S.array(S.string()) }) }, ...conclaveErrors } }),
  setAuthorities: route({ body: S.object({ authorities: S.array(S.string({ description: 'https URL of an attestation service' })) }), responses: { 200: { description: 'trusted authorities', schema: S.object({ authorities: S.array(S.string()), builtin: S.array(S.string()) }) }, ...conclaveErrors } }),
  registerClient: route({ body: S.object({ displayName: S.string({ minLength: 1, maxLength: 200 }) }), responses: { 201: { description: 'the client and its secret (shown once)', schema: S.object({ clientId: S.string(), clientSecret: S.string() }) }, ...conclaveErrors } }),
};
