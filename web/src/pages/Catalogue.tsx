import { useCallback, useEffect, useId, useMemo, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ACTIVE_STATUSES, ApiError, type ApiClient, type Book, type Library, type ReservationPage } from '../api.ts';
import { Pager } from '../components/Pager.tsx';
import { SearchForm } from '../components/SearchForm.tsx';
import { statusText } from '../components/StatusLabel.tsx';
import { useApp, usePageEvents } from '../context.ts';
import { describeError } from '../lib/errors.ts';
import { formatDateTime } from '../lib/format.ts';
import { useVisibleInterval } from '../lib/hooks.ts';
import { useIntentKeys } from '../lib/intent-key.ts';
import { fresher } from '../lib/status.ts';
import { BOOKS_PAGE_SIZE, useBooks } from '../lib/use-books.ts';
import { LibraryOptions } from '../components/LibraryOptions.tsx';

/** The most active reservations per status the app reads to know which books the patron has one for. */
const ACTIVE_PAGE_SIZE = 100;

/**
 * The patron's active reservations, by book (one per book at most: the API refuses a second one
 * with 409 ACTIVE_RESERVATION_EXISTS). Read from their reservation pages on mount and after a
 * reconnect, kept up to date by the live stream; `learn` adds one the app heard of otherwise.
 */
function useActiveReservations(api: ApiClient, user: string, streamEpoch: number) {
  const [pages, setPages] = useState<ReadonlyMap<number, ReservationPage>>(new Map());
  const seq = useRef(0);
  // Pages the stream delivered while a reload was in flight: applied over its answer.
  const during = useRef<ReservationPage[] | null>(null);

  const merge = useCallback((incoming: readonly ReservationPage[]) => {
    setPages((current) => {
      const next = new Map(current);
      for (const page of incoming) {
        const known = next.get(page.reservationId);
        next.set(page.reservationId, known ? fresher(known, page) : page);
      }
      return next;
    });
  }, []);

  const reload = useCallback(async () => {
    const mine = ++seq.current;
    during.current = [];
    try {
      const answers = await Promise.all(ACTIVE_STATUSES.map((status) => api.reservationPages({ status, limit: ACTIVE_PAGE_SIZE })));
      if (mine !== seq.current) return;
      const next = new Map<number, ReservationPage>();
      for (const answer of answers) for (const page of answer.items) next.set(page.reservationId, page);
      for (const page of during.current ?? []) {
        const known = next.get(page.reservationId);
        next.set(page.reservationId, known ? fresher(known, page) : page);
      }
      setPages(next);
    } catch {
      // Keep what is known: the API still refuses a second reservation, and the app says so.
    } finally {
      if (mine === seq.current) during.current = null;
    }
  }, [api]);

  useEffect(() => {
    void reload();
  }, [reload, streamEpoch]);

  usePageEvents((incoming) => {
    if (incoming.customerId !== user) return;
    during.current?.push(incoming);
    merge([incoming]);
  });

  const byBook = useMemo(() => {
    const map = new Map<number, ReservationPage>();
    for (const page of pages.values()) {
      if (!ACTIVE_STATUSES.includes(page.status)) continue;
      const other = map.get(page.bookId);
      if (!other || page.updatedAt > other.updatedAt) map.set(page.bookId, page);
    }
    return map;
  }, [pages]);

  return { byBook, learn: merge, reload };
}

