/**
 * The service's own signing keys in the token (release responses): an RSA-2048 pair labelled
 * `conclave-service:{name}` (random CKA_ID, sensitive, not extractable), generated once; its certificate,
 * kept in the store by src/hsm/service-keys.ts, pins it by public key, and every load checks
 * CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE (`hsm.key_untrusted`
 * otherwise).
 */
import { createHash, createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import type pkcs11js from 'pkcs11js';
import { fail } from '../core/errors.js';
import { bigEndian, DIGEST_INFO, type Handle, ID_LENGTH, type Lib, P, type Pkcs11Options, type ServicePair, spkiOf, unsigned } from './pkcs11-common.js';
import type { TokenObjects } from './pkcs11-objects.js';
import type { SessionPool } from './pkcs11-sessions.js';
import type { Pkcs11Spec } from './pkcs11-spec.js';

/** A signing key of the service itself (e.g. release responses) whose private half stays in the token. */
export interface Pkcs11ServiceSigner {
  readonly publicKey: KeyObject;
  /** RSASSA-PKCS1-v1_5 with SHA-256 over `data` (RS256), computed in the token. */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

export function createServiceKeys(lib: Lib, spec: Pkcs11Spec, opts: Pkcs11Options, pool: SessionPool, objects: TokenObjects) {
  const { withSession } = pool;
  const { findOne } = objects;

  const serviceLabel = (name: string) => `conclave-service:${name}`;

  /** The private keys labelled for service `name` with their public keys, lowest CKA_ID first. */
  function servicePairs(s: Handle, name: string): ServicePair[] {
    lib.C_FindObjectsInit(s, [
      { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
      { type: P.CKA_LABEL, value: serviceLabel(name) },
    ]);
    let keys: Handle[];
    try {
      keys = lib.C_FindObjects(s, 16);
    } finally {
      lib.C_FindObjectsFinal(s);
    }
    return keys.map((key) => servicePair(s, key)).sort((a, b) => Buffer.compare(a.id, b.id));
  }

  function servicePair(s: Handle, key: Handle): ServicePair {
    // CKA_MODULUS and CKA_PUBLIC_EXPONENT are public attributes of an RSA private key (PKCS#11 v2.40 §2.1.3).
    const [id, n, e] = lib.C_GetAttributeValue(s, key, [{ type: P.CKA_ID }, { type: P.CKA_MODULUS }, { type: P.CKA_PUBLIC_EXPONENT }]);
    const jwk = { kty: 'RSA', n: unsigned(n!.value as Buffer).toString('base64url'), e: unsigned(e!.value as Buffer).toString('base64url') };
    return { key, id: id!.value as Buffer, publicKey: createPublicKey({ key: jwk, format: 'jwk' }), protection: protectionOf(s, key) };
  }

  /**
   * The attributes that keep a private key inside the token (PKCS#11 v2.40 §4.9): sensitive and not
   * extractable now, and always so since it was made (a key once readable may have been copied).
   */
  function protectionOf(s: Handle, key: Handle): Record<'sensitive' | 'extractable' | 'alwaysSensitive' | 'neverExtractable', boolean> {
    const [sensitive, extractable, always, never] = lib.C_GetAttributeValue(s, key, [
      { type: P.CKA_SENSITIVE },
      { type: P.CKA_EXTRACTABLE },
      { type: P.CKA_ALWAYS_SENSITIVE },
      { type: P.CKA_NEVER_EXTRACTABLE },
    ]);
    const bool = (a: pkcs11js.Attribute | undefined) => (a!.value as Buffer)[0] === 1;
    return { sensitive: bool(sensitive), extractable: bool(extractable), alwaysSensitive: bool(always), neverExtractable: bool(never) };
  }

  /** Refuses a service key that could have left the token: `hsm.key_untrusted` naming the attribute. */
  function requireProtected(name: string, pair: ServicePair): void {
    const p = pair.protection;
    const bad = !p.sensitive ? 'CKA_SENSITIVE' : p.extractable ? 'CKA_EXTRACTABLE' : !p.alwaysSensitive ? 'CKA_ALWAYS_SENSITIVE' : !p.neverExtractable ? 'CKA_NEVER_EXTRACTABLE' : undefined;
    if (bad === undefined) return;
    opts.logger?.error({ token: spec.token, label: serviceLabel(name), id: pair.id.toString('hex'), attribute: bad }, 'service key in the token is not protected; refusing it');
    throw fail('hsm.key_untrusted', `the service key ${serviceLabel(name)} (CKA_ID ${pair.id.toString('hex')}) in the HSM token has ${bad} ${bad === 'CKA_EXTRACTABLE' ? 'true' : 'false'}: its private key may exist outside the token`, {
      token: spec.token,
      label: serviceLabel(name),
      id: pair.id.toString('hex'),
      attribute: bad,
    });
  }

  async function generateServiceKey(s: Handle, name: string): Promise<void> {
    const common: pkcs11js.Template = [
      { type: P.CKA_TOKEN, value: true },
      { type: P.CKA_LABEL, value: serviceLabel(name) },
      { type: P.CKA_ID, value: randomBytes(ID_LENGTH) },
    ];
    await lib.C_GenerateKeyPairAsync(
      s,
      { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
      [...common, { type: P.CKA_PRIVATE, value: false }, { type: P.CKA_VERIFY, value: true }, { type: P.CKA_MODULUS_BITS, value: 2048 }, { type: P.CKA_PUBLIC_EXPONENT, value: bigEndian(65537) }],
      [
        ...common,
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_SENSITIVE, value: true },
        { type: P.CKA_EXTRACTABLE, value: false },
        { type: P.CKA_SIGN, value: true },
        { type: P.CKA_DECRYPT, value: false },
        { type: P.CKA_UNWRAP, value: false },
      ],
    );
    opts.logger?.info({ token: spec.token, label: serviceLabel(name) }, 'service signing key generated in the PKCS#11 token');
  }

  function serviceSignerOf(name: string, id: Buffer, publicKey: KeyObject): Pkcs11ServiceSigner {
    const label = serviceLabel(name);
    const cacheKey = `${label}/${id.toString('hex')}`;
    return {
      publicKey,
      sign: (data) =>
        withSession(async (s, c) => {
          let key = c.services.get(cacheKey);
          if (!key) {
            const found = findOne(s, [
              { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
              { type: P.CKA_LABEL, value: label },
              { type: P.CKA_ID, value: id },
            ]);
            if (!found) throw fail('hsm.unavailable', `the service key ${label} is missing from the HSM token`, { token: spec.token, reason: 'object_not_found' });
            // Every load (also after a reconnect) checks that this is still the pinned, protected key.
            const pair = servicePair(s, found);
            if (!spkiOf(pair.publicKey).equals(spkiOf(publicKey))) throw fail('hsm.key_untrusted', `the service key ${label} in the HSM token is not the pinned key`, { token: spec.token, label, id: id.toString('hex') });
            requireProtected(name, pair);
            key = found;
            c.services.set(cacheKey, key);
          }
          // CKM_SHA256_RSA_PKCS hashes in the token; without it, CKM_RSA_PKCS over the DigestInfo (RFC 8017 §9.2).
          if (c.mechanisms.has(P.CKM_SHA256_RSA_PKCS)) {
            lib.C_SignInit(s, { mechanism: P.CKM_SHA256_RSA_PKCS }, key);
            return new Uint8Array(await lib.C_SignAsync(s, Buffer.from(data), Buffer.alloc(512)));
          }
          lib.C_SignInit(s, { mechanism: P.CKM_RSA_PKCS }, key);
          return new Uint8Array(await lib.C_SignAsync(s, Buffer.concat([DIGEST_INFO['256']!, createHash('sha256').update(data).digest()]), Buffer.alloc(512)));
        }),
    };
  }

  return {
    async serviceSigner(name: string): Promise<Pkcs11ServiceSigner> {
      const chosen = await withSession(async (s) => {
        let found = servicePairs(s, name);
        if (found.length === 0) {
          await generateServiceKey(s, name);
          found = servicePairs(s, name);
        }
        // A labelled pair that could have left the token is an attack or a mistake: refuse, never skip it.
        for (const p of found) requireProtected(name, p);
        return found[0];
      });
      if (!chosen) throw fail('hsm.unavailable', `the service key ${serviceLabel(name)} vanished after generation`, { token: spec.token, reason: 'object_not_found' });
      return serviceSignerOf(name, chosen.id, chosen.publicKey);
    },

    async findServiceSigner(name: string, publicKey: KeyObject): Promise<Pkcs11ServiceSigner | undefined> {
      const want = spkiOf(publicKey);
      const hit = await withSession((s) => servicePairs(s, name).find((p) => want.equals(spkiOf(p.publicKey))));
      if (hit) requireProtected(name, hit);
      return hit ? serviceSignerOf(name, hit.id, hit.publicKey) : undefined;
    },
  };
}
