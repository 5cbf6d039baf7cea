import { useCallback, useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { ReservationPage } from '../../api.ts';
import { StatusLabel } from '../../components/StatusLabel.tsx';
import { Timeline } from '../../components/Timeline.tsx';
import { useApp, usePageEvents } from '../../context.ts';
import { describeError } from '../../lib/errors.ts';
import { formatDateTime } from '../../lib/format.ts';
import { fresher } from '../../lib/status.ts';

/** One reservation and its timeline: each event, when, which service emitted it, the status it set. */
export function ReservationDetail({ reservationId }: { reservationId: number }) {
  const { t, i18n } = useTranslation();
  const { api, streamEpoch } = useApp();
  const [page, setPage] = useState<ReservationPage | null>(null);
  const [error, setError] = useState<unknown>(null);

  const reload = useCallback(async () => {
    try {
      setPage(await api.reservationPage(reservationId));
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, [api, reservationId]);

  useEffect(() => {
    void reload();
  }, [reload, streamEpoch]);

  usePageEvents((incoming) => {
    if (incoming.reservationId === reservationId) setPage((current) => (current ? fresher(current, incoming) : incoming));
  });

  return (
    <>
      <p>
        <a href="#/staff/reservations">← {t('reservationDetail.back')}</a>
      </p>
      <h1 tabIndex={-1}>{t('reservationDetail.title', { id: reservationId })}</h1>
      {error !== null && <p className="form-error">{describeError(t, error, i18n.language)}</p>}
      {page === null && error === null && <p>{t('app.loading')}</p>}
      {page !== null && (
        <>
          <section className="card" aria-labelledby="reservation-summary">
            <h2 id="reservation-summary">{t('reservationDetail.summary')}</h2>
            <dl className="facts">
              <div>
                <dt>{t('reservationDetail.book')}</dt>
                <dd>
                  {page.bookName ?? t('common.dash')} (#{page.bookId})
                </dd>
              </div>
              <div>
                <dt>{t('reservationDetail.customer')}</dt>
                <dd>{page.customerId}</dd>
              </div>
              <div>
                <dt>{t('reservationDetail.status')}</dt>
                <dd>
                  <StatusLabel status={page.status} />
                </dd>
              </div>
              <div>
                <dt>{t('reservationDetail.library')}</dt>
                <dd>
                  {page.libraryName ?? t('common.dash')}{' '}
                  <a href={`#/staff/assignments?reservationId=${page.reservationId}`}>({t('nav.assignments')})</a>
                </dd>
              </div>
              <div>
                <dt>{t('reservationDetail.created')}</dt>
                <dd>
                  <time dateTime={page.createdAt}>{formatDateTime(page.createdAt, i18n.language)}</time>
                </dd>
              </div>
              <div>
                <dt>{t('reservationDetail.updated')}</dt>
                <dd>
                  <time dateTime={page.updatedAt}>{formatDateTime(page.updatedAt, i18n.language)}</time>
                </dd>
              </div>
            </dl>
          </section>
          <section>
            <h2>{t('timeline.title')}</h2>
            <Timeline entries={page.timeline} caption={t('my.showTimeline', { id: page.reservationId })} showTrace />
          </section>
        </>
      )}
    </>
  );
}
