// node:test reporter used by scripts/run-tests.mjs beside the spec reporter: at the end it names the pass,
// its failed files and its slowest files, and records each file's duration (the sum of its top-level tests)
// in CONCLAVE_TEST_TIMES, which the next run uses to start the longest files first.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';

const pass = process.env.CONCLAVE_TEST_PASS ?? 'sqlite';
const timesFile = process.env.CONCLAVE_TEST_TIMES;

export default async function* reporter(source) {
  const ms = new Map();
  const failed = new Set();
  for await (const ev of source) {
    if ((ev.type === 'test:pass' || ev.type === 'test:fail') && ev.data.nesting === 0) {
      const key = ev.data.file ? relative(process.cwd(), ev.data.file) : ev.data.name;
      ms.set(key, (ms.get(key) ?? 0) + (ev.data.details?.duration_ms ?? 0));
      if (ev.type === 'test:fail') failed.add(key);
    }
  }
  const rows = [...ms].sort((a, b) => b[1] - a[1]);
  yield `\n${pass} pass, slowest files: ${rows.slice(0, 6).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')}\n`;
  if (failed.size > 0) yield `${pass} pass, failed files:\n${[...failed].map((f) => `  ${f}`).join('\n')}\n`;
  if (!timesFile) return;
  let times = {};
  try {
    times = JSON.parse(readFileSync(timesFile, 'utf8'));
  } catch {}
  for (const [k, v] of rows) times[k] = Math.round(v);
  const tmp = `${timesFile}.${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(times)}\n`);
  renameSync(tmp, timesFile);
}
