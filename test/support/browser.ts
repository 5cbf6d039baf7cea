import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * The browser tests' harness: Debian's Chromium (/usr/bin/chromium, which `npm test` installs with
 * scripts/ensure-chromium.sh) driven by playwright-core. No browser is ever downloaded; without
 * Chromium the tests fail, naming the package, instead of being skipped.
 */

export const CHROMIUM = '/usr/bin/chromium';

/** Where screenshots go: test-output/screenshots/ at the repository's root (ignored by git). */
export const SCREENSHOTS = fileURLToPath(new URL('../../test-output/screenshots/', import.meta.url));

export interface LaunchedBrowser {
  context: BrowserContext;
  /** A new tab. */
  newPage(): Promise<Page>;
  /** Closes the browser and removes its profile folder. */
  cleanup(): Promise<void>;
}

/**
 * A headless Chromium with a fresh profile in a temporary folder. The pages keep their own
 * Content-Security-Policy (it is not bypassed): a violation shows up as a console error.
 *
 * @example
 * const browser = await launchBrowser({ locale: 'en-US' });
 * try { const page = await browser.newPage(); await page.goto(url); } finally { await browser.cleanup(); }
 */
export async function launchBrowser(options: { locale?: string } = {}): Promise<LaunchedBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install the Debian package chromium (bash scripts/ensure-chromium.sh does it as root; npm test runs it first)`);
  }
  const userDataDir = await mkdtemp(join(tmpdir(), 'bstore-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
      locale: options.locale ?? 'en-US',
      viewport: { width: 1280, height: 800 },
    });
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true });
    throw err;
  }
  let closed: Promise<void> | undefined;
  return {
    context,
    newPage: () => context.newPage(),
    cleanup: () =>
      (closed ??= (async () => {
        try {
          await context.close();
        } finally {
          await rm(userDataDir, { recursive: true, force: true });
        }
      })()),
  };
}

/**
 * What went wrong in a page while it was watched: console errors (a CSP violation and a failed load
 * are among them) and uncaught exceptions. Call before the page navigates.
 */
export function watchPage(page: Page): { problems: string[] } {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  return { problems };
}

/** Saves a full-page screenshot as test-output/screenshots/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name.replace(/[^A-Za-z0-9._-]+/g, '-')}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** One accessibility rule axe-core found broken, with the elements that break it. */
export interface AxeViolation {
  id: string;
  impact?: 'minor' | 'moderate' | 'serious' | 'critical' | null;
  help: string;
  helpUrl: string;
  nodes: { html: string; target: unknown[]; failureSummary?: string }[];
}

let axeSource: string | undefined;

/**
 * Runs axe-core on the page as it is now and returns the serious and critical violations (an
 * empty list when there are none). axe is evaluated through the DevTools protocol, which the
 * page's CSP (no inline scripts) does not block, so the CSP stays on.
 *
 * @example
 * expect(await axeCheck(page)).toEqual([]);
 */
export async function axeCheck(page: Page): Promise<AxeViolation[]> {
  axeSource ??= await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  const loaded = await page.evaluate(`(() => { if (!globalThis.axe) { ${axeSource}\n } return typeof globalThis.axe?.run === 'function'; })()`);
  if (loaded !== true) throw new Error('axe-core did not load in the page');
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(context: unknown, options: object): Promise<{ violations: AxeViolation[] }> } }).axe;
    const document = (globalThis as unknown as { document: unknown }).document;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    // Only what can cross back: plain data, no elements.
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact ?? null,
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ html: n.html, target: n.target, ...(n.failureSummary ? { failureSummary: n.failureSummary } : {}) })),
    }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** The violations as readable lines, for an assertion's message. */
export function describeViolations(violations: readonly AxeViolation[]): string {
  return violations.map((v) => `${v.impact ?? '?'} ${v.id}: ${v.help} (${v.helpUrl})\n${v.nodes.map((n) => `  ${n.html}`).join('\n')}`).join('\n');
}
