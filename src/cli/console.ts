/**
 * `conclave console`: prints a one-time sign-in link to the web console (docs/console.md). The link signs
 * in as the principal whose credential the command uses (by default the administrator of `--data-dir`),
 * once, within five minutes.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { type ClientFlags, createServerClient, withClientOptions } from './client.js';

/** The platform's "open this URL" command. */
function opener(): { cmd: string; args: string[] } {
  if (process.platform === 'darwin') return { cmd: 'open', args: [] };
  if (process.platform === 'win32') return { cmd: 'cmd', args: ['/c', 'start', '""'] };
  return { cmd: 'xdg-open', args: [] };
}

export function registerConsole(program: Command): void {
  withClientOptions(program.command('console').description('print a one-time sign-in link to the web console (single use, valid 5 minutes)'))
    .option('--open', 'also open the link in the default browser')
    .addHelpText('after', '\nExample:\n  conclave console --data-dir ./data\n')
    .action(async (f: ClientFlags & { open?: boolean }) => {
      const r = (await createServerClient(f).call('POST', '/console/api/sign-in-codes')) as { url: string; expiresAt: string };
      process.stdout.write(`${r.url}\n`);
      process.stderr.write(`Open the link above in a browser: it signs you in once, until ${r.expiresAt}.\n`);
      if (f.open) {
        const o = opener();
        spawn(o.cmd, [...o.args, r.url], { stdio: 'ignore', detached: true })
          .on('error', () => process.stderr.write(`could not run ${o.cmd}: open the link by hand\n`))
          .unref();
      }
    });
}