/** The patron's catalogue: search, live availability, and Reserve. */
export function Catalogue() {
  const { t, i18n } = useTranslation();
  const { api, notify, session, streamEpoch } = useApp();
  const [q, setQ] = useState('');
  const [offset, setOffset] = useState(0);
  const { page, error, loadedAt, reload } = useBooks(api, q, offset);
  const [libraries, setLibraries] = useState<Library[]>([]);
  const [libraryId, setLibraryId] = useState('');
  const [inFlight, setInFlight] = useState<ReadonlySet<number>>(new Set());
  const busy = useRef(new Set<number>());
  const { keyFor, settle } = useIntentKeys();
  const libraryFieldId = useId();
  const headingId = useId();
  const active = useActiveReservations(api, session.user, streamEpoch);

  // Live availability: every 5 s while visible, after each event of the stream, and on reconnect.
  useVisibleInterval(() => void reload(), 5_000);
  usePageEvents(() => void reload());
  useEffect(() => {
    if (streamEpoch > 0) void reload();
  }, [streamEpoch, reload]);

  useEffect(() => {
    const controller = new AbortController();
    api.libraries(controller.signal).then(setLibraries, () => setLibraries([]));
    return () => controller.abort();
  }, [api]);

  /** Reserve a copy, or (`waitlist`, for a book with none) join the book's waiting line. */
  const reserve = async (book: Book, waitlist: boolean) => {
    if (busy.current.has(book.bookId)) return;
    busy.current.add(book.bookId);
    setInFlight(new Set(busy.current));
    const preferred = libraryId ? Number(libraryId) : undefined;
    // One intent: this book at this library (in its line or not). A retry of it after no final answer reuses its key.
    const intent = `${waitlist ? 'waitlist' : 'reserve'}:${book.bookId}:${preferred ?? ''}`;
    try {
      const r = await api.reserve(
        { bookId: book.bookId, ...(preferred !== undefined ? { preferredLibraryId: preferred } : {}), ...(waitlist ? { waitlist: true as const } : {}) },
        keyFor(intent),
      );
      settle(intent);
      active.learn([{ ...r, timeline: [] }]);
      const bookName = r.bookName ?? book.bookName;
      if (r.status === 'bookWaiting') {
        const position = r.queuePosition;
        notify('success', (tt) =>
          typeof position === 'number'
            ? tt('catalogue.waitlisted', { id: r.reservationId, book: bookName, position })
            : tt('catalogue.waitlistedNoPosition', { id: r.reservationId, book: bookName }),
        );
      } else {
        notify('success', (tt) => tt('catalogue.reserved', { id: r.reservationId, book: bookName, status: statusText(tt, r.status) }));
      }
    } catch (err) {
      settle(intent, err);
      notify('error', (tt, lng) => describeError(tt, err, lng, { bookName: book.bookName }));
      // The patron has one already (another tab, another device): learn it, so the card says so.
      const existing = err instanceof ApiError && err.code === 'ACTIVE_RESERVATION_EXISTS' ? err.numberOf('reservationId') : undefined;
      if (existing !== undefined) {
        api.reservationPage(existing).then(
          (page) => active.learn([page]),
          () => void active.reload(),
        );
      } else if (err instanceof ApiError && err.code === 'ACTIVE_RESERVATION_EXISTS') {
        void active.reload();
      }
    } finally {
      busy.current.delete(book.bookId);
      setInFlight(new Set(busy.current));
      void reload();
    }
  };

  return (
    <>
      <h1 tabIndex={-1}>{t('catalogue.title')}</h1>
      <p>{t('catalogue.intro')}</p>
      <div className="toolbar card">
        <SearchForm
          onSearch={(value) => {
            setQ(value);
            setOffset(0);
          }}
        />
        <div className="field">
          <label htmlFor={libraryFieldId}>{t('catalogue.library')}</label>
          <select id={libraryFieldId} value={libraryId} onChange={(e) => setLibraryId(e.target.value)}>
            <option value="">{t('catalogue.anyLibrary')}</option>
            <LibraryOptions libraries={libraries} />
          </select>
        </div>
      </div>
      <section aria-labelledby={headingId}>
        <div className="section-head">
          <h2 id={headingId}>{t('catalogue.results')}</h2>
          {loadedAt !== null && <p className="muted">{t('common.lastUpdated', { time: formatDateTime(new Date(loadedAt).toISOString(), i18n.language) })}</p>}
        </div>
        {error !== null && <p className="form-error">{describeError(t, error, i18n.language)}</p>}
        {page === null && error === null && <p>{t('app.loading')}</p>}
        {page !== null && page.items.length === 0 && <p>{t('catalogue.empty')}</p>}
        {page !== null && page.items.length > 0 && (
          <ul className="book-list">
            {page.items.map((book) => (
              <BookCard
                key={book.bookId}
                book={book}
                busy={inFlight.has(book.bookId)}
                active={active.byBook.get(book.bookId)}
                onReserve={(waitlist) => void reserve(book, waitlist)}
              />
            ))}
          </ul>
        )}
        {page !== null && <Pager total={page.total} limit={BOOKS_PAGE_SIZE} offset={offset} onOffset={setOffset} label={t('catalogue.results')} />}
      </section>
    </>
  );
}

interface BookCardProps {
  book: Book;
  busy: boolean;
  /** The patron's active reservation of this book, if they have one. */
  active: ReservationPage | undefined;
  onReserve: (waitlist: boolean) => void;
}

function BookCard({ book, busy, active, onReserve }: BookCardProps) {
  const { t } = useTranslation();
  const titleId = useId();
  const availabilityId = useId();
  const hintId = useId();
  const waitlist = book.quantity <= 0;
  return (
    <li className="card book">
      <h3 id={titleId}>{book.bookName}</h3>
      <p className="muted">{book.author ? t('catalogue.by', { author: book.author }) : t('catalogue.unknownAuthor')}</p>
      {book.isbn && <p className="muted">{t('catalogue.isbn', { isbn: book.isbn })}</p>}
      <p id={availabilityId} className={book.quantity > 0 ? 'available' : 'unavailable'}>
        {book.quantity > 0 ? t('catalogue.available', { count: book.quantity, copies: book.copies }) : t('catalogue.noneAvailable')}
      </p>
      {active ? (
        <>
          <p className="already">
            {t('catalogue.alreadyActive', { id: active.reservationId, status: statusText(t, active.status) })}
          </p>
          <p className="book-link">
            <a href="#/my">{t('catalogue.seeMine', { id: active.reservationId })}</a>
          </p>
        </>
      ) : (
        <>
          {waitlist && (
            <p id={hintId} className="muted">
              {t('catalogue.waitlistHint')}
            </p>
          )}
          <button
            type="button"
            className="button-primary"
            onClick={() => onReserve(waitlist)}
            disabled={busy}
            aria-busy={busy}
            aria-describedby={waitlist ? `${titleId} ${availabilityId} ${hintId}` : `${titleId} ${availabilityId}`}
          >
            {waitlist ? (busy ? t('catalogue.joining') : t('catalogue.joinWaitlist')) : busy ? t('catalogue.reserving') : t('catalogue.reserve')}
          </button>
        </>
      )}
    </li>
  );
}
