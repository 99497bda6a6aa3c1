/**
 * `conclave console`: prints a one-time sign-in link to the web console (docs/console.md). The link signs
 * in as the principal whose credential the command uses (by default the administrator of `--data-dir`),
 * once, within five minutes.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { type ClientFlags, createServerClient, withClientOptions } from './client.js';
import { CliError } from './output.js';

/** The code's expiry as the server writes it (Date#toISOString): printed to the terminal, so nothing else is. */
const EXPIRY = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,3})?Z$/;

/** A server's answer quoted in an error: JSON, and nothing but printable ASCII (no C1 control reaches the terminal). */
function quoted(v: unknown): string {
  return (JSON.stringify(v) ?? String(v)).slice(0, 200).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A console sign-in link as the server builds it (`<public URL>/console/#code=<43 base64url>`): http(s),
 * a plain host name or address, nothing else. The link comes from the server's answer and goes to the
 * terminal and, with --open, to the desktop's opener: another scheme would open a local file or
 * application, and `&`, `|` or `^` are commands to `cmd /c start`.
 */
const SIGN_IN_LINK = /^https?:\/\/(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?(?:\/[A-Za-z0-9._~-]+)*\/console\/#code=[A-Za-z0-9_-]{43}$/;

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
      const r = (await createServerClient(f).call('POST', '/console/api/sign-in-codes')) as { url: unknown; expiresAt: unknown };
      if (typeof r.url !== 'string' || !SIGN_IN_LINK.test(r.url)) {
        throw new CliError(`the server answered ${quoted(r.url)}, which is not a console sign-in link (http(s)://host/console/#code=…): not printed, not opened`, 'is --url the Conclave server you meant?', 2);
      }
      if (typeof r.expiresAt !== 'string' || !EXPIRY.test(r.expiresAt)) {
        throw new CliError('the server answered an expiry that is not a time (an ISO 8601 UTC timestamp): the link is not printed, not opened', 'is --url the Conclave server you meant?', 2);
      }
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
