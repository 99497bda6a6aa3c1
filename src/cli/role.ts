/** `conclave role …`: Azure RBAC role assignments of the vault (administration API). */
import type { Command } from 'commander';
import { ROLE_NAMES } from '../vault/roles.js';
import { type ClientFlags, createServerClient, withClientOptions } from './client.js';
import { defaultFormat, type OutputFormat, printResult } from './output.js';

type Flags = ClientFlags & { output?: OutputFormat };

export function registerRole(program: Command): void {
  const role = program.command('role').description('manage vault role assignments');

  withClientOptions(role.command('assign').description(`assign a role: ${ROLE_NAMES.join(', ')}`))
    .requiredOption('--principal <id>', 'client id of the principal')
    .requiredOption('--role <name>', 'role name (quoted), e.g. "Key Vault Crypto Service Release User"')
    .option('--scope <scope>', '"/" (the vault) or "/keys/{name}"', '/')
    .option('-o, --output <format>', 'json or table')
    .action(async (f: Flags & { principal: string; role: string; scope: string }) => {
      const r = await createServerClient(f).call('PUT', '/admin/vault/roleAssignments', { principalId: f.principal, role: f.role, scope: f.scope });
      printResult(r, f.output ?? defaultFormat());
    });

  withClientOptions(role.command('list').description('list role assignments'))
    .option('-o, --output <format>', 'json or table')
    .action(async (f: Flags) => {
      const r = await createServerClient(f).call('GET', '/admin/vault/roleAssignments');
      printResult(r.value, f.output ?? defaultFormat());
    });

  withClientOptions(role.command('remove <id>').description('remove a role assignment'))
    .option('-o, --output <format>', 'json or table')
    .action(async (id: string, f: Flags) => {
      await createServerClient(f).call('DELETE', `/admin/vault/roleAssignments/${encodeURIComponent(id)}`);
      printResult({ removed: id }, f.output ?? defaultFormat());
    });
}
