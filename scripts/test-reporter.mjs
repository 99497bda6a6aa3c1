// node:test reporter used by scripts/run-tests.mjs beside the spec reporter: at the end it names the pass,
// its failed files and its slowest files, and records each file's duration (the sum of its top-level tests)
// in CONCLAVE_TEST_TIMES, which the next run uses to start the longest files first. Several test files may
// share one process (a batch, CONCLAVE_TEST_BATCHES maps its entry module to its files): node:test reports
// each test under the .ts file that declared it, so the figures stay per file; a batch that fails as a whole
// (a crash, an exit code) is named with its files and the file whose test started last.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, relative } from 'node:path';

const pass = process.env.CONCLAVE_TEST_PASS ?? 'sqlite';
const timesFile = process.env.CONCLAVE_TEST_TIMES;

export default async function* reporter(source) {
  const ms = new Map();
  const failed = new Set();
  /** .ts file -> the last top-level test started in it */
  const lastStarted = new Map();
  let order = 0;
  for await (const ev of source) {
    if (ev.data?.nesting !== 0 || !ev.data.file) {
      if ((ev.type === 'test:pass' || ev.type === 'test:fail') && ev.data?.nesting === 0) {
        ms.set(ev.data.name, (ms.get(ev.data.name) ?? 0) + (ev.data.details?.duration_ms ?? 0));
        if (ev.type === 'test:fail') failed.add(ev.data.name);
      }
      continue;
    }
    const key = relative(process.cwd(), ev.data.file);
    if (ev.type === 'test:start') lastStarted.set(key, { name: ev.data.name, order: order++ });
    if (ev.type === 'test:pass' || ev.type === 'test:fail') {
      ms.set(key, (ms.get(key) ?? 0) + (ev.data.details?.duration_ms ?? 0));
      if (ev.type === 'test:fail') failed.add(key);
    }
  }
  let batches = {};
  try {
    batches = JSON.parse(readFileSync(process.env.CONCLAVE_TEST_BATCHES ?? '', 'utf8'));
  } catch {}
  const rows = [...ms].filter(([k]) => !(k in batches)).sort((a, b) => b[1] - a[1]);
  // A batch whose process was killed or crashed hard may report nothing more than the tests it finished (node:test
  // names a file's failed exit only when none of its tests failed); its entry's .exit marker is then missing.
  // Only this pass's batches (<pass>-NNN.mjs): the other passes' may still be running.
  for (const entry of Object.keys(batches)) if (basename(entry).startsWith(`${pass}-`) && !existsSync(`${entry}.exit`)) failed.add(entry);
  yield `\n${pass} pass, slowest files: ${rows.slice(0, 6).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')}\n`;
  if (failed.size > 0) {
    const lines = [...failed].map((f) => {
      const members = batches[f];
      if (!members) return `  ${f}`;
      const last = members.filter((m) => lastStarted.has(m)).sort((a, b) => lastStarted.get(b).order - lastStarted.get(a).order)[0];
      const how = existsSync(`${f}.exit`) ? 'failed' : 'ended without exiting (killed or crashed)';
      return `  ${f}: its process ${how}; it ran ${members.join(', ')}${last ? `; the last test it reported starting: ${last} "${lastStarted.get(last).name}"` : ''}`;
    });
    yield `${pass} pass, failed files:\n${lines.join('\n')}\n`;
  }
  if (!timesFile) return;
  let times = {};
  try {
    times = JSON.parse(readFileSync(timesFile, 'utf8'));
  } catch {}
  // Only the repository's own files: a batch entry or a test without a source-mapped location lives in .tmp/.
  for (const [k, v] of rows) if (!k.startsWith('.tmp/') && !k.startsWith('..')) times[k] = Math.round(v);
  const tmp = `${timesFile}.${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(times)}\n`);
  renameSync(tmp, timesFile);
}
