import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { startEmbedded, type EmbeddedSystem } from '@bstore/launcher';
import { testLogger } from './support/harness.ts';
import { client, startTestSystem } from './support/system.ts';
import { axeCheck, describeViolations, launchBrowser, screenshot, watchPage, type LaunchedBrowser } from './support/browser.ts';

/**
 * A reservation's whole life in the web app, in a real Chromium against the embedded system: a
 * patron joins a book's waiting line and watches their place move up live until the copy is ready
 * for pickup; a librarian checks a held copy out at the circulation desk and in again, and the
 * patron sees it on loan, then returned; the same from the reservation's own page; and, with short
 * deadlines (a system of its own), a hold nobody picks up expires and a loan runs overdue. Like
 * web.scenarios: no fixed sleeps, each test a fresh browser.
 */

const WEB_DIST = fileURLToPath(new URL('../web/dist/', import.meta.url));
const LONG = 20_000;
const run = Date.now().toString(36);
let opened: LaunchedBrowser[] = [];

beforeAll(() => {
  if (!existsSync(join(WEB_DIST, 'index.html'))) {
    throw new Error(`the web app is not built (${WEB_DIST}index.html is missing): run npm run build:web (npm test does it first)`);
  }
});

afterEach(async () => {
  const browsers = opened;
  opened = [];
  await Promise.all(browsers.map((b) => b.cleanup()));
});

// --- helpers -------------------------------------------------------------------------------

interface Tab {
  page: Page;
  problems: string[];
  loads: () => number;
}

