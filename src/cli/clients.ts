/** `conclave client create`: register an OAuth client (client credentials) through the administration API. */
import type { Command } from 'commander';
import { type ClientFlags, createServerClient, withClientOptions } from './client.js';
import { writePrivateFile } from './files.js';
import { defaultFormat, type OutputFormat, printResult } from './output.js';

type Flags = ClientFlags & { output?: OutputFormat; out?: string };

export function registerClients(program: Command): void {
  const client = program.command('client').description('manage OAuth clients (client credentials) of the server');
  withClientOptions(client.command('create <displayName>').description('register a client; it holds no role until one is assigned (conclave role assign)'))
    .option('--out <file>', 'write the credential {clientId, clientSecret, tokenEndpoint} to this file (0600, never through a symlink) instead of printing the secret')
    .option('-o, --output <format>', 'json or table')
    .action(async (displayName: string, f: Flags) => {
      const server = createServerClient(f);
      const r = await server.call<{ clientId: string; clientSecret: string }>('POST', '/admin/clients', { displayName });
      const credential = { clientId: r.clientId, clientSecret: r.clientSecret, tokenEndpoint: `${server.url.replace(/\/+$/, '')}/oauth2/token` };
      if (f.out) {
        writePrivateFile(f.out, `${JSON.stringify(credential, null, 2)}\n`);
        printResult({ clientId: r.clientId, credentialFile: f.out }, f.output ?? defaultFormat());
      } else {
        printResult(credential, f.output ?? defaultFormat());
      }
    });
}
