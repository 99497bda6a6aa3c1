/**
 * The one error family of Conclave. Every failure that crosses a module boundary is a
 * {@link ConclaveError} with a stable dotted `code` from {@link ERROR_CATALOGUE}, the HTTP status
 * that code maps to, a one-line message that is safe to show a client, and a structured `detail`
 * (offsets, fields, expected/actual values) that never holds secrets.
 *
 * Each HTTP API family (AKV, MAA, PCS) maps these to its own wire shape in `server/wire_errors.ts`.
 */

export interface ErrorSpec {
  /** Default HTTP status for this code. */
  readonly status: number;
  /** One-line meaning, used by docs/errors.md. */
  readonly meaning: string;
}

/**
 * The catalogue. Codes are stable API: clients and tests match on them, so rename never, add freely.
 * docs/errors.md is checked against this table by a test.
 */
export const ERROR_CATALOGUE = {
  // ── generic request / server ──────────────────────────────────────────────
  'request.invalid': { status: 400, meaning: 'The request is malformed or a parameter is out of range.' },
  'request.too_large': { status: 413, meaning: 'The request body exceeds the configured size limit.' },
  'request.not_found': { status: 404, meaning: 'No route or resource matches the request.' },
  'request.method_not_allowed': { status: 405, meaning: 'The route exists but not for this method.' },
  'request.rate_limited': { status: 429, meaning: 'Too many requests of this kind from this client (or waiting in all); retry after the Retry-After seconds.' },
  'request.unsupported_media_type': { status: 415, meaning: 'The request body has a content type this route does not accept.' },
  'request.headers_too_large': { status: 431, meaning: "The request line and headers together exceed the server's limit (16 KiB)." },
  'request.timeout': { status: 408, meaning: 'The whole request was not received within the request timeout (requestTimeoutMs); the connection is closed.' },
  'auth.unauthenticated': { status: 401, meaning: 'No valid credential or bearer token was presented.' },
  'auth.forbidden': { status: 403, meaning: 'The caller is authenticated but lacks the permission for this operation.' },
  'auth.csrf': { status: 403, meaning: 'A state-changing request carrying the console session cookie came from another origin or without the CSRF token of its session.' },
  'config.invalid': { status: 500, meaning: 'The effective configuration failed validation at start.' },
  'store.unavailable': { status: 503, meaning: 'The store (SQLite/PostgreSQL) cannot be reached.' },
  'store.mode_mismatch': { status: 500, meaning: 'The store was initialised in the other trust mode (--simulate or not); a server refuses to use it, so simulated and real trust never mix.' },
  'store.master_key_missing': { status: 500, meaning: 'The master key file is missing but the store holds data sealed under it; restore the file (a new key would make that data unreadable, so none is created).' },
  'store.master_key_mismatch': { status: 500, meaning: 'The master key file does not open the data sealed in the store: it is another store\'s key; restore the right one.' },
  'store.integrity': { status: 500, meaning: 'A stored object failed its integrity check (a row changed outside Conclave, a corrupt or foreign sealed blob): it is refused, never served or used; the message names it. Restore it from a backup.' },
  'store.conflict': { status: 409, meaning: 'A concurrent change made this write conflict; retry.' },
  'hsm.unavailable': { status: 503, meaning: 'The key-protection provider (HSM) cannot be reached.' },
  'hsm.key_untrusted': { status: 503, meaning: 'A key in the HSM token is not the one the service recorded (a service key: the public key its stored certificate pins; a key version: its stored public key, or two objects under its label), or a service key is extractable or not sensitive: the service refuses to use it (and, for a service key, to start).' },
  'hsm.mechanism_unsupported': { status: 400, meaning: 'The HSM token lacks the PKCS#11 mechanism (or parameters) this operation needs; the vault fails closed rather than substitute another.' },
  'upstream.collateral_mismatch': { status: 503, meaning: 'The upstream answered validly signed collateral for another target than asked (CA, FMSPC, TEE, identity, chip, TCB or platform); it was not cached and the cached copy stays.' },
  'upstream.collateral_rollback': { status: 503, meaning: 'The upstream answered collateral older than the cached copy (cRLNumber, thisUpdate, tcbEvaluationDataNumber or issueDate); it was not cached and the cached copy stays.' },
  'upstream.busy': { status: 503, meaning: 'Too many upstream fetches for uncached collateral are in flight (for this client, or in all); retry shortly. Cached collateral is still served.' },
  'upstream.unavailable': { status: 503, meaning: 'An upstream collateral service did not answer usefully.' },
  'console.unavailable': { status: 503, meaning: 'The assets of the web console are not built into this installation (run npm run build).' },
  'internal': { status: 500, meaning: 'An unexpected internal error; details are in the server log.' },

  // ── binary evidence parsing ───────────────────────────────────────────────
  'evidence.truncated': { status: 400, meaning: 'The evidence ends before a field that its declared lengths require.' },
  'evidence.malformed': { status: 400, meaning: 'A field of the evidence has a value its format does not allow.' },
  'evidence.unsupported': { status: 400, meaning: 'The evidence uses a version, key type or form that is not supported.' },
  'evidence.untrusted_root': { status: 400, meaning: 'The evidence chains to a root that is not trusted (for example the simulated TEE without --simulate).' },

  // ── certificates / DER ────────────────────────────────────────────────────
  'der.malformed': { status: 400, meaning: 'A DER structure (certificate, CRL, extension) cannot be decoded.' },
  'cert.chain_invalid': { status: 400, meaning: 'A certificate chain does not verify to the expected trust anchor.' },
  'cert.expired': { status: 400, meaning: 'A certificate is outside its validity period at the verification time.' },
  'cert.revoked': { status: 400, meaning: 'A certificate is listed in the issuer CRL.' },
  'crl.invalid': { status: 400, meaning: 'A CRL has a bad signature or issuer.' },
  'crl.expired': { status: 400, meaning: 'A CRL is past its nextUpdate at the verification time.' },

  // ── DCAP quotes ───────────────────────────────────────────────────────────
  'quote.truncated': { status: 400, meaning: 'The quote ends before a field its declared lengths require.' },
  'quote.malformed': { status: 400, meaning: 'A quote field has a value its format does not allow.' },
  'quote.unsupported': { status: 400, meaning: 'Quote version, TEE type, key type or certification data type is not supported.' },
  'quote.signature_invalid': { status: 400, meaning: 'The ECDSA signature over the quote header and body does not verify with the attestation key.' },
  'quote.qe_report_signature_invalid': { status: 400, meaning: 'The QE report signature does not verify with the PCK key.' },
  'quote.attestation_key_mismatch': { status: 400, meaning: 'The QE report data does not bind the attestation key and QE authentication data.' },
  'quote.pck_chain_invalid': { status: 400, meaning: 'The PCK certificate chain does not verify to the Intel SGX Root CA.' },
  'quote.pck_revoked': { status: 400, meaning: 'The PCK certificate (or its CA) is revoked.' },
  'quote.pck_extension_invalid': { status: 400, meaning: 'The SGX extensions of the PCK certificate are missing or malformed.' },
  'quote.qe_identity_mismatch': { status: 400, meaning: 'The QE report does not match the QE identity (MRSIGNER, ISVPRODID, MISCSELECT, ATTRIBUTES).' },
  'quote.tcb_level_not_found': { status: 400, meaning: 'No TCB level of the TCB info matches the platform.' },
  'quote.tcb_revoked': { status: 400, meaning: 'Intel has revoked the TCB the quote verified at (platform, QE or TDX module level): not attested.' },
  'quote.qe_tcb_level_not_found': { status: 400, meaning: 'No TCB level of the QE identity matches the QE ISVSVN.' },
  'quote.fmspc_mismatch': { status: 400, meaning: 'The TCB info is for another FMSPC or PCE-ID than the PCK certificate.' },
  'quote.tdx_module_mismatch': { status: 400, meaning: 'The TDX module identity does not match the TD report.' },
  'quote.collateral_mismatch': { status: 400, meaning: 'The TCB info or QE identity is for another TEE than the quote (id SGX/TDX, QE/TD_QE).' },

  // ── collateral ────────────────────────────────────────────────────────────
  'collateral.missing': { status: 400, meaning: 'Collateral needed for verification is not available.' },
  'collateral.malformed': { status: 400, meaning: 'Collateral cannot be parsed.' },
  'collateral.signature_invalid': { status: 400, meaning: 'A TCB info or identity signature does not verify with its issuer chain.' },
  'collateral.chain_invalid': { status: 400, meaning: 'A collateral issuer chain does not verify to the vendor root.' },
  'collateral.expired': { status: 400, meaning: 'Collateral is past its nextUpdate (strict freshness).' },
  'collateral.not_found': { status: 404, meaning: 'The requested collateral is not cached and cannot be fetched.' },
  'collateral.rollback': { status: 409, meaning: 'Imported or uploaded collateral (offline bundle, PUT platformcollateral) is older than the cached copy (cRLNumber, thisUpdate, tcbEvaluationDataNumber or issueDate); nothing of the import was stored.' },
  'collateral.mismatch': { status: 400, meaning: 'Imported or uploaded collateral is validly signed but for another target than the item it is filed under (CA, FMSPC, TEE, identity, chip, TCB or platform); nothing of the import was stored.' },
  'collateral.bundle_invalid': { status: 400, meaning: 'An offline collateral bundle failed verification.' },
  'collateral.platform_unknown': { status: 461, meaning: 'The platform is not registered and this cache does not fetch PCK certificates on demand (PCCS 461, request and offline modes).' },
  'collateral.integrity_error': { status: 460, meaning: 'Uploaded collateral (PUT platformcollateral) does not verify to the Intel SGX Root CA (PCCS 460).' },
  'collateral.below_baseline': { status: 404, meaning: 'The requested collateral is below the TCB baseline configured for it (AMD minimum TCB).' },

  // ── SEV-SNP ───────────────────────────────────────────────────────────────
  'snp.truncated': { status: 400, meaning: 'The SNP report or evidence document is shorter than its format requires.' },
  'snp.malformed': { status: 400, meaning: 'A field of the SNP report or evidence has a value its format does not allow.' },
  'snp.unsupported': { status: 400, meaning: 'The SNP report version or signature algorithm is not supported.' },
  'snp.signature_invalid': { status: 400, meaning: 'The report signature does not verify with the VCEK/VLEK.' },
  'snp.chain_invalid': { status: 400, meaning: 'The VCEK/VLEK chain does not verify to the AMD root of the product.' },
  'snp.product_mismatch': { status: 400, meaning: 'The product inferred from the chain disagrees with the report.' },
  'snp.chip_id_mismatch': { status: 400, meaning: 'The VCEK hwID does not match the report CHIP_ID.' },
  'snp.tcb_mismatch': { status: 400, meaning: 'The VCEK TCB extensions differ from the reported TCB.' },
  'snp.revoked': { status: 400, meaning: 'A certificate of the chain is revoked by the AMD CRL.' },
  'snp.certificate_missing': { status: 400, meaning: 'No VCEK/VLEK is available for the report.' },
  'snp.runtime_data_mismatch': { status: 400, meaning: 'REPORT_DATA does not bind the given runtime data.' },
  'snp.host_data_mismatch': { status: 400, meaning: 'HOST_DATA does not bind the given init-time data.' },
  'uvm.malformed': { status: 400, meaning: 'The UVM reference information (Endorsements.Uvm) lacks its issuer, feed, SVN or launch measurement, or holds more than one endorsement.' },
  'uvm.measurement_mismatch': { status: 400, meaning: 'The UVM endorsement is for another launch measurement than the SNP report.' },
  'cose.malformed': { status: 400, meaning: 'A COSE_Sign1 message is not well-formed (strict CBOR, four elements, attached payload, protected x5chain).' },
  'cose.unsupported': { status: 400, meaning: 'The COSE_Sign1 algorithm, or the signing key type for it, is not supported.' },
  'cose.signer_invalid': { status: 400, meaning: 'The COSE_Sign1 certificate chain does not resolve its did:x509 issuer (chain to its root, CA fingerprint, extended key usage).' },
  'cose.signature_invalid': { status: 400, meaning: 'The COSE_Sign1 signature does not verify with the key of its signing certificate.' },

  // ── TPM 2.0 evidence (Azure confidential VM vTPM, MAA TPM protocol) ───────
  'tpm.truncated': { status: 400, meaning: 'A TPM structure or event log ends before a field its declared lengths require.' },
  'tpm.malformed': { status: 400, meaning: 'A TPM structure, event log or TPM evidence document has a value its format does not allow.' },
  'tpm.unsupported': { status: 400, meaning: 'The TPM evidence uses an algorithm, key type or structure that is not supported.' },
  'tpm.quote_signature_invalid': { status: 400, meaning: 'The TPM quote (TPMS_ATTEST) signature does not verify with the attestation key.' },
  'tpm.pcr_digest_mismatch': { status: 400, meaning: 'The PCR values sent do not hash to the PCR digest the TPM quote signs.' },
  'tpm.nonce_mismatch': { status: 400, meaning: 'The TPM quote qualifying data is not the expected nonce or challenge.' },
  'tpm.ak_mismatch': { status: 400, meaning: 'The attestation key is not the one the hardware report binds (HCLAkPub).' },
  'tpm.eventlog_mismatch': { status: 400, meaning: 'Replaying the TCG event log does not give the quoted PCR values, or an event does not match its digest.' },
  'tpm.key_certification_invalid': { status: 400, meaning: 'The TPM key certification (TPM2_Certify) does not verify, does not name the key, or the key attributes are not acceptable.' },
  'tpm.challenge_invalid': { status: 400, meaning: 'The TPM protocol challenge or service context is missing, forged or expired.' },

  // ── NVIDIA GPU evidence, reference values (RIMs) and OCSP ──────────────────
  'gpu.truncated': { status: 400, meaning: 'The GPU attestation report ends before a field its declared lengths require.' },
  'gpu.malformed': { status: 400, meaning: 'A field of the GPU attestation report (SPDM request/response, measurement block, opaque data) has a value its format does not allow.' },
  'gpu.unsupported': { status: 400, meaning: 'The GPU evidence uses an SPDM version, architecture or form that is not supported.' },
  'gpu.nonce_mismatch': { status: 400, meaning: 'The nonce in the GPU report request is not the expected one.' },
  'gpu.signature_invalid': { status: 400, meaning: 'The GPU report signature does not verify with the key of the attestation certificate.' },
  'gpu.chain_invalid': { status: 400, meaning: 'The GPU attestation certificate chain does not verify to the pinned NVIDIA Device Identity CA.' },
  'gpu.fwid_mismatch': { status: 400, meaning: 'The FWID in the GPU report differs from the FWID extension of its attestation certificate.' },
  'gpu.measurement_mismatch': { status: 400, meaning: 'A GPU measurement differs from every golden value of the reference RIM at that index.' },
  'gpu.evidence_mismatch': { status: 400, meaning: 'The GPU evidence of a composite attestation does not match its declared form or count.' },
  'rim.malformed': { status: 400, meaning: 'A reference integrity manifest (SWID tag) cannot be parsed or breaks the accepted XML-DSig profile.' },
  'rim.digest_mismatch': { status: 400, meaning: 'The RIM document does not match the digest its XML signature signs (the document was altered).' },
  'rim.signature_invalid': { status: 400, meaning: 'The XML signature of the RIM does not verify with its signing certificate.' },
  'rim.chain_invalid': { status: 400, meaning: 'The RIM signing chain does not verify to the pinned NVIDIA CoRIM signing Root CA.' },
  'rim.expired': { status: 400, meaning: 'A certificate of the RIM signing chain is outside its validity at the verification time.' },
  'rim.version_mismatch': { status: 400, meaning: 'The RIM is for another driver or VBIOS version than the GPU report.' },
  'rim.index_conflict': { status: 400, meaning: 'The driver and VBIOS RIMs both claim the same measurement index.' },
  'rim.not_found': { status: 404, meaning: 'No RIM with this id is cached or available from the upstream RIM service.' },
  'ocsp.malformed': { status: 400, meaning: 'An OCSP response cannot be parsed or is not a successful basic response.' },
  'ocsp.signature_invalid': { status: 400, meaning: 'The OCSP response signature does not verify.' },
  'ocsp.unauthorized': { status: 400, meaning: 'The OCSP response is signed by a responder that is not authorised for the certificate.' },
  'ocsp.nonce_mismatch': { status: 400, meaning: 'The OCSP response does not echo the nonce of the request.' },
  'ocsp.stale': { status: 400, meaning: 'The OCSP response is not current at the verification time (thisUpdate/nextUpdate).' },
  'ocsp.not_covered': { status: 400, meaning: 'No OCSP response covers a certificate that must be checked.' },
  'ocsp.revoked': { status: 400, meaning: 'OCSP reports a certificate of the chain as revoked (or on hold).' },
  'ocsp.unknown': { status: 400, meaning: 'OCSP reports the status of a certificate of the chain as unknown.' },

  // ── attestation service ───────────────────────────────────────────────────
  'attestation.runtime_data_mismatch': { status: 400, meaning: 'The runtime data does not match the report data of the evidence.' },
  'attestation.init_time_data_mismatch': { status: 400, meaning: 'The init-time data does not match the hash the evidence carries (SGX CONFIGID, TDX MRCONFIGID, SNP HOST_DATA).' },
  'attestation.policy_denied': { status: 400, meaning: 'The attestation policy denied the evidence.' },
  'attestation.policy_syntax': { status: 400, meaning: 'The attestation policy text has a syntax error.' },
  'attestation.policy_invalid': { status: 400, meaning: 'The policy JWS or its signer is not acceptable.' },
  'attestation.policy_evaluation': { status: 400, meaning: 'A policy function failed while the policy was evaluated (for example JsonToClaimValue of a JSON object).' },
  'attestation.policy_budget': { status: 400, meaning: 'Evaluating the attestation policy exceeded its budget (steps, bindings, claims or time); a rule binds too many claim combinations.' },
  'attestation.type_unknown': { status: 404, meaning: 'The attestation type is not one this service knows.' },

  // ── vault ─────────────────────────────────────────────────────────────────
  'key.not_found': { status: 404, meaning: 'No key (or key version) with this name exists.' },
  'key.conflict': { status: 409, meaning: 'The key is in a state that conflicts with the operation (for example deleted, or being recovered).' },
  'key.invalid': { status: 400, meaning: 'A key parameter (type, size, curve, operation, attribute) is invalid.' },
  'key.operation_not_allowed': { status: 403, meaning: 'The key does not permit this operation (key_ops, disabled, nbf/exp).' },
  'key.crypto_failed': { status: 400, meaning: 'A cryptographic operation failed (for example a decryption with a wrong tag).' },
  'release.policy_invalid': { status: 400, meaning: 'A key release policy is malformed.' },
  'release.policy_required': { status: 400, meaning: 'An exportable key must carry a release policy.' },
  'release.policy_immutable': { status: 400, meaning: 'The key release policy is immutable.' },
  'release.not_exportable': { status: 403, meaning: 'The key is not exportable.' },
  'release.token_invalid': { status: 401, meaning: 'The target attestation token is malformed, forged, expired or from an untrusted authority.' },
  'release.policy_unsatisfied': { status: 403, meaning: 'The attestation token claims do not satisfy the key release policy.' },
  'release.no_wrapping_key': { status: 400, meaning: 'The attestation token holds no RSA encryption key to wrap the released key to.' },
  'key.attestation_unavailable': { status: 400, meaning: 'Key attestation is not offered: the key protectors of this vault have no vendor attestation of key generation.' },
  'role.invalid': { status: 400, meaning: 'A role assignment or role definition is malformed (scope, GUID name, role, unknown data action).' },
  'role.assignment_not_found': { status: 404, meaning: 'No role assignment with this name exists at this scope.' },
  'role.definition_not_found': { status: 404, meaning: 'No role definition with this name exists.' },
  'role.conflict': { status: 409, meaning: 'The role assignment or definition conflicts with an existing one (same name, other content; a built-in role; a definition still assigned).' },
  'backup.foreign': { status: 400, meaning: 'The backup is corrupt or was sealed under another master key, or holds keys in a PKCS#11 token this vault does not use: it restores only into a vault with the master key that made it (and, for keys in a token, on that token).' },
  // ── transparency log ──────────────────────────────────────────────────────
  'log.range_invalid': { status: 400, meaning: 'A log index, size or range is malformed or outside the latest signed tree head (start > end, size 0, from > to).' },
  'log.leaf_not_found': { status: 404, meaning: 'No log entry with this leaf hash is in the tree of the requested size (it may not be sequenced yet: retry within the batch interval).' },
  'log.unavailable': { status: 503, meaning: 'The log has no signed tree head yet (no sequencer has run).' },
  'log.head_malformed': { status: 502, meaning: 'A signed tree head, proof or entry from a log is malformed.' },
  'log.signature_invalid': { status: 502, meaning: 'A signed tree head does not verify with the trusted log key (altered, or signed by another key).' },
  'log.proof_invalid': { status: 502, meaning: 'An inclusion proof does not prove the entry in the signed tree head, or the entry does not describe the operation it was returned for.' },
  'log.inconsistent': { status: 502, meaning: 'Two signed tree heads are not consistent: a fork (two roots for one size), a rollback, or a consistency proof that is missing or fails.' },
  'log.entry_missing': { status: 500, meaning: 'A log index below the tree size has no entry, or a signed head is larger than the log (an entry was deleted). The sequencer refuses to extend a tree whose last entry (its index row or its leaf) is missing, logged every round, until it is restored.' },
  'log.entry_mismatch': { status: 500, meaning: 'A stored log entry does not hash to its leaf hash, or a migrated entry differs from the audit chain record it came from (an entry was changed).' },
  'log.root_mismatch': { status: 500, meaning: 'A stored signed tree head or tree node does not match the tree recomputed from the entries (entries reordered or replaced, or a forked head).' },
  'log.head_missing': { status: 500, meaning: 'Sequenced log entries lie beyond the latest signed tree head and are not audit-chain records awaiting migration (a signed head was deleted); the sequencer refuses to sign over them.' },
  // ── SDK / agent (TEE side) ────────────────────────────────────────────────
  'sdk.http_error': { status: 502, meaning: 'A service the SDK called (attestation, vault, token endpoint) answered with an error or could not be reached.' },
  'sdk.release_jws_invalid': { status: 502, meaning: 'The key release JWS is malformed, its signature does not verify with x5c[0], or its certificate chain is not trusted.' },
  'sdk.unwrap_failed': { status: 502, meaning: 'The key_hsm transfer blob could not be unwrapped with the workload key (wrong key, unknown enc, corrupt ciphertext).' },
  'sdk.evidence_source_unavailable': { status: 503, meaning: 'The requested evidence source (configfs-tsm, Azure vTPM, simulated TEE) is not present on this machine.' },
  'sdk.evidence_failed': { status: 503, meaning: 'The evidence source was present but producing evidence failed (for example a concurrent configfs-tsm writer).' },
  'sdk.credential_failed': { status: 401, meaning: 'No vault access token could be obtained from the configured credential.' },
  'sdk.token_invalid': { status: 400, meaning: 'An attestation token does not verify against its issuer metadata (signature, issuer, lifetime).' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Structured, secret-free details of a failure. */
export type ErrorDetail = Readonly<Record<string, unknown>>;

/** The single error type of Conclave. */
export class ConclaveError extends Error {
  override readonly name = 'ConclaveError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: ErrorDetail | undefined;

  constructor(code: ErrorCode, message: string, detail?: ErrorDetail, options?: { cause?: unknown; status?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options?.status ?? ERROR_CATALOGUE[code].status;
    this.detail = detail;
  }

  toJSON(): { code: ErrorCode; message: string; detail?: ErrorDetail } {
    return this.detail === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, detail: this.detail };
  }
}

/** Shorthand constructor that reads well at throw sites: `throw fail('quote.truncated', '…', {offset})`. */
export function fail(code: ErrorCode, message: string, detail?: ErrorDetail, cause?: unknown): ConclaveError {
  return new ConclaveError(code, message, detail, cause === undefined ? undefined : { cause });
}

export function isConclaveError(e: unknown, code?: ErrorCode): e is ConclaveError {
  return e instanceof ConclaveError && (code === undefined || e.code === code);
}
