#!/usr/bin/env node
// Builds the web console (src/console/) into dist/console/: one content-hashed script and stylesheet,
// index.html naming them with Subresource Integrity, a gzip and a brotli copy of each file, and
// manifest.json (what the server serves, and the compressed size of the first view). Run by `npm run build`.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The first view must stay under this many compressed bytes (issue #19); the build fails above it. */
export const FIRST_VIEW_BUDGET = 150 * 1024;

function indexHtml(js, css, integrity) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Conclave console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/assets/${css}" integrity="${integrity[css]}">
<script type="module" src="/console/assets/${js}" integrity="${integrity[js]}"></script>
</head>
<body>
<div id="app"><noscript>The Conclave console needs JavaScript. The same operations are in the <code>conclave</code> CLI.</noscript></div>
</body>
</html>
`;
}

/** Builds into `outdir` (replaced as a whole, so no stale hashed file survives). Returns the manifest. */
export async function buildConsole({ outdir = join(root, 'dist', 'console'), minify = true } = {}) {
  const staging = `${outdir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: { main: 'src/console/main.tsx' },
    bundle: true,
    format: 'esm',
    target: ['chrome115', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: 'src/console/tsconfig.json',
    minify,
    legalComments: 'none',
    outdir: staging,
    entryNames: '[name].[hash]',
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const js = outputs.find((f) => f.endsWith('.js'));
  const css = outputs.find((f) => f.endsWith('.css'));
  if (!js || !css) throw new Error(`console build made ${outputs.join(', ')}: expected one script and one stylesheet`);
  const integrity = {};
  for (const f of [js, css]) integrity[f] = `sha384-${createHash('sha384').update(readFileSync(join(staging, f))).digest('base64')}`;
  writeFileSync(join(staging, 'index.html'), indexHtml(js, css, integrity));

  const files = {};
  for (const f of readdirSync(staging)) {
    const body = readFileSync(join(staging, f));
    const gz = gzipSync(body, { level: 9 });
    const br = brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
    writeFileSync(join(staging, `${f}.gz`), gz);
    writeFileSync(join(staging, `${f}.br`), br);
    files[f] = { bytes: body.length, gzip: gz.length, br: br.length, integrity: integrity[f] ?? `sha384-${createHash('sha384').update(body).digest('base64')}` };
  }
  const firstView = ['index.html', js, css];
  const firstViewGzip = firstView.reduce((n, f) => n + files[f].gzip, 0);
  if (firstViewGzip > FIRST_VIEW_BUDGET) throw new Error(`console first view is ${firstViewGzip} bytes gzip, over the ${FIRST_VIEW_BUDGET}-byte budget`);
  const manifest = { firstView, firstViewGzip, files };
  writeFileSync(join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(dirname(outdir), { recursive: true });
  renameSync(staging, outdir);
  return manifest;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const m = await buildConsole();
  console.log(`console: ${m.firstView.map((f) => `${f} ${m.files[f].gzip} B gzip`).join(', ')}; first view ${m.firstViewGzip} B gzip`);
}
