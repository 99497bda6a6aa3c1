/**
 * Headless Chromium for the console's browser tests: Debian's /usr/bin/chromium (or CONCLAVE_CHROMIUM)
 * driven by playwright-core, one browser per test file with a fresh (temporary) profile, trusting exactly the test
 * server's TLS key. Without the browser the tests skip, except under CI=true, where they fail.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { packageRoot } from '../../src/server/console/assets.js';

export const CHROMIUM = process.env.CONCLAVE_CHROMIUM ?? '/usr/bin/chromium';

/** `skip` for describe(): a reason outside CI when the browser is missing; never under CI=true. */
export function skipWithoutBrowser(): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: CI runs the console's browser tests (.ci/run installs chromium)`);
  return `no Chromium at ${CHROMIUM} (install Debian's chromium or set CONCLAVE_CHROMIUM)`;
}

/** The base64 SHA-256 of a certificate's SubjectPublicKeyInfo (Chromium's --ignore-certificate-errors-spki-list). */
export function spkiHash(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
}

export interface TestBrowser {
  readonly browser: Browser;
  readonly context: BrowserContext;
  readonly page: Page;
  /** Console messages and page errors seen so far (CSP and Trusted Types violations land here). */
  readonly problems: string[];
  /** Another context (its own cookies: another user), with the same viewport, locale and waits. */
  newContext(): Promise<BrowserContext>;
  /** Saves a full-page screenshot under test-artifacts/console/. */
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * How long an action or a wait for a condition may take. The tests assert conditions, never timings: on a
 * loaded two-core machine a page can take a while, and a generous wait only costs time when a test fails.
 */
export const WAIT_MS = 180_000;

export const ARTIFACTS = join(packageRoot(), 'test-artifacts', 'console');

export async function launchBrowser(serverDataDir: string): Promise<TestBrowser> {
  const spki = spkiHash(readFileSync(join(serverDataDir, 'tls', 'server.pem'), 'utf8'));
  // launch() gives Chromium a fresh --user-data-dir of its own (a temporary profile), removed on close.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ignore-certificate-errors-spki-list=${spki}`,
    ],
  });
  const newContext = async () => {
    const c = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-GB', timezoneId: 'UTC' });
    c.setDefaultTimeout(WAIT_MS);
    c.setDefaultNavigationTimeout(WAIT_MS);
    return c;
  };
  const context = await newContext();
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    browser,
    context,
    page,
    problems,
    newContext,
    async screenshot(name) {
      const path = join(ARTIFACTS, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    async close() {
      await browser.close();
    },
  };
}

let axeSource: string | undefined;

/** The serious and critical violations axe-core finds on the page (WCAG 2.1 A and AA, and best practices). */
export async function axeViolations(page: Page): Promise<{ id: string; impact: string; help: string; nodes: string[] }[]> {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern, once per document: the
  // console moves between its pages by the address's hash, so the document, and axe in it, stay, and the
  // half-megabyte script need not be sent and compiled again for every check.
  if (!(await page.evaluate(() => 'axe' in globalThis))) {
    axeSource ??= readFileSync(join(packageRoot(), 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
    await page.evaluate(axeSource);
  }
  const result = (await page.evaluate(`axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } })`)) as {
    violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[];
  };
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
}
