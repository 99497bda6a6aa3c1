/**
 * Helpers for the web console's tests: the built assets they need (`npm run build`, which `npm test`
 * runs first) and a session opened the way the browser opens one.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { consoleAssetDir, packageRoot } from '../../src/server/console/assets.js';
import type { TestServer } from './server.js';

/** Throws unless dist/console is built and newer than every source file of the console. */
export function requireConsoleBuild(): void {
  const manifest = join(consoleAssetDir(), 'manifest.json');
  let built: number;
  try {
    built = statSync(manifest).mtimeMs;
  } catch {
    throw new Error('the console is not built: run `npm run build` (npm test does) before the console tests');
  }
  const src = join(packageRoot(), 'src', 'console');
  const newest = Math.max(...readdirSync(src, { recursive: true, encoding: 'utf8' }).map((f) => statSync(join(src, f)).mtimeMs));
  if (newest > built) throw new Error('dist/console is older than src/console: run `npm run build` (or node scripts/build-console.mjs)');
}

export interface ConsoleSession {
  /** The Cookie header value. */
  readonly cookie: string;
  readonly csrf: string;
  /** The raw Set-Cookie header of the sign-in answer. */
  readonly setCookie: string;
  readonly body: any;
}

/** Signs in with a one-time code of the administrator, as the console's first request does. */
export async function consoleSignIn(server: TestServer, body?: Record<string, string>): Promise<ConsoleSession> {
  let b = body;
  if (!b) {
    const c = await server.send('POST', '/console/api/sign-in-codes', { headers: { authorization: `Bearer ${await server.adminToken()}` } });
    if (c.status !== 201) throw new Error(`sign-in code: ${c.status} ${c.text}`);
    b = { code: new URL(c.json().url).hash.replace('#code=', '') };
  }
  const r = await server.send('POST', '/console/api/session', { headers: { origin: server.url }, body: b });
  if (r.status !== 200) throw new Error(`console sign-in: ${r.status} ${r.text}`);
  const setCookie = String(r.headers['set-cookie']);
  return { cookie: setCookie.split(';')[0]!, csrf: r.json().csrfToken, setCookie, body: r.json() };
}

/** Headers of a same-origin console request with the session (writes carry the CSRF token and Origin). */
export function sessionHeaders(server: TestServer, s: ConsoleSession, write = false): Record<string, string> {
  return write ? { cookie: s.cookie, origin: server.url, 'sec-fetch-site': 'same-origin', 'x-csrf-token': s.csrf } : { cookie: s.cookie };
}
