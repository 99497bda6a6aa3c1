/** `conclave key …`: the vault's keys over the AKV REST API. */
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DEFAULT_KEY_TRANSFER_ENC, type KeyTransferEnc, decodeReleaseResponse, unwrapKeyTransfer } from '../vault/release/index.js';
import type { Command } from 'commander';
import { LATEST_API_VERSION } from '../vault/key.js';
import { type ClientFlags, createServerClient, withClientOptions } from './client.js';
import { isConclaveError } from '../core/errors.js';
import { checkReleaseAnswersRequest, verifyReleaseJws } from '../sdk/release.js';
import { CliError, defaultFormat, type OutputFormat, printResult } from './output.js';
import { b64url } from '../core/bytes.js';
import { writePrivateFile } from './files.js';

type Flags = ClientFlags & { output?: OutputFormat };

const api = (path: string) => `${path}${path.includes('?') ? '&' : '?'}api-version=${LATEST_API_VERSION}`;

function summary(bundle: any): Record<string, unknown> {
  const kid = String(bundle.key?.kid ?? bundle.kid ?? '');
  return {
    kid,
    kty: bundle.key?.kty,
    enabled: bundle.attributes?.enabled,
    exportable: bundle.attributes?.exportable,
    ...(bundle.release_policy ? { releasePolicy: JSON.parse(Buffer.from(bundle.release_policy.data, 'base64url').toString('utf8')), immutable: bundle.release_policy.immutable } : {}),
    ...(bundle.tags ? { tags: bundle.tags } : {}),
  };
}

/** The key name: the positional argument or `--name` (as `az keyvault key create --name`). */
function nameOf(arg: string | undefined, f: { name?: string }): string {
  const name = arg ?? f.name;
  if (!name) throw new CliError('a key name is needed', 'pass it as the argument or with --name', 2);
  return name;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    throw new CliError(`cannot read ${file}`, 'check the path', 2);
  }
}

