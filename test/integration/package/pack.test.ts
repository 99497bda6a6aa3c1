/**
 * The npm package as a user gets it: `npm pack`, installed into an empty project, imported by its
 * documented entry points (`conclave`, `conclave/errors`, `conclave/server`), with type declarations, and
 * the `conclave` binary run from the install (`--version`, `serve`). The install is `npm ci --offline`,
 * from the npm cache our own `npm ci` filled (tests reach nothing but 127.0.0.1); the two native modules
 * are taken from this checkout's build (same Node ABI), so the test compiles nothing.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT as root } from '../../helpers/root.js';

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  exports: Record<string, string | { types: string; default: string }>;
};
const NATIVE = ['better-sqlite3', 'pkcs11js'];

let work: string;
let app: string;
let files: string[] = [];
let installError: string | undefined;

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });
}

/**
 * The scratch project's lockfile: the tarball, and the production packages of our own lockfile at their
 * locked versions and integrity hashes, so `npm ci --offline` installs from the npm cache alone.
 */
function scratchLock(tarball: string): Record<string, unknown> {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; link?: boolean }> };
  const spec = `file:../${tarball}`;
  const packages: Record<string, unknown> = {
    '': { name: 'scratch', version: '1.0.0', dependencies: { conclave: spec } },
    'node_modules/conclave': { version: pkg.version, resolved: spec, dependencies: pkg.dependencies, bin: pkg.bin },
  };
  for (const [path, entry] of Object.entries(lock.packages)) if (path.startsWith('node_modules/') && !entry.dev && !entry.link) packages[path] = entry;
  return { name: 'scratch', version: '1.0.0', lockfileVersion: 3, requires: true, packages };
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'conclave-pack-'));
  // dist/ is what `npm test` just built; prepack (clean + build) is not run again here.
  const [packed] = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], root)) as { filename: string; files: { path: string }[] }[];
  files = packed!.files.map((f) => f.path);
  app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch', version: '1.0.0', private: true, type: 'module', dependencies: { conclave: `file:../${packed!.filename}` } }));
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify(scratchLock(packed!.filename)));
  try {
    npm(['ci', '--offline', '--ignore-scripts'], app);
  } catch (e) {
    installError = String((e as { stderr?: string }).stderr ?? e);
    return;
  }
  for (const m of NATIVE) cpSync(join(root, 'node_modules', m, 'build'), join(app, 'node_modules', m, 'build'), { recursive: true });
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function installed(): void {
  if (installError) assert.fail(`npm ci --offline of the tarball failed (run npm ci in the checkout first: it fills the npm cache):\n${installError}`);
}

describe('npm pack', () => {
  test('the tarball holds the binary, compiled code and declarations, and no tests, sources or maps', () => {
    assert.ok(files.includes('bin/conclave.js'));
    assert.ok(files.includes('package.json'));
    assert.ok(files.includes('README.md'));
    assert.ok(files.includes('dist/console/index.html') && files.includes('dist/console/manifest.json'), 'the built web console is packed');
    assert.deepEqual(files.filter((f) => /\.test\.|\.map$|^src\/|^test\/|^bench\//.test(f)), []);
    // Every compiled file has its source: nothing stale from a moved or deleted module.
    const stale = files.filter((f) => f.startsWith('dist/src/') && f.endsWith('.js') && !existsSync(join(root, f.replace(/^dist\//, '').replace(/\.js$/, '.ts'))));
    assert.deepEqual(stale, []);
  });

  test('every export points at a file in the tarball, with its type declarations', () => {
    for (const [name, target] of Object.entries(pkg.exports)) {
      const paths = typeof target === 'string' ? [target] : [target.default, target.types];
      for (const p of paths) assert.ok(files.includes(p.replace(/^\.\//, '')), `${name} → ${p} is not in the package`);
    }
  });
});

describe('the installed package', () => {
  test("import { attestAndRelease } from 'conclave' works in a scratch project, and so do conclave/errors and conclave/server", () => {
    installed();
    writeFileSync(
      join(app, 'use.mjs'),
      [
        "import { attestAndRelease, releaseKey, verifyAttestationToken } from 'conclave';",
        "import { ConclaveError, ERROR_CATALOGUE } from 'conclave/errors';",
        "import { startServer } from 'conclave/server';",
        "console.log(JSON.stringify([typeof attestAndRelease, typeof releaseKey, typeof verifyAttestationToken, typeof ConclaveError, typeof ERROR_CATALOGUE, typeof startServer]));",
      ].join('\n'),
    );
    const out = execFileSync(process.execPath, ['use.mjs'], { cwd: app, encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), ['function', 'function', 'function', 'function', 'object', 'function']);
  });

  test('TypeScript resolves the declarations of every export', () => {
    installed();
    writeFileSync(
      join(app, 'use.ts'),
      [
        "import { type AttestAndReleaseOptions, attestAndRelease } from 'conclave';",
        "import { ConclaveError } from 'conclave/errors';",
        "import type { RunningServer } from 'conclave/server';",
        'export const f: typeof attestAndRelease = attestAndRelease;',
        'export type O = AttestAndReleaseOptions;',
        'export type S = RunningServer;',
        "export const e = new ConclaveError('request.invalid', 'x');",
      ].join('\n'),
    );
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')] }, files: ['use.ts'] }));
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8' });
  });

  test('npx conclave --version prints the package version', () => {
    installed();
    const out = execFileSync(join(app, 'node_modules', '.bin', 'conclave'), ['--version'], { cwd: app, encoding: 'utf8' });
    assert.equal(out.trim(), pkg.version);
  });

  test('conclave serve starts from the install and answers /healthz', async () => {
    installed();
    const data = join(work, 'data');
    const child: ChildProcess = spawn(join(app, 'node_modules', '.bin', 'conclave'), ['serve', '--simulate', '--port', '0', '--host', '127.0.0.1', '--data-dir', data, '--log-level', 'silent'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolveUrl, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 60_000);
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /conclave listening on (https:\/\/\S+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolveUrl(m[1]!);
          }
        });
        child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
      });
      const ca = readFileSync(join(data, 'tls', 'ca.pem'));
      const status = (path: string) =>
        new Promise<number>((resolveStatus, reject) => {
          request(`${url}${path}`, { ca }, (res) => {
            res.resume();
            resolveStatus(res.statusCode ?? 0);
          })
            .on('error', reject)
            .end();
        });
      assert.equal(await status('/healthz'), 200);
      assert.equal(await status('/console/'), 200, 'the web console is built into the package');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});

