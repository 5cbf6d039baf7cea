import { useCallback, useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { Reservation, ReservationPage } from '../../api.ts';
import { StatusLabel } from '../../components/StatusLabel.tsx';
import { Timeline } from '../../components/Timeline.tsx';
import { useApp, usePageEvents } from '../../context.ts';
import { describeError } from '../../lib/errors.ts';
import { formatDateTime } from '../../lib/format.ts';
import { useNow } from '../../lib/hooks.ts';
import { fresher, isOverdue, STATUS_RANK } from '../../lib/status.ts';
import type { DeskAction } from './Desk.tsx';

type Outcome = { kind: 'success'; action: DeskAction; reservation: Reservation } | { kind: 'error'; action: DeskAction; error: unknown };

/** One reservation and its timeline: each event, when, which service emitted it, the status it set. */
export function ReservationDetail({ reservationId }: { reservationId: number }) {
  const { t, i18n } = useTranslation();
  const { api, streamEpoch } = useApp();
  const [page, setPage] = useState<ReservationPage | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const busyRef = useRef(false);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const resultRef = useRef<HTMLParagraphElement>(null);
  const now = useNow(5_000);

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

  const act = async (action: DeskAction) => {
    if (busyRef.current) return;
    busyRef.current = true;
    setBusy(true);
    try {
      const answer = action === 'checkOut' ? await api.checkOut(reservationId) : await api.checkIn(reservationId);
      setOutcome({ kind: 'success', action, reservation: answer });
      // The reservation changed now; its page (and timeline) follows on the stream. Its time stays the
      // page's, so the stream's newer version replaces this one.
      setPage((current) =>
        current && STATUS_RANK[answer.status] > STATUS_RANK[current.status]
          ? { ...current, status: answer.status, dueAt: answer.dueAt ?? current.dueAt ?? null, pickupBy: answer.pickupBy ?? current.pickupBy ?? null }
          : current,
      );
    } catch (err) {
      setOutcome({ kind: 'error', action, error: err });
      void reload();
    } finally {
      busyRef.current = false;
      setBusy(false);
    }
    requestAnimationFrame(() => resultRef.current?.focus());
  };

  const outcomeText = (() => {
    if (!outcome) return '';
    if (outcome.kind === 'error') return t('desk.failed', { reason: describeError(t, outcome.error, i18n.language) });
    if (outcome.action === 'checkIn') return t('desk.checkedIn');
    const r = outcome.reservation;
    return r.dueAt
      ? t('desk.checkedOut', { customer: r.customerId, date: formatDateTime(r.dueAt, i18n.language) })
      : t('desk.checkedOutNoDate', { customer: r.customerId });
  })();
  const deskAction: DeskAction | null = page?.status === 'bookReserved' ? 'checkOut' : page?.status === 'bookLoaned' ? 'checkIn' : null;

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
              {page.pickupBy && (page.status === 'bookReserved' || page.status === 'bookExpired') && (
                <div>
                  <dt>{t('reservationDetail.pickupBy')}</dt>
                  <dd>
                    <time dateTime={page.pickupBy}>{formatDateTime(page.pickupBy, i18n.language)}</time>
                  </dd>
                </div>
              )}
              {page.dueAt && (page.status === 'bookLoaned' || page.status === 'bookReturned') && (
                <div>
                  <dt>{t('reservationDetail.dueAt')}</dt>
                  <dd>
                    <time dateTime={page.dueAt}>{formatDateTime(page.dueAt, i18n.language)}</time>
                    {page.status === 'bookLoaned' && isOverdue(page.dueAt, now) && (
                      <>
                        {' '}
                        <strong className="badge badge-overdue">{t('desk.overdue')}</strong>
                      </>
                    )}
                  </dd>
                </div>
              )}
              {page.status === 'bookWaiting' && typeof page.queuePosition === 'number' && (
                <div>
                  <dt>{t('reservationDetail.queuePosition')}</dt>
                  <dd>{page.queuePosition}</dd>
                </div>
              )}
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
          {(deskAction !== null || outcome !== null) && (
            <section className="card" aria-labelledby="reservation-desk">
              <h2 id="reservation-desk">{t('reservationDetail.deskTitle')}</h2>
              {deskAction !== null && <p>{deskAction === 'checkOut' ? t('reservationDetail.deskReserved') : t('reservationDetail.deskLoaned')}</p>}
              {deskAction !== null && (
                <button type="button" className="button-primary" onClick={() => void act(deskAction)} disabled={busy} aria-busy={busy}>
                  {deskAction === 'checkOut' ? (busy ? t('desk.checkingOut') : t('desk.checkOut')) : busy ? t('desk.checkingIn') : t('desk.checkIn')}
                </button>
              )}
              {outcome !== null && (
                <p ref={resultRef} tabIndex={-1} className={`desk-result ${outcome.kind === 'success' ? 'desk-result-success' : 'desk-result-error'}`}>
                  {outcomeText}
                </p>
              )}
            </section>
          )}
          <section>
            <h2>{t('timeline.title')}</h2>
            <Timeline entries={page.timeline} caption={t('my.showTimeline', { id: page.reservationId })} showTrace />
          </section>
        </>
      )}
    </>
  );
}
