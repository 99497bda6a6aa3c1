/**
 * Bring Your Own Key (Azure's BYOK specification): a key exchange key (KEK) is made in this vault as an
 * `RSA-HSM` key whose only key operation is `import`; the customer's HSM wraps the target key to the
 * KEK's public half (CKM_RSA_AES_KEY_WRAP: RSA-OAEP of an ephemeral AES key ‖ RFC 5649 wrap of the key,
 * PKCS#8 for RSA/EC, raw bytes for oct) into a key transfer blob
 * `{schema_version, header: {kid: <KEK kid>, alg: "dir", enc}, ciphertext}`, and `PUT /keys/{name}`
 * brings it in as `key.key_hsm`. The target key is unwrapped inside the key protector.
 */
import { fail } from '../core/errors.js';
import { type AuditDraft, bindingOf, refOf, type VaultCore } from './core.js';
import { checkUsable, familyOf, type ImportParameters, isKeyExchangeKey, keyId } from './key.js';
import type { ProtectedKey } from './ports.js';
import type { Principal } from './roles.js';
import { isKeyTransferEnc, parseTransferBlob } from './release/index.js';

const RSA_SIZES = [2048, 3072, 4096];

function bad(message: string, detail: Record<string, unknown> = {}): never {
  throw fail('key.invalid', message, { field: 'key.key_hsm', ...detail });
}

/** The KEK a blob names: `header.kid` = `https://{vault}/keys/{name}/{version}` of a key in this vault. */
function kekOf(kid: unknown): { name: string; version: string } {
  if (typeof kid !== 'string') bad('The key transfer blob names no KEK (header.kid)');
  let path: string;
  try {
    path = new URL(kid).pathname;
  } catch {
    bad(`The KEK id ${JSON.stringify(kid)} in the key transfer blob is not a key URL`);
  }
  const m = /^\/keys\/([0-9a-zA-Z-]{1,127})\/([0-9a-fA-F]{32})$/.exec(path);
  if (!m) bad(`The KEK id ${JSON.stringify(kid)} must name a key version (https://{vault}/keys/{name}/{version})`);
  return { name: m[1]!, version: m[2]!.toLowerCase() };
}

/**
 * `p` needs import on the KEK as well as on the target name (checked by the caller): unwrapping is a use of
 * the KEK's private key, which a principal whose roles do not reach the KEK must not make. That check comes
 * before the KEK is looked up, so its refusal names the key as the blob's kid does.
 */
export async function importByok(core: VaultCore, p: Principal, name: string, version: string, params: ImportParameters & { keyHsm: string }, draft: AuditDraft): Promise<ProtectedKey> {
  const { header, ciphertext } = parseTransferBlob(params.keyHsm);
  if (header.alg !== undefined && header.alg !== 'dir') bad(`The key transfer blob header alg must be "dir", got ${JSON.stringify(header.alg)}`);
  const enc = header.enc;
  if (!isKeyTransferEnc(enc)) bad(`The key transfer blob header enc must be CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256 or RSA_AES_KEY_WRAP_384, got ${JSON.stringify(enc)}`);
  const ref = kekOf(header.kid);
  draft.detail.kek = keyId(core.deps.baseUrl(), ref.name, ref.version);
  // Checked on the name as the kid spells it, before any lookup (a scope matches in any case): a principal
  // whose roles do not reach it learns nothing of which names and versions exist, nor their stored spelling.
  await core.authorize(p, 'import', ref.name);
  const st = await core.store.keyState(ref.name);
  const kek = st.state === 'live' ? await core.store.getVersion(st.name, ref.version) : undefined;
  if (!kek) bad(`The KEK ${header.kid} is not a key of this vault`, { kek: header.kid });
  draft.detail.kek = keyId(core.deps.baseUrl(), kek.name, kek.version);
  // The BYOK specification's KEK: RSA-HSM, and `import` its only operation, so no other use can leak it.
  if (!isKeyExchangeKey(kek)) {
    bad(`The key ${kek.name} is not a key exchange key: a KEK is a non-exportable RSA-HSM key whose key_ops are exactly ["import"]`, { kek: draft.detail.kek });
  }
  checkUsable(kek, 'import', core.nowSeconds());
  const protector = core.protector;
  if (!protector.importTransfer) throw fail('request.invalid', `BYOK import is not available with the ${protector.provider} key protector`, { field: 'key.key_hsm' });
  const family = familyOf(params.kty);
  const pk = await protector.importTransfer(refOf(kek), { ciphertext, enc }, { family }, bindingOf(name, version), { exportable: params.attributes.exportable === true });
  if (family === 'RSA' && !RSA_SIZES.includes(pk.keySize ?? 0)) bad(`A transferred RSA key must be ${RSA_SIZES.join(', ')} bits, got ${pk.keySize}`);
  draft.detail.enc = enc;
  return pk;
}