async function openApp(gateway: string, options: { locale?: string } = {}): Promise<Tab> {
  const browser = await launchBrowser({ locale: options.locale ?? 'en-US' });
  opened.push(browser);
  const page = await browser.newPage();
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

async function signIn(page: Page, user: string): Promise<void> {
  const userName = page.getByLabel('User name', { exact: true });
  await visible(userName);
  await userName.fill(user);
  await page.getByLabel('Password', { exact: true }).fill(user);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await visible(page.getByText(`Signed in as ${user} (`, { exact: false }));
}

function bookCard(page: Page, title: string): Locator {
  return page.getByRole('listitem').filter({ has: page.getByRole('heading', { level: 3, name: title, exact: true }) });
}

function reservationCard(page: Page, title: string): Locator {
  return page.getByRole('listitem').filter({ has: page.getByRole('heading', { level: 2, name: title, exact: true }) });
}

async function search(page: Page, text: string): Promise<void> {
  const box = page.getByRole('searchbox', { name: 'Search by title or author' });
  await box.fill(text);
  await box.press('Enter');
}

function messages(page: Page): Locator {
  return page.getByRole('status');
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function untilText(locator: Locator, text: string | RegExp, timeout = LONG): Promise<void> {
  await expect
    .poll(async () => ((await locator.count()) > 0 ? ((await locator.first().textContent()) ?? '') : ''), { timeout, interval: 200 })
    .toMatch(typeof text === 'string' ? new RegExp(escape(text)) : text);
}

function noProblems(tab: Tab, allowed: RegExp[] = []): void {
  const left = tab.problems.filter((p) => !allowed.some((a) => a.test(p)));
  expect(left, left.join('\n')).toEqual([]);
}

/** Chromium's console line for a fetch the API refused with `status` (expected in a test that provokes it). */
function refused(status: number, path: RegExp): RegExp {
  return new RegExp(`^console error: Failed to load resource: the server responded with a status of ${status} \\([^)]*\\) \\(https?://[^/]+${path.source}\\)$`);
}

async function newBook(gateway: string, name: string, quantity: number): Promise<number> {
  const created = await client(gateway, 'librarian', 'staff').createBook(name, quantity);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body.bookId;
}

interface ReservationJson {
  reservationId: number;
  status: string;
  libraryId: number | null;
  libraryName: string | null;
  pickupBy?: string | null;
  dueAt?: string | null;
  queuePosition?: number | null;
  code?: string;
}

/** Reserves as `patron` (optionally joining the waiting line, or at a library) and expects 201. */
async function reserve(gateway: string, patron: string, bookId: number, waitlist = false, preferredLibraryId?: number): Promise<ReservationJson> {
  const body = { bookId, ...(waitlist ? { waitlist: true } : {}), ...(preferredLibraryId !== undefined ? { preferredLibraryId } : {}) };
  const placed = await client(gateway, patron).call<ReservationJson>('POST', '/reservations', body, { 'idempotency-key': crypto.randomUUID() });
  expect(placed.status, JSON.stringify(placed.body)).toBe(201);
  return placed.body;
}

/** Waits until the reservation (the reservation service's own record) has `status`, and returns it. */
async function reservationIn(gateway: string, patron: string, reservationId: number, status: string): Promise<ReservationJson> {
  let last: ReservationJson | undefined;
  await expect
    .poll(
      async () => {
        last = (await client(gateway, patron).call<ReservationJson>('GET', `/reservations/${reservationId}`)).body;
        return last.status;
      },
      { timeout: LONG, interval: 100 },
    )
    .toBe(status);
  if (!last) throw new Error('no answer');
  return last;
}

/** The staff desk's table of one section (a scrolling region named by the section). */
function deskTable(page: Page, section: 'Awaiting pickup' | 'Loans' | 'Expired today'): Locator {
  return page.getByRole('region', { name: section, exact: true });
}

/** The row of a reservation in a desk section (its row header is the reservation's number). */
function deskRow(page: Page, section: 'Awaiting pickup' | 'Loans' | 'Expired today', reservationId: number): Locator {
  return deskTable(page, section)
    .getByRole('row')
    .filter({ has: page.getByRole('rowheader', { name: String(reservationId), exact: true }) });
}

/** Signs the librarian in and opens the desk of `libraryName`. */
async function openDesk(page: Page, libraryName: string): Promise<void> {
  await signIn(page, 'librarian');
  await page.getByRole('link', { name: 'Circulation desk' }).click();
  await visible(page.getByRole('heading', { level: 1, name: 'Circulation desk' }));
  await page.getByLabel('Library', { exact: true }).selectOption({ label: libraryName });
  expect(page.url()).toMatch(/#\/staff\/desk\?libraryId=\d+$/);
}

// --- the ordinary system -------------------------------------------------------------------

describe('a reservation\'s life in the web app', () => {
  let system: EmbeddedSystem;
  let gateway: string;

  beforeAll(async () => {
    system = await startTestSystem();
    gateway = system.urls.gateway;
  });

  afterAll(async () => {
    await system?.stop();
  });

  it('a patron joins the waiting list of a book with no copy, sees their place in line move up live, then the copy ready for pickup', async () => {
    const title = `Waiting Line ${run}`;
    const bookId = await newBook(gateway, title, 1);
    // bob holds the only copy; carol is first in the line.
    const bobs = await reserve(gateway, 'bob', bookId);
    await reservationIn(gateway, 'bob', bobs.reservationId, 'bookReserved');
    const carols = await reserve(gateway, 'carol', bookId, true);
    expect(carols.status).toBe('bookWaiting');
    expect(carols.queuePosition).toBe(1);

    const tab = await openApp(gateway);
    const { page } = tab;
    await signIn(page, 'alice');
    await search(page, title);
    const card = bookCard(page, title);
    await untilText(card, 'No copy available');
    // No out-of-stock reservation is offered, the waiting list is.
    expect(await card.getByRole('button', { name: 'Reserve', exact: true }).count()).toBe(0);
    await card.getByRole('button', { name: 'Join the waiting list' }).click();
    await untilText(messages(page), new RegExp(`You joined the waiting list for “${escape(title)}” \\(reservation (\\d+)\\): you are number 2 in line\\.`));
    const alicesId = Number(/reservation (\d+)\)/.exec((await messages(page).first().textContent()) ?? '')?.[1]);
    expect(alicesId).toBeGreaterThan(0);
    // The card now knows: one active reservation per book.
    await untilText(card, `You already have reservation ${alicesId} for this book: On the waiting list (bookWaiting).`);
    expect(await card.getByRole('button').count()).toBe(0);
    await visible(card.getByRole('link', { name: `See reservation ${alicesId}` }));

    await page.getByRole('link', { name: 'My reservations' }).click();
    await visible(page.getByRole('heading', { level: 1, name: 'My reservations' }));
    const mine = reservationCard(page, title);
    await untilText(mine, 'On the waiting list (bookWaiting)');
    await untilText(mine, 'You are number 2 in line.');
    await untilText(page.locator('.stream'), 'Live updates: Live');
    // Leaving the line is offered too.
    await visible(mine.getByRole('button', { name: 'Cancel reservation' }));
    await page.evaluate(() => {
      (globalThis as unknown as { __marker: number }).__marker = 1;
    });
    const loadsBefore = tab.loads();

    // carol leaves the line: alice moves up, through the live stream alone.
    expect((await client(gateway, 'carol').cancel(carols.reservationId)).status).toBe(202);
    await untilText(mine, 'You are number 1 in line.');
    const waiting = await axeCheck(page);
    expect(waiting, `my reservations, waiting:\n${describeViolations(waiting)}`).toEqual([]);

    // bob gives his copy up: it goes to alice, whose copy then waits at a library for her.
    expect((await client(gateway, 'bob').cancel(bobs.reservationId)).status).toBe(202);
    const ready = await reservationIn(gateway, 'alice', alicesId, 'bookReserved');
    expect(ready.libraryName).toBeTruthy();
    expect(ready.pickupBy).toBeTruthy();
    await untilText(mine, 'Reserved (bookReserved)');
    await untilText(mine, new RegExp(`Ready for pickup at ${escape(ready.libraryName ?? '')} until \\d`));
    await visible(mine.getByText('Pick up by', { exact: true }));
    await screenshot(page, 'web-my-reservations-ready-for-pickup');

    expect(await page.evaluate(() => (globalThis as unknown as { __marker?: number }).__marker)).toBe(1);
    expect(tab.loads()).toBe(loadsBefore);
    noProblems(tab);
  });

  it('the catalogue says when the patron already has an active reservation of a book, and the API\'s 409 says so too', async () => {
    const title = `Second Copy ${run}`;
    const bookId = await newBook(gateway, title, 2);
    const tab = await openApp(gateway);
    const { page } = tab;
    await signIn(page, 'bob');
    await search(page, title);
    const card = bookCard(page, title);
    await untilText(card, 'Available: 2 of 2');
    await card.getByRole('button', { name: 'Reserve', exact: true }).click();
    await untilText(messages(page), new RegExp(`Reservation (\\d+) for “${escape(title)}” placed`));
    const id = Number(/Reservation (\d+) for/.exec((await messages(page).first().textContent()) ?? '')?.[1]);
    await untilText(card, new RegExp(`You already have reservation ${id} for this book: (Reserved|Copy held, assigning a library)`));
    expect(await card.getByRole('button').count()).toBe(0);

    // The API refuses a second one whatever the app shows.
    const second = await client(gateway, 'bob').call<{ code: string; reservationId: number }>('POST', '/reservations', { bookId }, { 'idempotency-key': crypto.randomUUID() });
    expect(second.status).toBe(409);
    expect(second.body.code).toBe('ACTIVE_RESERVATION_EXISTS');
    expect(second.body.reservationId).toBe(id);
    noProblems(tab);

    // A tab that does not know (its lists of reservation pages come back empty): Reserve meets the
    // API's 409, which says so and teaches the card.
    const blind = await openApp(gateway);
    await blind.page.route(
      (url) => url.pathname === '/reservationPages' && url.searchParams.has('status'),
      (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ items: [], total: 0, limit: 100, offset: 0 }) }),
    );
    await signIn(blind.page, 'bob');
    await search(blind.page, title);
    const blindCard = bookCard(blind.page, title);
    await untilText(blindCard, 'Available: 1 of 2');
    await blindCard.getByRole('button', { name: 'Reserve', exact: true }).click();
    await untilText(messages(blind.page), `You already have an active reservation for this book (reservation ${id}).`);
    await untilText(blindCard, new RegExp(`You already have reservation ${id} for this book`));
    expect(await blindCard.getByRole('button').count()).toBe(0);
    noProblems(blind, [refused(409, /\/reservations/)]);
  });

  it('a librarian checks a held copy out at the desk, then in; the patron sees it on loan, then returned', async () => {
    const title = `Desk Loan ${run}`;
    const bookId = await newBook(gateway, title, 1);
    const placed = await reserve(gateway, 'alice', bookId);
    const held = await reservationIn(gateway, 'alice', placed.reservationId, 'bookReserved');
    const libraryName = held.libraryName ?? '';
    expect(libraryName).not.toBe('');

    const patron = await openApp(gateway);
    await signIn(patron.page, 'alice');
    await patron.page.getByRole('link', { name: 'My reservations' }).click();
    const mine = reservationCard(patron.page, title);
    await untilText(mine, new RegExp(`Ready for pickup at ${escape(libraryName)} until \\d`));

    // A patron may not check a copy out (the app never offers it; the API says 403).
    const forbidden = await client(gateway, 'alice').call<{ code: string }>('PATCH', `/reservations/${held.reservationId}`, { status: 'bookLoaned' });
    expect(forbidden.status).toBe(403);

    const staff = await openApp(gateway);
    await openDesk(staff.page, libraryName);
    const waitingRow = deskRow(staff.page, 'Awaiting pickup', held.reservationId);
    await visible(waitingRow);
    await untilText(waitingRow, title);
    await untilText(waitingRow, 'alice');
    let violations = await axeCheck(staff.page);
    expect(violations, `desk:\n${describeViolations(violations)}`).toEqual([]);
    await screenshot(staff.page, 'web-staff-desk');

    // A failure shows at its row (staged: the reservation service unavailable, 503).
    const path = `**/reservations/${held.reservationId}`;
    await staff.page.route(path, (route) =>
      route.request().method() === 'PATCH'
        ? route.fulfill({
            status: 503,
            contentType: 'application/problem+json',
            headers: { 'retry-after': '1' },
            body: JSON.stringify({ title: 'Service Unavailable', status: 503, code: 'RESERVATION_SERVICE_UNAVAILABLE', detail: 'unavailable', service: 'reservation' }),
          })
        : route.fallback(),
    );
    await waitingRow.getByRole('button', { name: 'Check out' }).click();
    await untilText(waitingRow, /Not done: The reservation service is unavailable right now; nothing was changed\./);
    await staff.page.unroute(path);

    await waitingRow.getByRole('button', { name: 'Check out' }).click();
    const loanRow = deskRow(staff.page, 'Loans', held.reservationId);
    await untilText(loanRow, /Checked out to alice, due back by \d/);
    await untilText(loanRow, 'On loan (bookLoaned)');
    // The result has the focus (the button that had it is gone with its row).
    await expect.poll(() => staff.page.evaluate("document.activeElement?.id ?? ''"), { timeout: LONG }).toBe(`desk-result-${held.reservationId}`);
    await expect.poll(() => waitingRow.count(), { timeout: LONG }).toBe(0);

    await untilText(mine, 'On loan (bookLoaned)');
    await untilText(mine, /On loan, due back by \d/);
    await visible(mine.getByText('Due back', { exact: true }));
    expect(await mine.getByRole('button', { name: 'Cancel reservation' }).count()).toBe(0);

    await loanRow.getByRole('button', { name: 'Check in' }).click();
    await untilText(loanRow, 'Checked in: the copy goes to the next in line or back on the shelf.');
    await untilText(loanRow, 'Returned (bookReturned)');
    expect(await loanRow.getByRole('button').count()).toBe(0);
    violations = await axeCheck(staff.page);
    expect(violations, `desk after check-in:\n${describeViolations(violations)}`).toEqual([]);

    await untilText(mine, 'Returned (bookReturned)');
    await untilText(mine, 'This reservation has ended.');
    // The copy is back in stock.
    await patron.page.getByRole('link', { name: 'Catalogue' }).click();
    await search(patron.page, title);
    await untilText(bookCard(patron.page, title), 'Available: 1 of 1');

    // Checking in twice is refused, with the reason's code.
    const again = await client(gateway, 'librarian', 'staff').call<{ code: string }>('PATCH', `/reservations/${held.reservationId}`, { status: 'bookReturned' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('RESERVATION_NOT_ON_LOAN');
    noProblems(patron);
    noProblems(staff, [refused(503, /\/reservations\/\d+/)]);
  });

  it('the reservation\'s page offers check-out and check-in when its state allows, and shows a refusal where it was pressed', async () => {
    const title = `Detail Loan ${run}`;
    const bookId = await newBook(gateway, title, 1);
    const placed = await reserve(gateway, 'bob', bookId);
    const held = await reservationIn(gateway, 'bob', placed.reservationId, 'bookReserved');

    const staff = await openApp(gateway);
    await signIn(staff.page, 'librarian');
    await staff.page.getByRole('link', { name: 'Reservations', exact: true }).click();
    await staff.page.getByRole('link', { name: `Timeline of reservation ${held.reservationId}` }).click();
    await visible(staff.page.getByRole('heading', { level: 1, name: `Reservation ${held.reservationId}` }));
    const desk = staff.page.locator('section').filter({ has: staff.page.getByRole('heading', { level: 2, name: 'At the desk' }) });
    await visible(staff.page.getByText('Pick up by', { exact: true }));

    // Another desk was faster (the answer is staged here: the API's refusal, as the app would get it).
    const path = `**/reservations/${held.reservationId}`;
    await staff.page.route(path, (route) =>
      route.request().method() === 'PATCH'
        ? route.fulfill({
            status: 409,
            contentType: 'application/problem+json',
            body: JSON.stringify({ type: 'about:blank', title: 'Conflict', status: 409, code: 'RESERVATION_NOT_AWAITING_PICKUP', detail: 'not awaiting pickup' }),
          })
        : route.fallback(),
    );
    await desk.getByRole('button', { name: 'Check out' }).click();
    await untilText(desk, 'Not done: This reservation is not waiting for pickup (any more): it cannot be checked out.');
    await staff.page.unroute(path);

    await desk.getByRole('button', { name: 'Check out' }).click();
    await untilText(desk, /Checked out to bob, due back by \d/);
    await untilText(staff.page.locator('main .facts'), 'On loan (bookLoaned)');
    await visible(staff.page.getByText('Due back', { exact: true }));
    await desk.getByRole('button', { name: 'Check in' }).click();
    await untilText(desk, 'Checked in: the copy goes to the next in line or back on the shelf.');
    await untilText(staff.page.locator('main .facts'), 'Returned (bookReturned)');
    expect(await desk.getByRole('button').count()).toBe(0);
    // The timeline shows the two desk events.
    const history = staff.page.getByRole('table', { name: `History of reservation ${held.reservationId}` });
    await untilText(history, 'ReservationCheckedOut');
    await untilText(history, 'ReservationReturned');
    noProblems(staff, [refused(409, /\/reservations\/\d+/)]);
  });

  it('in Korean: the waiting line, the desk and the new statuses have their words', async () => {
    const title = `대기 ${run}`;
    const bookId = await newBook(gateway, title, 0);
    const waiting = await reserve(gateway, 'alice', bookId, true);
    expect(waiting.status).toBe('bookWaiting');
    const tab = await openApp(gateway, { locale: 'ko-KR' });
    const { page } = tab;
    await visible(page.getByLabel('사용자 이름', { exact: true }));
    await page.getByLabel('사용자 이름', { exact: true }).fill('alice');
    await page.getByLabel('비밀번호', { exact: true }).fill('alice');
    await page.getByRole('button', { name: '로그인', exact: true }).click();
    await page.getByRole('link', { name: '내 예약' }).click();
    const mine = reservationCard(page, title);
    await untilText(mine, '대기자 명단에 있음 (bookWaiting)');
    await untilText(mine, '대기 순번 1번입니다.');
    // The catalogue, read afresh, knows the reservation.
    await page.getByRole('link', { name: '도서 목록' }).click();
    await page.getByRole('searchbox', { name: '제목 또는 저자로 검색' }).fill(title);
    await page.getByRole('searchbox', { name: '제목 또는 저자로 검색' }).press('Enter');
    await untilText(bookCard(page, title), `이 도서는 이미 예약 ${waiting.reservationId}번이 진행 중입니다: 대기자 명단에 있음 (bookWaiting).`);
    noProblems(tab);

    const staff = await openApp(gateway, { locale: 'ko-KR' });
    await visible(staff.page.getByLabel('사용자 이름', { exact: true }));
    await staff.page.getByLabel('사용자 이름', { exact: true }).fill('librarian');
    await staff.page.getByLabel('비밀번호', { exact: true }).fill('librarian');
    await staff.page.getByRole('button', { name: '로그인', exact: true }).click();
    await staff.page.getByRole('link', { name: '대출 데스크' }).click();
    await visible(staff.page.getByRole('heading', { level: 1, name: '대출 데스크' }));
    await visible(staff.page.getByText('데스크를 볼 도서관을 선택하세요.'));
    const libraries = await staff.page.getByLabel('도서관', { exact: true }).locator('option').allTextContents();
    expect(libraries.length).toBeGreaterThan(1);
    await staff.page.getByLabel('도서관', { exact: true }).selectOption({ index: 1 });
    for (const heading of ['수령 대기', '대출 중', '오늘 만료됨']) await visible(staff.page.getByRole('heading', { level: 2, name: heading }));
    noProblems(staff);
  });
});

// --- short deadlines -----------------------------------------------------------------------

describe('deadlines in the web app (a system with a pickup period of seconds)', () => {
  let system: EmbeddedSystem;
  let gateway: string;

  beforeAll(async () => {
    // startTestSystem's settings, with deadlines of seconds (what BSTORE_PICKUP_PERIOD=PT6S,
    // BSTORE_LOAN_PERIOD=PT4S and BSTORE_DEADLINE_SWEEP_INTERVAL_MS=250 give `npm start`).
    system = await startEmbedded({
      logger: testLogger(),
      ports: { gateway: 0, reservation: 0, assignment: 0, book: 0, customercenter: 0, notification: 0 },
      seedDemoData: true,
      env: { BSTORE_MAX_ACTIVE_RESERVATIONS: '1000', BSTORE_PICKUP_PERIOD: 'PT6S', BSTORE_LOAN_PERIOD: 'PT4S', BSTORE_DEADLINE_SWEEP_INTERVAL_MS: '250' },
      reservation: { sweepIntervalMs: 1000, staleAfterMs: 2000 },
      gateway: { rateLimitPerToken: 0, rateLimitPerIp: 0, loginAttemptsPerMinute: 0 },
    });
    gateway = system.urls.gateway;
  });

  afterAll(async () => {
    await system?.stop();
  });

  it('a hold nobody picks up expires: the patron sees it ended, the desk lists it under expired today; a loan runs overdue', async () => {
    const title = `Never Collected ${run}`;
    const bookId = await newBook(gateway, title, 1);
    const placed = await reserve(gateway, 'alice', bookId);
    const held = await reservationIn(gateway, 'alice', placed.reservationId, 'bookReserved');
    const libraryName = held.libraryName ?? '';
    const loanTitle = `Kept Too Long ${run}`;
    const loanBook = await newBook(gateway, loanTitle, 1);
    const loanPlaced = await reserve(gateway, 'alice', loanBook, false, held.libraryId ?? undefined);
    const loanHeld = await reservationIn(gateway, 'alice', loanPlaced.reservationId, 'bookReserved');
    const checkedOut = await client(gateway, 'librarian', 'staff').call<ReservationJson>('PATCH', `/reservations/${loanHeld.reservationId}`, { status: 'bookLoaned' });
    expect(checkedOut.status, JSON.stringify(checkedOut.body)).toBe(200);
    expect(checkedOut.body.dueAt).toBeTruthy();

    const patron = await openApp(gateway);
    await signIn(patron.page, 'alice');
    await patron.page.getByRole('link', { name: 'My reservations' }).click();
    const mine = reservationCard(patron.page, title);
    await untilText(mine, 'Not picked up in time (bookExpired)', 30_000);
    await untilText(mine, /Not picked up by \d.*\. This reservation has ended\./);
    expect(await mine.getByRole('button', { name: 'Cancel reservation' }).count()).toBe(0);
    const loan = reservationCard(patron.page, loanTitle);
    await untilText(loan, /Overdue Overdue: it was due back by \d/, 30_000);

    const staff = await openApp(gateway);
    await openDesk(staff.page, libraryName);
    const expiredRow = deskRow(staff.page, 'Expired today', held.reservationId);
    await untilText(expiredRow, title);
    await untilText(expiredRow, 'alice');
    expect(loanHeld.libraryId).toBe(held.libraryId);
    const loanRow = deskRow(staff.page, 'Loans', loanHeld.reservationId);
    await untilText(loanRow, 'Overdue');
    await visible(loanRow.getByRole('button', { name: 'Check in' }));
    const violations = await axeCheck(staff.page);
    expect(violations, `desk with expired:\n${describeViolations(violations)}`).toEqual([]);
    await screenshot(staff.page, 'web-staff-desk-expired');
    noProblems(patron);
    noProblems(staff);
  });
});
