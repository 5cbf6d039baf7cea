import { useCallback, useEffect, useId, useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { DeadLetter, DeadLetterPage } from '../../api.ts';
import { Pager } from '../../components/Pager.tsx';
import { TableWrap } from '../../components/TableWrap.tsx';
import { useApp } from '../../context.ts';
import { describeError } from '../../lib/errors.ts';
import { formatDateTime } from '../../lib/format.ts';
import { useIntentKeys } from '../../lib/intent-key.ts';

const PAGE_SIZE = 20;

/** The events consumers parked after their retries, across services; replay one. */
export function DeadLetters() {
  const { t, i18n } = useTranslation();
  const { api, notify } = useApp();
  const [pendingOnly, setPendingOnly] = useState(false);
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<DeadLetterPage | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [replaying, setReplaying] = useState<string | null>(null);
  const { keyFor, settle } = useIntentKeys();
  const id = useId();

  const reload = useCallback(async () => {
    try {
      setPage(await api.deadLetters({ pending: pendingOnly, limit: PAGE_SIZE, offset }));
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, [api, pendingOnly, offset]);

  useEffect(() => {
    void reload();
  }, [reload]);

  const replay = async (letter: DeadLetter) => {
    if (replaying) return;
    const intent = `replay:${letter.id}`;
    setReplaying(letter.id);
    try {
      const result = await api.replayDeadLetter(letter.id, keyFor(intent));
      settle(intent);
      notify(result.outcome === 'handled' ? 'success' : 'info', (tt) => tt(`deadLetters.outcome_${result.outcome}`, { id: letter.id }));
    } catch (err) {
      settle(intent, err);
      notify('error', (tt, lng) => describeError(tt, err, lng));
    } finally {
      setReplaying(null);
      void reload();
    }
  };

  return (
    <>
      <h1 tabIndex={-1}>{t('deadLetters.title')}</h1>
      <p>{t('deadLetters.intro')}</p>
      <div className="toolbar card">
        <div className="field-check">
          <input
            id={`${id}-pending`}
            type="checkbox"
            checked={pendingOnly}
            onChange={(e) => {
              setPendingOnly(e.target.checked);
              setOffset(0);
            }}
          />
          <label htmlFor={`${id}-pending`}>{t('deadLetters.pendingOnly')}</label>
        </div>
        <button type="button" onClick={() => void reload()}>
          {t('common.refresh')}
        </button>
      </div>
      {error !== null && <p className="form-error">{describeError(t, error, i18n.language)}</p>}
      {page?.partial && <p className="form-error">{t('deadLetters.partial', { services: page.failures.map((f) => `${f.service} (${f.code})`).join(', ') })}</p>}
      {page === null && error === null && <p>{t('app.loading')}</p>}
      {page !== null && page.items.length === 0 && <p>{t('deadLetters.empty')}</p>}
      {page !== null && page.items.length > 0 && (
        <TableWrap label={t('deadLetters.title')}>
          <table>
            <caption className="visually-hidden">{t('deadLetters.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('deadLetters.id')}</th>
                <th scope="col">{t('deadLetters.event')}</th>
                <th scope="col">{t('deadLetters.consumer')}</th>
                <th scope="col">{t('deadLetters.error')}</th>
                <th scope="col">{t('deadLetters.deliveries')}</th>
                <th scope="col">{t('deadLetters.created')}</th>
                <th scope="col">{t('deadLetters.replayed')}</th>
                <th scope="col">{t('deadLetters.actions')}</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((letter) => (
                <tr key={letter.id}>
                  <th scope="row">
                    <code>{letter.id}</code>
                  </th>
                  <td>
                    <code>{letter.eventType}</code>
                    <span className="muted block">{letter.service}</span>
                  </td>
                  <td>{letter.consumer}</td>
                  <td className="wrap">{letter.error}</td>
                  <td>{letter.deliveries}</td>
                  <td>
                    <time dateTime={letter.createdAt}>{formatDateTime(letter.createdAt, i18n.language)}</time>
                  </td>
                  <td>{letter.replayedAt ? <time dateTime={letter.replayedAt}>{formatDateTime(letter.replayedAt, i18n.language)}</time> : t('deadLetters.notReplayed')}</td>
                  <td>
                    <button
                      type="button"
                      onClick={() => void replay(letter)}
                      disabled={replaying !== null || letter.replayedAt !== null}
                      aria-busy={replaying === letter.id}
                      aria-label={t('deadLetters.replayLabel', { id: letter.id })}
                    >
                      {replaying === letter.id ? t('deadLetters.replaying') : t('deadLetters.replay')}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {page !== null && <Pager total={page.total} limit={PAGE_SIZE} offset={offset} onOffset={setOffset} label={t('deadLetters.title')} />}
    </>
  );
}
