/**
 * Generates the reference docs that must not drift from the code: docs/errors.md from the error
 * catalogue and docs/cli.md from the command definitions. `node --import tsx scripts/gen-docs.ts`
 * rewrites them; test/docs.test.ts fails when a committed copy is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/main.js';
import { ERROR_CATALOGUE } from '../src/core/errors.js';

export function renderErrorsDoc(): string {
  const lines = [
    '# Errors',
    '',
    'Every failure is a `ConclaveError` with a stable dotted `code`, an HTTP status and a safe message (see `src/core/errors.ts`).',
    'Each API family renders it in its own wire shape: AKV and MAA as `{"error":{"code","message"}}` (AKV maps the code to',
    "AKV's names such as `KeyNotFound`, `BadParameter`, `Forbidden`, `Conflict` and keeps ours in `error.innererror.code`),",
    'PCS/THIM/KDS routes as the status plus `Error-Code` and `Error-Message` headers, other routes as',
    '`{"error":{"code","message","detail"}}`. Clients and tests should match on `code`, never on message text.',
    '',
    'Generated from the catalogue by `node --import tsx scripts/gen-docs.ts`; a test fails when this file is stale.',
    '',
    '| code | HTTP status | meaning |',
    '|---|---|---|',
  ];
  for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) lines.push(`| \`${code}\` | ${spec.status} | ${spec.meaning} |`);
  return `${lines.join('\n')}\n`;
}

/** The whole `--help` text of a command, including the examples added after the option list. */
export function fullHelp(cmd: Command): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  cmd.outputHelp();
  return text.trimEnd();
}

/** Every runnable (leaf) command with its full name. */
export function leafCommands(cmd: Command = buildProgram(), path: string[] = []): { name: string; cmd: Command }[] {
  const name = [...path, cmd.name()];
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  if (subs.length === 0) return path.length > 0 ? [{ name: name.join(' '), cmd }] : [];
  return subs.flatMap((c) => leafCommands(c, name));
}

function walk(cmd: Command, path: string[], out: string[]): void {
  const name = [...path, cmd.name()].join(' ');
  if (path.length > 0) {
    out.push(`## \`${name}\``, '', '```', fullHelp(cmd), '```', '');
  }
  for (const sub of cmd.commands) walk(sub, path.length === 0 ? ['conclave'] : [...path, cmd.name()], out);
}

export function renderCliReference(): string {
  const program = buildProgram();
  const out = [
    '# CLI reference',
    '',
    'Generated from the command definitions by `node --import tsx scripts/gen-docs.ts`; a test fails when this file is stale.',
    'Every command takes `--help`. Exit codes: 0 success, 1 the operation failed, 2 usage or I/O error.',
    '',
    '```',
    fullHelp(program),
    '```',
    '',
  ];
  for (const sub of program.commands) walk(sub, ['conclave'], out);
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n')}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc());
  writeFileSync(new URL('../docs/cli.md', import.meta.url), renderCliReference());
  console.log('wrote docs/errors.md and docs/cli.md');
}