/** A release policy file (the same file `az keyvault key create --policy` takes) as AKV's release_policy. */
function releasePolicyOf(file: string, immutable: boolean): Record<string, unknown> {
  const text = readText(file).trim();
  try {
    JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not JSON`, 'a release policy is a JSON document (see docs/release-policy.md)', 2);
  }
  return { contentType: 'application/json; charset=utf-8', data: b64url(text), immutable };
}

/** Bytes from a base64url/base64 value or a file (`@path`). */
function bytesArg(v: string | undefined, what: string): string | undefined {
  if (v === undefined) return undefined;
  if (v.startsWith('@')) {
    try {
      return readFileSync(v.slice(1)).toString('base64url');
    } catch {
      throw new CliError(`cannot read ${v.slice(1)}`, undefined, 2);
    }
  }
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) throw new CliError(`${what} must be base64url or @FILE`, undefined, 2);
  return Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('base64url');
}

const versioned = (name: string, version?: string) => `/keys/${encodeURIComponent(name)}${version ? `/${encodeURIComponent(version)}` : ''}`;

/**
 * The path and query of a list page's nextLink, to ask this CLI's server for (the server's own base URL
 * may name it otherwise); null at the last page. The server sends an absolute URL: anything else (relative,
 * malformed, not a string) is an answer this CLI cannot follow (exit 1, as the server's other errors).
 */
function nextPathOf(nextLink: unknown): string | null {
  if (nextLink === undefined || nextLink === null || nextLink === '') return null;
  let link: URL | undefined;
  try {
    link = typeof nextLink === 'string' ? new URL(nextLink) : undefined;
  } catch {
    link = undefined;
  }
  if (link === undefined || (link.protocol !== 'https:' && link.protocol !== 'http:')) {
    throw new CliError(`the server answered with a nextLink that is not an absolute http(s) URL: ${JSON.stringify(nextLink).slice(0, 200)}`, 'the server answered with a link this CLI cannot follow', 1);
  }
  return link.pathname + link.search;
}

function command(parent: Command, spec: string, description: string): Command {
  return withClientOptions(parent.command(spec).description(description)).option('-o, --output <format>', 'json or table');
}

export function registerKey(program: Command): void {
  const key = program.command('key').description('manage vault keys (AKV keys API)');

  command(key, 'create [name]', 'create a key, or a new version of it')
    .option('--name <name>', 'key name (instead of the argument)')
    .option('--kty <type>', 'RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM', 'RSA')
    .option('--size <bits>', 'RSA 2048/3072/4096, oct 128/192/256')
    .option('--curve <crv>', 'P-256, P-384, P-521, P-256K')
    .option('--ops <list>', 'comma-separated key_ops')
    .option('--exportable', 'allow Secure Key Release (needs --policy)')
    .option('--policy <file>', 'release policy JSON file')
    .option('--immutable', 'make the release policy immutable')
    .addHelpText('after', '\nExample:\n  conclave key create --exportable --kty RSA-HSM --name app-key --policy policy.json\n')
    .action(async (arg: string | undefined, f: Flags & { name?: string; kty: string; size?: string; curve?: string; ops?: string; exportable?: boolean; policy?: string; immutable?: boolean }) => {
      const name = nameOf(arg, f);
      const body: Record<string, unknown> = { kty: f.kty };
      if (f.size) body.key_size = Number(f.size);
      if (f.curve) body.crv = f.curve;
      if (f.ops) body.key_ops = f.ops.split(',');
      if (f.exportable) body.attributes = { exportable: true };
      if (f.policy) body.release_policy = releasePolicyOf(f.policy, f.immutable === true);
      const r = await createServerClient(f).call('POST', api(`/keys/${encodeURIComponent(name)}/create`), body);
      printResult(summary(r), f.output ?? defaultFormat());
    });

  command(key, 'get <name>', 'show a key (latest or --version)')
    .option('--key-version <v>', 'key version')
    .action(async (name: string, f: Flags & { keyVersion?: string }) => {
      const r = await createServerClient(f).call('GET', api(`/keys/${encodeURIComponent(name)}${f.keyVersion ? `/${f.keyVersion}` : ''}`));
      printResult(f.output === 'json' ? r : summary(r), f.output ?? defaultFormat());
    });

  command(key, 'list', 'list keys').action(async (f: Flags) => {
    const client = createServerClient(f);
    const rows: unknown[] = [];
    let next: string | null = api('/keys');
    while (next) {
      const page: { value: Array<{ kid: string; attributes: Record<string, unknown> }>; nextLink?: string | null } = await client.call('GET', next);
      for (const k of page.value) rows.push({ name: k.kid.split('/').pop(), enabled: k.attributes.enabled, exportable: k.attributes.exportable, updated: new Date(Number(k.attributes.updated) * 1000).toISOString() });
      next = nextPathOf(page.nextLink);
    }
    printResult(rows, f.output ?? defaultFormat());
  });

  command(key, 'versions <name>', 'list the versions of a key').action(async (name: string, f: Flags) => {
    const r = await createServerClient(f).call('GET', api(`/keys/${encodeURIComponent(name)}/versions?maxresults=25`));
    printResult(
      r.value.map((k: any) => ({ version: k.kid.split('/').pop(), enabled: k.attributes.enabled, created: new Date(k.attributes.created * 1000).toISOString() })),
      f.output ?? defaultFormat(),
    );
  });

  for (const [verb, method, path, what] of [
    ['rotate', 'POST', (n: string) => `/keys/${n}/rotate`, 'create a new version with the same parameters'],
    ['delete', 'DELETE', (n: string) => `/keys/${n}`, 'delete a key (recoverable for 90 days)'],
    ['recover', 'POST', (n: string) => `/deletedkeys/${n}/recover`, 'recover a deleted key'],
    ['purge', 'DELETE', (n: string) => `/deletedkeys/${n}`, 'purge a deleted key for good'],
  ] as const) {
    command(key, `${verb} <name>`, what).action(async (name: string, f: Flags) => {
      const r = await createServerClient(f).call(method, api(path(encodeURIComponent(name))));
      printResult(r ? summary(r) : { purged: name }, f.output ?? defaultFormat());
    });
  }

  command(key, 'import [name]', 'import a private key (JWK file) into the vault')
    .option('--name <name>', 'key name (instead of the argument)')
    .requiredOption('--jwk <file>', 'private JWK (RSA, EC or oct) as JSON')
    .option('--hsm', 'protect as an -HSM key')
    .option('--exportable', 'allow Secure Key Release (needs --policy)')
    .option('--policy <file>', 'release policy JSON file')
    .option('--immutable', 'make the release policy immutable')
    .action(async (arg: string | undefined, f: Flags & { name?: string; jwk: string; hsm?: boolean; exportable?: boolean; policy?: string; immutable?: boolean }) => {
      let jwk: unknown;
      try {
        jwk = JSON.parse(readText(f.jwk));
      } catch (e) {
        if (e instanceof CliError) throw e;
        throw new CliError(`${f.jwk} is not JSON`, undefined, 2);
      }
      const body: Record<string, unknown> = { key: jwk, Hsm: f.hsm === true };
      if (f.exportable) body.attributes = { exportable: true };
      if (f.policy) body.release_policy = releasePolicyOf(f.policy, f.immutable === true);
      printResult(summary(await createServerClient(f).call('PUT', api(`/keys/${encodeURIComponent(nameOf(arg, f))}`), body)), f.output ?? defaultFormat());
    });

  command(key, 'update [name]', 'update attributes, tags, key_ops or the release policy of a key version')
    .option('--name <name>', 'key name (instead of the argument)')
    .option('--key-version <v>', 'key version (default: latest)')
    .option('--enable', 'enable the key')
    .option('--disable', 'disable the key')
    .option('--ops <list>', 'comma-separated key_ops')
    .option('--tags <list>', 'comma-separated k=v tags')
    .option('--policy <file>', 'new release policy JSON file')
    .option('--immutable', 'make the release policy immutable')
    .action(async (arg: string | undefined, f: Flags & { name?: string; keyVersion?: string; enable?: boolean; disable?: boolean; ops?: string; tags?: string; policy?: string; immutable?: boolean }) => {
      if (f.enable && f.disable) throw new CliError('--enable and --disable exclude each other', undefined, 2);
      const body: Record<string, unknown> = { attributes: f.enable ? { enabled: true } : f.disable ? { enabled: false } : {} };
      if (f.ops) body.key_ops = f.ops.split(',');
      if (f.tags) body.tags = Object.fromEntries(f.tags.split(',').map((t) => t.split('=') as [string, string]));
      if (f.policy) body.release_policy = releasePolicyOf(f.policy, f.immutable === true);
      const r = await createServerClient(f).call('PATCH', api(`/keys/${encodeURIComponent(nameOf(arg, f))}/${f.keyVersion ? encodeURIComponent(f.keyVersion) : ''}`), body);
      printResult(summary(r), f.output ?? defaultFormat());
    });

  command(key, 'backup [name]', 'write an opaque backup of all versions of a key (restorable into a vault with the same master key)')
    .option('--name <name>', 'key name (instead of the argument)')
    .requiredOption('--file <file>', 'where to write the backup')
    .action(async (arg: string | undefined, f: Flags & { name?: string; file: string }) => {
      const r = await createServerClient(f).call('POST', api(`/keys/${encodeURIComponent(nameOf(arg, f))}/backup`));
      writePrivateFile(f.file, String(r.value));
      printResult({ backup: f.file, bytes: String(r.value).length }, f.output ?? defaultFormat());
    });

  command(key, 'restore', 'restore a key from a backup file')
    .requiredOption('--file <file>', 'a backup written by `conclave key backup`')
    .action(async (f: Flags & { file: string }) => {
      printResult(summary(await createServerClient(f).call('POST', api('/keys/restore'), { value: readText(f.file).trim() })), f.output ?? defaultFormat());
    });

  command(key, 'release [name]', 'release an exportable key to the TEE key named in an attestation token')
    .option('--name <name>', 'key name (instead of the argument)')
    .option('--key-version <v>', 'key version (default: latest)')
    .requiredOption('--token <file>', 'attestation token (JWT) file, or {"token": …} JSON')
    .option('--nonce <nonce>', 'nonce echoed in the signed response')
    .option('--enc <alg>', 'CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256 or RSA_AES_KEY_WRAP_384')
    .option('--private-key <file>', 'the TEE private key (PEM) to unwrap key_hsm with; without it the wrapped response is printed')
    .option('--release-trust <file>', "PEM CA certificate(s) the release JWS x5c chain must end in (default: the server's pinned CA, --ca or <data-dir>/tls/ca.pem)")
    .option('--allow-self-signed-release-cert', 'accept a single self-signed release signer (a data dir from before its CA issued release certificates); requires a pinned CA')
    .addHelpText('after', '\nExample:\n  conclave key release app-key --token token.jwt --private-key tee.pem -o json\n')
    .action(
      async (
        arg: string | undefined,
        f: Flags & { name?: string; keyVersion?: string; token: string; nonce?: string; enc?: string; privateKey?: string; releaseTrust?: string; allowSelfSignedReleaseCert?: boolean },
      ) => {
      const raw = readText(f.token).trim();
      const target = raw.startsWith('{') ? String((JSON.parse(raw) as { token?: string }).token) : raw;
      const client = createServerClient(f);
      if (f.allowSelfSignedReleaseCert && !client.caFile) throw new CliError('--allow-self-signed-release-cert requires --ca', 'pin the CA of the vault you trust (--ca, or --data-dir with tls/ca.pem)', 2);
      const name = nameOf(arg, f);
      // A fresh nonce binds the signed response to this request.
      const nonce = f.nonce ?? randomBytes(16).toString('hex');
      const body: Record<string, string> = { target, nonce };
      if (f.enc) body.enc = f.enc;
      const r = await client.call('POST', api(`${versioned(name, f.keyVersion)}/release`), body);
      const { payload } = decodeReleaseResponse(String(r.value));
      const released = payload.response.key.key as Record<string, unknown>;
      if (!f.privateKey) {
        printResult({ value: r.value, kid: released.kid, kty: released.kty, enc: payload.request.enc }, f.output ?? defaultFormat());
        return;
      }
      // Nothing is unwrapped before the response is proven: signature by x5c[0], the chain to a trust
      // anchor (or a single self-signed signer over a pinned TLS CA), the vault host in its SAN, and that
      // it answers this request (nonce, key, enc).
      // The anchors: --release-trust, else the CA pinned for the server (a Conclave's CA issues its release certificate).
      const anchors = f.releaseTrust ?? (f.allowSelfSignedReleaseCert ? undefined : client.caFile);
      if (!anchors && !f.allowSelfSignedReleaseCert) throw new CliError('the release JWS cannot be verified', 'pass --release-trust FILE, or --ca / --data-dir to pin the server CA', 2);
      try {
        const verified = verifyReleaseJws(String(r.value), {
          ...(anchors ? { trustStore: readText(anchors) } : {}),
          ...(f.allowSelfSignedReleaseCert ? { allowSelfSignedReleaseCert: true } : {}),
          vaultHost: new URL(client.url).hostname,
        });
        checkReleaseAnswersRequest(verified, { keyName: name, version: f.keyVersion, nonce, enc: f.enc });
      } catch (e) {
        if (isConclaveError(e)) throw new CliError(`the release response is not trusted: ${e.message}`, undefined, 1);
        throw e;
      }
      const privateKey = createPrivateKey(readText(f.privateKey));
      // The enc checked above (asked, echoed and, when the blob names one, in its header), not a default.
      const material = unwrapKeyTransfer(String(released.key_hsm), privateKey, (f.enc as KeyTransferEnc | undefined) ?? DEFAULT_KEY_TRANSFER_ENC);
      const jwk = released.kty === 'oct' || released.kty === 'oct-HSM' ? { kty: 'oct', k: b64url(material) } : createPrivateKey({ key: Buffer.from(material), format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
      printResult({ kid: released.kid, key: jwk }, 'json');
      },
    );

  for (const [verb, what] of [
    ['encrypt', 'encrypt with a key (RSA1_5, RSA-OAEP, RSA-OAEP-256, A*GCM, A*CBC, A*CBCPAD)'],
    ['decrypt', 'decrypt with a key'],
    ['wrap', 'wrap a key with a key (RSA-OAEP…, A*KW)'],
    ['unwrap', 'unwrap a key with a key'],
  ] as const) {
    command(key, `${verb} [name]`, what)
      .option('--name <name>', 'key name (instead of the argument)')
      .option('--key-version <v>', 'key version (default: latest)')
      .requiredOption('--alg <alg>', 'algorithm')
      .requiredOption('--value <b64url>', 'input as base64url, or @FILE')
      .option('--iv <b64url>', 'AES initialisation vector')
      .option('--aad <b64url>', 'AES-GCM additional authenticated data')
      .option('--tag <b64url>', 'AES-GCM authentication tag (decrypt)')
      .action(async (arg: string | undefined, f: Flags & { name?: string; keyVersion?: string; alg: string; value: string; iv?: string; aad?: string; tag?: string }) => {
        const body: Record<string, string> = { alg: f.alg, value: bytesArg(f.value, '--value')! };
        for (const k of ['iv', 'aad', 'tag'] as const) if (f[k]) body[k] = bytesArg(f[k], `--${k}`)!;
        const op = verb === 'wrap' ? 'wrapkey' : verb === 'unwrap' ? 'unwrapkey' : verb;
        printResult(await createServerClient(f).call('POST', api(`${versioned(nameOf(arg, f), f.keyVersion)}/${op}`), body), f.output ?? defaultFormat());
      });
  }

  command(key, 'sign [name]', 'sign a digest (RS/PS 256/384/512, ES256/384/512/256K)')
    .option('--name <name>', 'key name (instead of the argument)')
    .option('--key-version <v>', 'key version (default: latest)')
    .requiredOption('--alg <alg>', 'signature algorithm')
    .requiredOption('--digest <b64url>', 'the digest to sign, base64url or @FILE')
    .action(async (arg: string | undefined, f: Flags & { name?: string; keyVersion?: string; alg: string; digest: string }) => {
      printResult(await createServerClient(f).call('POST', api(`${versioned(nameOf(arg, f), f.keyVersion)}/sign`), { alg: f.alg, value: bytesArg(f.digest, '--digest') }), f.output ?? defaultFormat());
    });

  command(key, 'verify [name]', 'verify a signature over a digest (exit 1 when it does not verify)')
    .option('--name <name>', 'key name (instead of the argument)')
    .option('--key-version <v>', 'key version (default: latest)')
    .requiredOption('--alg <alg>', 'signature algorithm')
    .requiredOption('--digest <b64url>', 'the digest, base64url or @FILE')
    .requiredOption('--signature <b64url>', 'the signature, base64url or @FILE')
    .action(async (arg: string | undefined, f: Flags & { name?: string; keyVersion?: string; alg: string; digest: string; signature: string }) => {
      const r = await createServerClient(f).call('POST', api(`${versioned(nameOf(arg, f), f.keyVersion)}/verify`), {
        alg: f.alg,
        digest: bytesArg(f.digest, '--digest'),
        value: bytesArg(f.signature, '--signature'),
      });
      printResult(r, f.output ?? defaultFormat());
      if (r.value !== true) process.exitCode = 1;
    });
}
