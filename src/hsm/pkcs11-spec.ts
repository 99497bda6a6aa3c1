/**
 * The `--hsm` value: `pkcs11:module=PATH;token=LABEL;pin-source=file:PATH|env:VAR[;sessions=N][;release-sha2=token|hybrid]`.
 * Semicolon-separated `name=value` attributes after the `pkcs11:` scheme, in the spirit of RFC 7512
 * PKCS#11 URIs (whose `module-path` / `token` / `pin-source` attributes these mirror); values may be
 * percent-encoded. The PIN itself never appears in the spec: it is read from the named file or
 * environment variable when the provider starts.
 */
import { fail } from '../core/errors.js';

export type PinSource = { readonly kind: 'file'; readonly path: string } | { readonly kind: 'env'; readonly name: string };

/**
 * How RSA_AES_KEY_WRAP_256/384 releases are done on a token without OAEP-SHA-256/384:
 * `token` fails closed (`hsm.mechanism_unsupported`); `hybrid` makes the AES KEK in the process,
 * wraps the key under it inside the token and OAEP-encrypts the KEK with node:crypto (docs/hsm.md).
 */
export type ReleaseSha2Mode = 'token' | 'hybrid';

export interface Pkcs11Spec {
  readonly module: string;
  readonly token: string;
  readonly pinSource: PinSource;
  /** Size of the pool of logged-in R/W sessions. */
  readonly sessions: number;
  readonly releaseSha2: ReleaseSha2Mode;
}

const KNOWN = new Set(['module', 'module-path', 'token', 'pin-source', 'sessions', 'release-sha2']);
const DEFAULT_SESSIONS = 4;

function bad(message: string, detail: Record<string, unknown> = {}): never {
  throw fail('config.invalid', message, { option: 'hsm', ...detail });
}

function decode(value: string, attr: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return bad(`hsm attribute ${attr} is not valid percent-encoding`, { attribute: attr });
  }
}

export function parsePkcs11Spec(spec: string): Pkcs11Spec {
  if (!spec.startsWith('pkcs11:')) bad('hsm must look like pkcs11:module=PATH;token=LABEL;pin-source=file:PATH|env:VAR');
  const attrs = new Map<string, string>();
  for (const part of spec.slice('pkcs11:'.length).split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) bad(`hsm attribute '${part.slice(0, 40)}' is not name=value`);
    const name = part.slice(0, eq).trim();
    if (!KNOWN.has(name)) bad(`unknown hsm attribute '${name}'`, { attribute: name });
    const key = name === 'module-path' ? 'module' : name;
    if (attrs.has(key)) bad(`hsm attribute '${name}' is given twice`, { attribute: name });
    attrs.set(key, decode(part.slice(eq + 1), name));
  }
  const module = attrs.get('module');
  const token = attrs.get('token');
  const pin = attrs.get('pin-source');
  if (!module) bad('hsm needs module=PATH (the PKCS#11 library)', { attribute: 'module' });
  if (!token) bad('hsm needs token=LABEL', { attribute: 'token' });
  if (!pin) bad('hsm needs pin-source=file:PATH or pin-source=env:VAR', { attribute: 'pin-source' });
  let pinSource: PinSource;
  if (pin.startsWith('file:') && pin.length > 5) pinSource = { kind: 'file', path: pin.slice(5) };
  else if (/^env:[A-Za-z_][A-Za-z0-9_]*$/.test(pin)) pinSource = { kind: 'env', name: pin.slice(4) };
  else bad('pin-source must be file:PATH or env:VAR (the PIN itself never goes in the spec)', { attribute: 'pin-source' });
  const sessionsText = attrs.get('sessions');
  const sessions = sessionsText === undefined ? DEFAULT_SESSIONS : Number(sessionsText);
  if (!Number.isInteger(sessions) || sessions < 1 || sessions > 64) bad('hsm sessions must be an integer from 1 to 64', { attribute: 'sessions' });
  const releaseSha2 = attrs.get('release-sha2') ?? 'token';
  if (releaseSha2 !== 'token' && releaseSha2 !== 'hybrid') bad('hsm release-sha2 must be token or hybrid', { attribute: 'release-sha2' });
  return { module, token, pinSource, sessions, releaseSha2 };
}

/** The spec with nothing secret (it never holds the PIN, but the file path / variable name is enough). */
export function describePkcs11Spec(spec: Pkcs11Spec): string {
  const pin = spec.pinSource.kind === 'file' ? `file:${spec.pinSource.path}` : `env:${spec.pinSource.name}`;
  return `pkcs11:module=${spec.module};token=${spec.token};pin-source=${pin};sessions=${spec.sessions};release-sha2=${spec.releaseSha2}`;
}
