/**
 * CLI conventions: exit 0 success, 1 the operation failed, 2 usage or I/O error; errors are one clear
 * line plus a hint, never a stack trace unless --debug.
 */
export class CliError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: number;
  constructor(message: string, hint?: string, exitCode = 1) {
    super(message);
    this.hint = hint;
    this.exitCode = exitCode;
  }
}

export type OutputFormat = 'json' | 'table';

export function defaultFormat(): OutputFormat {
  return process.stdout.isTTY ? 'table' : 'json';
}

/** Prints a value as JSON, or as an aligned two-column / multi-column table. */
export function printResult(value: unknown, format: OutputFormat): void {
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  if (Array.isArray(value)) {
    const rows = value as Record<string, unknown>[];
    if (rows.length === 0) {
      process.stdout.write('(none)\n');
      return;
    }
    const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    const cell = (v: unknown) => (v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
    const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
    process.stdout.write(`${cols.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`);
    for (const r of rows) process.stdout.write(`${cols.map((c, i) => cell(r[c]).padEnd(widths[i]!)).join('  ')}\n`);
    return;
  }
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    const w = Math.max(...entries.map(([k]) => k.length));
    for (const [k, v] of entries) process.stdout.write(`${k.padEnd(w)}  ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
    return;
  }
  process.stdout.write(`${String(value)}\n`);
}
