/**
 * The console's built assets (`npm run build` → dist/console/, scripts/build-console.mjs): index.html and
 * content-hashed scripts and styles, each with its gzip and brotli forms made at build time. They are read
 * once at start and served from memory.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ConsoleAsset {
  readonly contentType: string;
  readonly identity: Buffer;
  readonly gzip: Buffer;
  readonly br: Buffer;
  /** Hashed names are immutable; index.html is not. */
  readonly immutable: boolean;
}

/** What the build writes beside the assets (dist/console/manifest.json). */
export interface ConsoleManifest {
  /** The files of the first view (index.html, its script and stylesheet), with their compressed sizes. */
  readonly firstView: readonly string[];
  readonly files: Readonly<Record<string, { readonly bytes: number; readonly gzip: number; readonly br: number; readonly integrity: string }>>;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The package root: the nearest folder above this module with Conclave's package.json (src/ under tsx, dist/src/ when built). */
export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'conclave') return dir;
    if (dirname(dir) === dir) throw new Error(`no Conclave package.json above ${from}`);
  }
}

export function consoleAssetDir(): string {
  return join(packageRoot(), 'dist', 'console');
}

/** Loads the built console, or undefined when it was not built (the routes then answer console.unavailable). */
export function loadConsoleAssets(dir = consoleAssetDir()): { manifest: ConsoleManifest; files: Map<string, ConsoleAsset> } | undefined {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) return undefined;
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as ConsoleManifest;
  const files = new Map<string, ConsoleAsset>();
  for (const name of Object.keys(manifest.files)) {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`console manifest names an odd file: ${name}`);
    const ext = name.slice(name.lastIndexOf('.'));
    files.set(name, {
      contentType: TYPES[ext] ?? 'application/octet-stream',
      identity: readFileSync(join(dir, name)),
      gzip: readFileSync(join(dir, `${name}.gz`)),
      br: readFileSync(join(dir, `${name}.br`)),
      immutable: name !== 'index.html',
    });
  }
  return { manifest, files };
}

/** The encoding to send for an Accept-Encoding header: brotli, then gzip, else none (q=0 honoured). */
export function pickEncoding(accept: string | undefined): 'br' | 'gzip' | undefined {
  const offered = new Map<string, number>();
  for (const part of (accept ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)).find((m) => m)?.[1];
    if (name) offered.set(name, q === undefined ? 1 : Number(q));
  }
  const ok = (n: string) => (offered.get(n) ?? offered.get('*') ?? 0) > 0;
  if (ok('br')) return 'br';
  if (ok('gzip')) return 'gzip';
  return undefined;
}
