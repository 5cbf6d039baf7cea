import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedSystem } from '@bstore/launcher';
import { startTestSystem } from './support/system.ts';
import { axeCheck, describeViolations, launchBrowser, screenshot, watchPage, type LaunchedBrowser } from './support/browser.ts';

/**
 * Smoke test of the web app as `npm start` serves it: the embedded system's gateway serves the
 * build in web/dist (`npm test` builds it first), and a real Chromium opens it, with the page's
 * own Content-Security-Policy on, and signs in. What the app does is tested elsewhere; this is the
 * contract between the gateway, the build and the browser.
 */

const WEB_DIST = fileURLToPath(new URL('../web/dist/', import.meta.url));

let system: EmbeddedSystem;
let gateway: string;
let browser: LaunchedBrowser | undefined;

beforeAll(async () => {
  if (!existsSync(join(WEB_DIST, 'index.html'))) {
    throw new Error(`the web app is not built (${WEB_DIST}index.html is missing): run npm run build:web (npm test does it first)`);
  }
  system = await startTestSystem();
  gateway = system.urls.gateway;
});

afterAll(async () => {
  await browser?.cleanup();
  await system?.stop();
});

describe('the web app, served by the gateway', () => {
  it('GET / is the built index.html with the page CSP, and its assets load', async () => {
    const res = await fetch(`${gateway}/`, { headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).toBe(await readFile(join(WEB_DIST, 'index.html'), 'utf8'));

    const script = /<script[^>]+src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script, 'index.html loads a script from /assets/').toBeDefined();
    const asset = await fetch(`${gateway}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/^(text|application)\/javascript/);
    expect(asset.headers.get('cache-control')).toContain('immutable');

    const style = /<link[^>]+href="(\/assets\/[^"]+\.css)"/.exec(html)?.[1];
    if (style) {
      const css = await fetch(`${gateway}${style}`);
      expect(css.status).toBe(200);
      expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    }

    // The API beside it is untouched.
    const books = await fetch(`${gateway}/books`);
    expect(books.status).toBe(200);
    expect(books.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  it('opens in Chromium without errors or CSP violations, and signs alice in', async () => {
    browser = await launchBrowser({ locale: 'en-US' });
    const page = await browser.newPage();
    const { problems } = watchPage(page);

    const response = await page.goto(`${gateway}/`, { waitUntil: 'load' });
    expect(response?.status()).toBe(200);
    expect(await page.title()).toContain('bstore');
    expect(await page.locator('html').getAttribute('lang')).toMatch(/^[a-z]{2}/);

    // The app's sign-in form (its labels in English, the browser's locale).
    const userName = page.getByLabel('User name', { exact: true });
    await userName.waitFor({ state: 'visible', timeout: 15_000 });
    await screenshot(page, 'web-smoke-sign-in');
    const accessibility = await axeCheck(page);
    expect(accessibility, describeViolations(accessibility)).toEqual([]);

    await userName.fill('alice');
    await page.getByLabel('Password', { exact: true }).fill('alice');
    await page.getByLabel('Password', { exact: true }).press('Enter');
    // Signed in: the form is gone (the sign-in page may name alice among the demo users) and alice is shown.
    await userName.waitFor({ state: 'hidden', timeout: 15_000 });
    await page.getByText('alice').first().waitFor({ state: 'visible', timeout: 15_000 });

    const path = await screenshot(page, 'web-smoke-signed-in');
    expect(existsSync(path)).toBe(true);
    expect(problems, problems.join('\n')).toEqual([]);
  });
});
