import { useId, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import type { Book } from '../../api.ts';
import { Pager } from '../../components/Pager.tsx';
import { SearchForm } from '../../components/SearchForm.tsx';
import { TableWrap } from '../../components/TableWrap.tsx';
import { useApp } from '../../context.ts';
import { describeError } from '../../lib/errors.ts';
import { useVisibleInterval } from '../../lib/hooks.ts';
import { useIntentAction } from '../../lib/intent-key.ts';
import { FormError, SubmitButton } from '../../components/FormParts.tsx';
import { BOOKS_PAGE_SIZE, useBooks } from '../../lib/use-books.ts';

/** The librarian's books: add a book, add or withdraw copies. */
export function StaffBooks() {
  const { t, i18n } = useTranslation();
  const { api } = useApp();
  const [q, setQ] = useState('');
  const [offset, setOffset] = useState(0);
  const { page, error, reload } = useBooks(api, q, offset);
  useVisibleInterval(() => void reload(), 5_000);

  return (
    <>
      <h1 tabIndex={-1}>{t('staffBooks.title')}</h1>
      <AddBookForm onAdded={() => void reload()} />
      <section>
        <h2>{t('staffBooks.listTitle')}</h2>
        <SearchForm
          onSearch={(value) => {
            setQ(value);
            setOffset(0);
          }}
        />
        {error !== null && <p className="form-error">{describeError(t, error, i18n.language)}</p>}
        {page === null && error === null && <p>{t('app.loading')}</p>}
        {page !== null && page.items.length === 0 && <p>{t('catalogue.empty')}</p>}
        {page !== null && page.items.length > 0 && (
          <TableWrap label={t('staffBooks.listTitle')}>
            <table>
              <caption className="visually-hidden">{t('staffBooks.listTitle')}</caption>
              <thead>
                <tr>
                  <th scope="col">{t('staffBooks.id')}</th>
                  <th scope="col">{t('staffBooks.bookName')}</th>
                  <th scope="col">{t('staffBooks.available')}</th>
                  <th scope="col">{t('staffBooks.copies')}</th>
                  <th scope="col">{t('staffBooks.actions')}</th>
                </tr>
              </thead>
              <tbody>
                {page.items.map((book) => (
                  <tr key={book.bookId}>
                    <td>{book.bookId}</td>
                    <th scope="row">
                      {book.bookName}
                      {book.author && <span className="muted block">{book.author}</span>}
                    </th>
                    <td>{book.quantity}</td>
                    <td>{book.copies}</td>
                    <td>
                      <CopiesForm book={book} onChanged={() => void reload()} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
        {page !== null && <Pager total={page.total} limit={BOOKS_PAGE_SIZE} offset={offset} onOffset={setOffset} label={t('staffBooks.listTitle')} />}
      </section>
    </>
  );
}

function AddBookForm({ onAdded }: { onAdded: () => void }) {
  const { t } = useTranslation();
  const { api, notify } = useApp();
  const [bookName, setBookName] = useState('');
  const [author, setAuthor] = useState('');
  const [isbn, setIsbn] = useState('');
  const [quantity, setQuantity] = useState('1');
  const { busy, error, run } = useIntentAction();
  const id = useId();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const body = {
      bookName: bookName.trim(),
      ...(author.trim() ? { author: author.trim() } : {}),
      ...(isbn.trim() ? { isbn: isbn.trim() } : {}),
      quantity: Number(quantity),
    };
    return run(`book:${JSON.stringify(body)}`, (key) => api.createBook(body, key), (book) => {
      notify('success', (tt) => tt('staffBooks.added', { id: book.bookId, book: book.bookName, copies: book.copies }));
      setBookName('');
      setAuthor('');
      setIsbn('');
      setQuantity('1');
      onAdded();
    });
  };

  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{t('staffBooks.addTitle')}</h2>
      <form className="form grid-form" onSubmit={(e) => void submit(e)}>
        <div className="field">
          <label htmlFor={`${id}-name`}>{t('staffBooks.bookName')}</label>
          <input id={`${id}-name`} required maxLength={300} value={bookName} onChange={(e) => setBookName(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-author`}>{t('staffBooks.author')}</label>
          <input id={`${id}-author`} maxLength={200} value={author} onChange={(e) => setAuthor(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-isbn`}>{t('staffBooks.isbn')}</label>
          <input
            id={`${id}-isbn`}
            maxLength={17}
            pattern="[0-9Xx\-]{10,17}"
            aria-describedby={`${id}-isbn-hint`}
            value={isbn}
            onChange={(e) => setIsbn(e.target.value)}
          />
          <span id={`${id}-isbn-hint`} className="hint">
            {t('staffBooks.isbnHint')}
          </span>
        </div>
        <div className="field">
          <label htmlFor={`${id}-quantity`}>{t('staffBooks.quantity')}</label>
          <input id={`${id}-quantity`} type="number" inputMode="numeric" required min={0} max={100000} step={1} value={quantity} onChange={(e) => setQuantity(e.target.value)} />
        </div>
        <FormError error={error} />
        <SubmitButton busy={busy}>{t('staffBooks.add')}</SubmitButton>
      </form>
    </section>
  );
}

function CopiesForm({ book, onChanged }: { book: Book; onChanged: () => void }) {
  const { t } = useTranslation();
  const { api, notify } = useApp();
  const [count, setCount] = useState('1');
  const { busy, run } = useIntentAction();
  const id = useId();

  const change = (sign: 1 | -1) => {
    const n = Number(count);
    if (!Number.isInteger(n) || n < 1) {
      notify('error', (tt) => tt('staffBooks.deltaInvalid'));
      return Promise.resolve();
    }
    const delta = sign * n;
    return run(`copies:${book.bookId}:${delta}`, (key) => api.adjustCopies(book.bookId, delta, key), (updated) => {
      notify('success', (tt) => tt('staffBooks.adjusted', { book: updated.bookName, available: updated.quantity, copies: updated.copies }));
      onChanged();
    });
  };

  return (
    <div className="copies-form">
      <label htmlFor={id} className="visually-hidden">
        {t('staffBooks.change', { book: book.bookName })}
      </label>
      <input id={id} type="number" inputMode="numeric" min={1} max={100000} step={1} value={count} onChange={(e) => setCount(e.target.value)} />
      <button type="button" onClick={() => void change(1)} disabled={busy}>
        {t('staffBooks.addCopies')}
      </button>
      <button type="button" onClick={() => void change(-1)} disabled={busy}>
        {t('staffBooks.withdrawCopies')}
      </button>
    </div>
  );
}
