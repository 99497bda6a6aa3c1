/** `conclave key …`: the vault's keys over the AKV REST API. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { LATEST_API_VERSION } from '../vault/key.js';
import { type ClientFlags, createServerClient, withClientOptions } from './client.js';
import { CliError, defaultFormat, type OutputFormat, printResult } from './output.js';

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

function command(parent: Command, spec: string, description: string): Command {
  return withClientOptions(parent.command(spec).description(description)).option('-o, --output <format>', 'json or table');
}

export function registerKey(program: Command): void {
  const key = program.command('key').description('manage vault keys (AKV keys API)');

  command(key, 'create <name>', 'create a key, or a new version of it')
    .option('--kty <type>', 'RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM', 'RSA')
    .option('--size <bits>', 'RSA 2048/3072/4096, oct 128/192/256')
    .option('--curve <crv>', 'P-256, P-384, P-521, P-256K')
    .option('--ops <list>', 'comma-separated key_ops')
    .option('--exportable', 'allow Secure Key Release (needs --policy)')
    .option('--policy <file>', 'release policy JSON file')
    .option('--immutable', 'make the release policy immutable')
    .action(async (name: string, f: Flags & { kty: string; size?: string; curve?: string; ops?: string; exportable?: boolean; policy?: string; immutable?: boolean }) => {
      const body: Record<string, unknown> = { kty: f.kty };
      if (f.size) body.key_size = Number(f.size);
      if (f.curve) body.crv = f.curve;
      if (f.ops) body.key_ops = f.ops.split(',');
      if (f.exportable) body.attributes = { exportable: true };
      if (f.policy) {
        let text: string;
        try {
          text = readFileSync(f.policy, 'utf8');
        } catch {
          throw new CliError(`cannot read ${f.policy}`, undefined, 2);
        }
        body.release_policy = { contentType: 'application/json; charset=utf-8', data: Buffer.from(text.trim()).toString('base64url'), immutable: f.immutable === true };
      }
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
      next = page.nextLink ? new URL(page.nextLink).pathname + new URL(page.nextLink).search : null;
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
}
