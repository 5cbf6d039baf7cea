import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import type { EmbeddedSystem } from '@bstore/launcher';
import { client, startTestSystem } from './support/system.ts';
import { axeCheck, describeViolations, launchBrowser, screenshot, watchPage, type LaunchedBrowser } from './support/browser.ts';

/**
 * What a person does with the web app, in a real Chromium against the whole embedded system (one
 * for the file): a patron reserves and follows the reservation live, meets the out-of-stock
 * message, cancels and gets the copy back; a librarian adds a book that a patron then reserves;
 * the language switch; screenshots of the main pages; axe on the main pages and one flow done with
 * the keyboard alone. Each test has a browser of its own (a fresh profile). No fixed sleeps: every
 * wait is Playwright's own or expect.poll, with generous limits (the app refreshes every 5 s).
 */

const WEB_DIST = fileURLToPath(new URL('../web/dist/', import.meta.url));
/** A generous limit for anything the saga or a 5-second refresh brings. */
const LONG = 20_000;

let system: EmbeddedSystem;
let gateway: string;
/** A suffix that keeps this run's book names apart from the demo catalogue and from each other. */
const run = Date.now().toString(36);
let opened: LaunchedBrowser[] = [];

beforeAll(async () => {
  if (!existsSync(join(WEB_DIST, 'index.html'))) {
    throw new Error(`the web app is not built (${WEB_DIST}index.html is missing): run npm run build:web (npm test does it first)`);
  }
  system = await startTestSystem();
  gateway = system.urls.gateway;
});

afterEach(async () => {
  const browsers = opened;
  opened = [];
  await Promise.all(browsers.map((b) => b.cleanup()));
});

afterAll(async () => {
  await system?.stop();
});

// --- helpers -------------------------------------------------------------------------------

interface Tab {
  page: Page;
  /** Console errors and uncaught exceptions seen so far. */
  problems: string[];
  /** How many full page loads (not hash changes) the tab has had. */
  loads: () => number;
}

/** A new browser (fresh profile) with one tab on the app. */
async function openApp(options: { locale?: string; viewport?: { width: number; height: number } } = {}): Promise<Tab> {
  const browser = await launchBrowser({ locale: options.locale ?? 'en-US' });
  opened.push(browser);
  const page = await browser.newPage();
  if (options.viewport) await page.setViewportSize(options.viewport);
  const { problems } = watchPage(page);
  let loads = 0;
  page.on('load', () => (loads += 1));
  const response = await page.goto(`${gateway}/`, { waitUntil: 'load' });
  expect(response?.status()).toBe(200);
  return { page, problems, loads: () => loads };
}

async function visible(locator: Locator, timeout = LONG): Promise<void> {
  await locator.waitFor({ state: 'visible', timeout });
}

/** Signs in with the form (demo password = user name) and waits for the signed-in header. */
async function signIn(page: Page, user: string): Promise<void> {
  const userName = page.getByLabel('User name', { exact: true });
  await visible(userName);
  await userName.fill(user);
  await page.getByLabel('Password', { exact: true }).fill(user);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await visible(page.getByText(`Signed in as ${user} (`, { exact: false }));
}

/** The catalogue's card of a book (a list item with the book's title as its h3). */
function bookCard(page: Page, title: string): Locator {
  return page.getByRole('listitem').filter({ has: page.getByRole('heading', { level: 3, name: title, exact: true }) });
}

/** The reservation card in My reservations (a list item named by its book). */
function reservationCard(page: Page, title: string): Locator {
  return page.getByRole('listitem').filter({ has: page.getByRole('heading', { level: 2, name: title, exact: true }) });
}

/** Submits a search in the catalogue (or the staff book list); the caller waits for what it expects. */
async function search(page: Page, text: string): Promise<void> {
  const box = page.getByRole('searchbox', { name: 'Search by title or author' });
  await box.fill(text);
  await box.press('Enter');
}

/** The app's messages (the polite live region). */
function messages(page: Page): Locator {
  return page.getByRole('status');
}

/** Waits until `locator`'s text contains `text` (the app's own refreshes bring it). */
async function untilText(locator: Locator, text: string | RegExp, timeout = LONG): Promise<void> {
  await expect
    .poll(async () => ((await locator.count()) > 0 ? ((await locator.first().textContent()) ?? '') : ''), { timeout, interval: 200 })
    .toMatch(typeof text === 'string' ? new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : text);
}

