import { useEffect, useId, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { Book, Library } from '../api.ts';
import { Pager } from '../components/Pager.tsx';
import { SearchForm } from '../components/SearchForm.tsx';
import { statusText } from '../components/StatusLabel.tsx';
import { useApp, usePageEvents } from '../context.ts';
import { describeError } from '../lib/errors.ts';
import { formatDateTime } from '../lib/format.ts';
import { useVisibleInterval } from '../lib/hooks.ts';
import { useIntentKeys } from '../lib/intent-key.ts';
import { BOOKS_PAGE_SIZE, useBooks } from '../lib/use-books.ts';

/** The patron's catalogue: search, live availability, and Reserve. */
export function Catalogue() {
  const { t, i18n } = useTranslation();
  const { api, notify, streamEpoch } = useApp();
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

  const reserve = async (book: Book) => {
    if (busy.current.has(book.bookId)) return;
    busy.current.add(book.bookId);
    setInFlight(new Set(busy.current));
    const preferred = libraryId ? Number(libraryId) : undefined;
    // One intent: this book at this library. A retry of it after no final answer reuses its key.
    const intent = `reserve:${book.bookId}:${preferred ?? ''}`;
    try {
      const r = await api.reserve({ bookId: book.bookId, ...(preferred !== undefined ? { preferredLibraryId: preferred } : {}) }, keyFor(intent));
      settle(intent);
      notify('success', (tt) => tt('catalogue.reserved', { id: r.reservationId, book: r.bookName ?? book.bookName, status: statusText(tt, r.status) }));
    } catch (err) {
      settle(intent, err);
      notify('error', (tt, lng) => describeError(tt, err, lng, { bookName: book.bookName }));
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
            {libraries.map((l) => (
              <option key={l.libraryId} value={String(l.libraryId)}>
                {l.name}
              </option>
            ))}
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
              <BookCard key={book.bookId} book={book} busy={inFlight.has(book.bookId)} onReserve={() => void reserve(book)} />
            ))}
          </ul>
        )}
        {page !== null && <Pager total={page.total} limit={BOOKS_PAGE_SIZE} offset={offset} onOffset={setOffset} label={t('catalogue.results')} />}
      </section>
    </>
  );
}

function BookCard({ book, busy, onReserve }: { book: Book; busy: boolean; onReserve: () => void }) {
  const { t } = useTranslation();
  const titleId = useId();
  const availabilityId = useId();
  return (
    <li className="card book">
      <h3 id={titleId}>{book.bookName}</h3>
      <p className="muted">{book.author ? t('catalogue.by', { author: book.author }) : t('catalogue.unknownAuthor')}</p>
      {book.isbn && <p className="muted">{t('catalogue.isbn', { isbn: book.isbn })}</p>}
      <p id={availabilityId} className={book.quantity > 0 ? 'available' : 'unavailable'}>
        {book.quantity > 0 ? t('catalogue.available', { count: book.quantity, copies: book.copies }) : t('catalogue.noneAvailable')}
      </p>
      <button type="button" className="button-primary" onClick={onReserve} disabled={busy} aria-busy={busy} aria-describedby={`${titleId} ${availabilityId}`}>
        {busy ? t('catalogue.reserving') : t('catalogue.reserve')}
      </button>
    </li>
  );
}