function noProblems(tab: Tab, allowed: RegExp[] = []): void {
  const left = tab.problems.filter((p) => !allowed.some((a) => a.test(p)));
  expect(left, left.join('\n')).toEqual([]);
}

/** Chromium's console line for a fetch answered 409 by POST /reservations (the out-of-stock answer). */
const RESERVE_409 = /^console error: Failed to load resource: the server responded with a status of 409 \(Conflict\) \(https?:\/\/[^/]+\/reservations\)$/;

async function newBook(name: string, quantity: number): Promise<number> {
  const created = await client(gateway, 'librarian', 'staff').createBook(name, quantity);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body.bookId;
}

/** Presses Tab (at most `max` times) until `target` has the focus. */
async function tabTo(page: Page, target: Locator, max = 60): Promise<void> {
  await target.waitFor({ state: 'attached', timeout: LONG });
  for (let i = 0; i < max; i++) {
    if (await target.evaluate((el) => el === el.ownerDocument.activeElement)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`Tab never reached ${target.toString()} in ${max} presses`);
}

// --- scenarios -----------------------------------------------------------------------------

describe('the web app, as its users use it', () => {
  it('a patron reserves from the catalogue and sees it reach Reserved in My reservations without a reload', async () => {
    const title = `Live Reserve ${run}`;
    await newBook(title, 3);
    const tab = await openApp();
    const { page } = tab;
    await signIn(page, 'alice');
    await visible(page.getByRole('heading', { level: 1, name: 'Catalogue' }));
    // Marks this document: a reload or a navigation would lose it.
    await page.evaluate(() => {
      (globalThis as unknown as { __marker: number }).__marker = 1;
    });
    const loadsBefore = tab.loads();

    await search(page, title);
    const card = bookCard(page, title);
    await visible(card);
    await untilText(card, 'Available: 3 of 3');
    await card.getByRole('button', { name: 'Reserve' }).click();
    await untilText(messages(page), new RegExp(`Reservation \\d+ for “${title}” placed`));

    await page.getByRole('link', { name: 'My reservations' }).click();
    await visible(page.getByRole('heading', { level: 1, name: 'My reservations' }));
    const mine = reservationCard(page, title);
    await visible(mine);
    await untilText(mine, 'Reserved (bookReserved)');
    await untilText(page.locator('.stream'), 'Live updates: Live');

    // A second reservation placed elsewhere (the API) shows up here through the live stream alone.
    const other = `Live Stream ${run}`;
    const otherId = await newBook(other, 1);
    const placed = await client(gateway, 'alice').reserve(otherId);
    expect(placed.status).toBe(201);
    await untilText(reservationCard(page, other), 'Reserved (bookReserved)');

    expect(await page.evaluate(() => (globalThis as unknown as { __marker?: number }).__marker)).toBe(1);
    expect(tab.loads()).toBe(loadsBefore);
    expect(page.url()).toMatch(/#\/my$/);
    noProblems(tab);
  });

  it('a book with no copy: the button offers the waiting list instead, and the patron can leave it again', async () => {
    const title = `Empty Shelf ${run}`;
    await newBook(title, 0);
    const tab = await openApp();
    const { page } = tab;
    await signIn(page, 'alice');
    await search(page, title);
    const card = bookCard(page, title);
    await visible(card);
    await untilText(card, 'No copy available');
    // No out-of-stock reservation to record: the waiting list is offered.
    expect(await card.getByRole('button', { name: 'Reserve', exact: true }).count()).toBe(0);
    await card.getByRole('button', { name: 'Join the waiting list' }).click();

    await untilText(messages(page), new RegExp(`You joined the waiting list for “${title}” \\(reservation \\d+\\): you are number 1 in line\\.`));
    // The live region is role=status, polite: a screen reader announces it.
    expect(await messages(page).getAttribute('aria-live')).toBe('polite');
    await untilText(card, /You already have reservation \d+ for this book: On the waiting list \(bookWaiting\)\./);

    await page.getByRole('link', { name: 'My reservations' }).click();
    const mine = reservationCard(page, title);
    await untilText(mine, 'On the waiting list (bookWaiting)');
    await untilText(mine, 'You are number 1 in line.');
    await mine.getByRole('button', { name: 'Cancel reservation' }).click();
    const dialog = page.getByRole('dialog', { name: 'Cancel this reservation?' });
    await visible(dialog);
    await untilText(dialog, 'you leave the waiting line');
    await dialog.getByRole('button', { name: 'Yes, cancel it' }).click();
    await untilText(mine, 'Cancelled (bookCanceled)');
    expect(await mine.getByRole('button', { name: 'Cancel reservation' }).count()).toBe(0);

    // Out of the line, the catalogue offers it again.
    await page.getByRole('link', { name: 'Catalogue' }).click();
    await search(page, title);
    await visible(bookCard(page, title).getByRole('button', { name: 'Join the waiting list' }));
    noProblems(tab);
  });

  it('the last copy gone meanwhile: Reserve shows the out-of-stock message', async () => {
    const title = `Last Copy ${run}`;
    await newBook(title, 1);
    const tab = await openApp();
    const { page } = tab;
    await signIn(page, 'alice');
    await search(page, title);
    const card = bookCard(page, title);
    await untilText(card, 'Available: 1 of 1');
    // Another patron took the copy between the catalogue's refresh and the click (the API's answer, staged).
    await page.route('**/reservations', (route) =>
      route.request().method() === 'POST'
        ? route.fulfill({
            status: 409,
            contentType: 'application/problem+json',
            body: JSON.stringify({ title: 'Conflict', status: 409, code: 'BOOK_OUT_OF_STOCK', detail: 'no copy', reservationId: 4242, reservationStatus: 'bookOutOfStock' }),
          })
        : route.fallback(),
    );
    await card.getByRole('button', { name: 'Reserve', exact: true }).click();
    await untilText(messages(page), `No copy is available: “${title}” is out of stock. The reservation 4242 is recorded as out of stock.`);
    await page.unroute('**/reservations');
    // The button is usable again.
    expect(await card.getByRole('button', { name: 'Reserve', exact: true }).isEnabled()).toBe(true);
    noProblems(tab, [RESERVE_409]);
  });

  it('cancelling a reservation gives the copy back: the catalogue shows the first availability again', async () => {
    const title = `Round Trip ${run}`;
    await newBook(title, 2);
    const tab = await openApp();
    const { page } = tab;
    await signIn(page, 'alice');
    await search(page, title);
    const card = bookCard(page, title);
    await untilText(card, 'Available: 2 of 2');

    await card.getByRole('button', { name: 'Reserve' }).click();
    await untilText(messages(page), new RegExp(`Reservation \\d+ for “${title}” placed`));
    await untilText(card, 'Available: 1 of 2');

    await page.getByRole('link', { name: 'My reservations' }).click();
    const mine = reservationCard(page, title);
    await untilText(mine, 'Reserved (bookReserved)');
    await mine.getByRole('button', { name: 'Cancel reservation' }).click();
    const dialog = page.getByRole('dialog', { name: 'Cancel this reservation?' });
    await visible(dialog);
    // The safe choice has the focus.
    expect(await dialog.getByRole('button', { name: 'Keep it' }).evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    await dialog.getByRole('button', { name: 'Yes, cancel it' }).click();
    await dialog.waitFor({ state: 'hidden', timeout: LONG });
    await untilText(messages(page), /Cancellation of reservation \d+ requested\./);
    await untilText(mine, 'Cancelled (bookCanceled)');

    await page.getByRole('link', { name: 'Catalogue' }).click();
    await search(page, title);
    await untilText(bookCard(page, title), 'Available: 2 of 2');
    noProblems(tab);
  });

  it('a librarian adds a book in the UI; a patron finds it by search and reserves it', async () => {
    const title = `Fresh Arrival ${run}`;
    const staff = await openApp();
    await signIn(staff.page, 'librarian');
    await visible(staff.page.getByRole('heading', { level: 1, name: 'Books' }));
    await staff.page.getByLabel('Title', { exact: true }).fill(title);
    await staff.page.getByLabel('Author (optional)', { exact: true }).fill('Test Author');
    await staff.page.getByLabel('Copies', { exact: true }).fill('2');
    await staff.page.getByRole('button', { name: 'Add book', exact: true }).click();
    await untilText(messages(staff.page), new RegExp(`Book \\d+ “${title}” added; copies owned: 2\\.`));
    // The staff list shows it (searched, whatever the page size).
    await search(staff.page, title);
    await visible(staff.page.getByRole('rowheader', { name: new RegExp(title) }));

    const patron = await openApp();
    await signIn(patron.page, 'bob');
    await search(patron.page, title);
    const card = bookCard(patron.page, title);
    await untilText(card, 'Available: 2 of 2');
    await untilText(card, 'by Test Author');
    await card.getByRole('button', { name: 'Reserve' }).click();
    await untilText(messages(patron.page), new RegExp(`Reservation \\d+ for “${title}” placed`));
    await patron.page.getByRole('link', { name: 'My reservations' }).click();
    await untilText(reservationCard(patron.page, title), 'Reserved (bookReserved)');

    // The librarian's list follows (refreshed every 5 s): one copy held.
    const row = staff.page.getByRole('row').filter({ has: staff.page.getByRole('rowheader', { name: new RegExp(title) }) });
    await expect.poll(async () => (await row.getByRole('cell').allTextContents()).slice(1, 3), { timeout: LONG, interval: 250 }).toEqual(['1', '2']);
    noProblems(staff);
    noProblems(patron);
  });

  it('switches to Korean, remembers it across a reload, and switches back', async () => {
    const tab = await openApp();
    const { page } = tab;
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    await signIn(page, 'alice');
    const language = page.getByLabel('Language / 언어', { exact: true });

    await language.selectOption('ko');
    await visible(page.getByRole('heading', { level: 1, name: '도서 목록' }));
    await visible(page.getByRole('link', { name: '내 예약' }));
    await visible(page.getByRole('button', { name: '로그아웃' }));
    expect(await page.locator('html').getAttribute('lang')).toBe('ko');
    expect(await page.title()).toBe('bstore — 도서 예약');
    await page.getByRole('searchbox', { name: '제목 또는 저자로 검색' }).waitFor({ timeout: LONG });

    await page.reload({ waitUntil: 'load' });
    await visible(page.getByRole('heading', { level: 1, name: '도서 목록' }));
    expect(await page.locator('html').getAttribute('lang')).toBe('ko');
    expect(await language.inputValue()).toBe('ko');

    // Signed out, the sign-in form is Korean as well.
    await page.getByRole('button', { name: '로그아웃' }).click();
    await visible(page.getByRole('heading', { level: 1, name: '로그인' }));
    await visible(page.getByLabel('사용자 이름', { exact: true }));
    await visible(page.getByRole('button', { name: '로그인', exact: true }));

    await language.selectOption('en');
    await visible(page.getByRole('heading', { level: 1, name: 'Sign in' }));
    await visible(page.getByLabel('User name', { exact: true }));
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    await page.reload({ waitUntil: 'load' });
    await visible(page.getByLabel('User name', { exact: true }));
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    noProblems(tab);
  });

  it('screenshots of the main pages (one in Korean, one at phone width)', async () => {
    const title = `Snapshot ${run}`;
    const bookId = await newBook(title, 2);
    const reserved = await client(gateway, 'alice').reserve(bookId);
    expect(reserved.status).toBe(201);
    const reservationId = reserved.body.reservationId;
    await expect.poll(async () => (await client(gateway, 'alice').page(reservationId)).body?.status, { timeout: LONG }).toBe('bookReserved');

    const shots: string[] = [];
    const patron = await openApp();
    shots.push(await screenshot(patron.page, 'web-sign-in'));
    await signIn(patron.page, 'alice');
    await visible(patron.page.getByRole('heading', { level: 3, name: '채식주의자 (The Vegetarian)' }));
    shots.push(await screenshot(patron.page, 'web-catalogue'));
    await patron.page.getByRole('link', { name: 'My reservations' }).click();
    await untilText(reservationCard(patron.page, title), 'Reserved (bookReserved)');
    shots.push(await screenshot(patron.page, 'web-my-reservations'));
    await patron.page.setViewportSize({ width: 360, height: 740 });
    await visible(reservationCard(patron.page, title));
    shots.push(await screenshot(patron.page, 'web-my-reservations-phone-360'));
    // The page fits the phone's width (tables scroll inside their own box).
    expect(await patron.page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(360);
    await patron.page.setViewportSize({ width: 1280, height: 800 });
    await patron.page.getByRole('link', { name: 'Catalogue' }).click();
    await patron.page.getByLabel('Language / 언어', { exact: true }).selectOption('ko');
    await visible(patron.page.getByRole('heading', { level: 1, name: '도서 목록' }));
    await visible(patron.page.getByRole('heading', { level: 3, name: '채식주의자 (The Vegetarian)' }));
    shots.push(await screenshot(patron.page, 'web-catalogue-ko'));
    noProblems(patron);

    const staff = await openApp();
    await signIn(staff.page, 'librarian');
    await visible(staff.page.getByRole('table', { name: 'Catalogue and copies' }));
    shots.push(await screenshot(staff.page, 'web-staff-books'));
    await staff.page.getByRole('link', { name: 'Reservations', exact: true }).click();
    const timelineLink = staff.page.getByRole('link', { name: `Timeline of reservation ${reservationId}` });
    await visible(timelineLink);
    shots.push(await screenshot(staff.page, 'web-staff-reservations'));
    await timelineLink.click();
    await visible(staff.page.getByRole('heading', { level: 1, name: `Reservation ${reservationId}` }));
    const history = staff.page.getByRole('table', { name: `History of reservation ${reservationId}` });
    await visible(history);
    // Staff see each event's trace id, to find the reservation's trace in the tracing backend.
    await visible(history.getByRole('columnheader', { name: 'Trace id' }));
    const traceIds = await history.locator('code.trace-id').allTextContents();
    expect(traceIds.length).toBeGreaterThan(0);
    for (const id of traceIds) expect(id).toMatch(/^[0-9a-f]{32}$/);
    shots.push(await screenshot(staff.page, 'web-staff-reservation-timeline'));
    expect(staff.page.url()).toMatch(new RegExp(`#/staff/reservations/${reservationId}$`));
    await staff.page.getByRole('link', { name: 'Dead letters' }).click();
    await visible(staff.page.getByRole('heading', { level: 1, name: 'Dead letters' }));
    await visible(staff.page.getByText('No dead letters. Every event was handled.'));
    shots.push(await screenshot(staff.page, 'web-staff-dead-letters'));
    noProblems(staff);

    for (const shot of shots) expect(existsSync(shot), shot).toBe(true);
  });

  it('axe finds no serious or critical violation on the catalogue, my reservations and a staff page', async () => {
    const patron = await openApp();
    await signIn(patron.page, 'alice');
    await visible(patron.page.getByRole('list').filter({ has: patron.page.getByRole('button', { name: 'Reserve' }) }));
    let violations = await axeCheck(patron.page);
    expect(violations, `catalogue:\n${describeViolations(violations)}`).toEqual([]);

    await patron.page.getByRole('link', { name: 'My reservations' }).click();
    await visible(patron.page.getByRole('heading', { level: 1, name: 'My reservations' }));
    // Its reservations (earlier tests placed some) or the empty text.
    await visible(patron.page.locator('.reservation-list, main p:has-text("You have no reservations yet")').first());
    violations = await axeCheck(patron.page);
    expect(violations, `my reservations:\n${describeViolations(violations)}`).toEqual([]);
    noProblems(patron);

    const staff = await openApp();
    await signIn(staff.page, 'librarian');
    await visible(staff.page.getByRole('table', { name: 'Catalogue and copies' }));
    violations = await axeCheck(staff.page);
    expect(violations, `staff books:\n${describeViolations(violations)}`).toEqual([]);
    await staff.page.getByRole('link', { name: 'Reservations', exact: true }).click();
    await visible(staff.page.getByRole('heading', { level: 1, name: 'Reservations' }));
    await visible(staff.page.locator('main .table-wrap, main p:has-text("No reservation matches.")').first());
    violations = await axeCheck(staff.page);
    expect(violations, `staff reservations:\n${describeViolations(violations)}`).toEqual([]);
    noProblems(staff);
  });

  it('signs in and reserves with the keyboard alone', async () => {
    const title = `Keyboard Only ${run}`;
    await newBook(title, 1);
    const tab = await openApp();
    const { page } = tab;
    const keyboard = page.keyboard;

    await tabTo(page, page.getByLabel('User name', { exact: true }));
    await keyboard.type('bob');
    await keyboard.press('Tab');
    expect(await page.getByLabel('Password', { exact: true }).evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    await keyboard.type('bob');
    await keyboard.press('Tab');
    expect(await page.getByRole('button', { name: 'Sign in', exact: true }).evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    await keyboard.press('Enter');
    await visible(page.getByText('Signed in as bob ('));

    await tabTo(page, page.getByRole('searchbox', { name: 'Search by title or author' }));
    await keyboard.type(title);
    await keyboard.press('Enter');
    const card = bookCard(page, title);
    await untilText(card, 'Available: 1 of 1');
    const reserve = card.getByRole('button', { name: 'Reserve' });
    await tabTo(page, reserve);
    await keyboard.press('Space');
    await untilText(messages(page), new RegExp(`Reservation \\d+ for “${title}” placed`));
    await untilText(card, 'No copy available');

    await tabTo(page, page.getByRole('link', { name: 'My reservations' }));
    await keyboard.press('Enter');
    await visible(page.getByRole('heading', { level: 1, name: 'My reservations' }));
    await untilText(reservationCard(page, title), 'Reserved (bookReserved)');
    noProblems(tab);
  });
});
