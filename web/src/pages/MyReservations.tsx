import { useCallback, useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { TERMINAL_STATUSES } from '@bstore/contracts/statuses';
import { CANCELLABLE_STATUSES, type Page, type ReservationPage } from '../api.ts';
import { ConfirmDialog } from '../components/ConfirmDialog.tsx';
import { Pager } from '../components/Pager.tsx';
import { StatusLabel } from '../components/StatusLabel.tsx';
import { Timeline } from '../components/Timeline.tsx';
import { useApp, usePageEvents } from '../context.ts';
import { describeError } from '../lib/errors.ts';
import { formatDateTime } from '../lib/format.ts';
import { useNow, useVisibleInterval } from '../lib/hooks.ts';
import { fresher, isOverdue, STATUS_RANK } from '../lib/status.ts';

const PAGE_SIZE = 20;

/** The patron's reservations, kept live by the event stream; cancel with a confirmation. */
export function MyReservations() {
  const { t, i18n } = useTranslation();
  const { api, notify, session, streamState, streamEpoch } = useApp();
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<Page<ReservationPage> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [confirming, setConfirming] = useState<ReservationPage | null>(null);
  const lastConfirmed = useRef<number | null>(null);
  const [cancelling, setCancelling] = useState<ReadonlySet<number>>(new Set());
  const seq = useRef(0);
  // "Overdue" follows the clock, not only the next change of the reservation.
  const now = useNow(5_000);

  const reload = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const answer = await api.reservationPages({ limit: PAGE_SIZE, offset });
      if (mine !== seq.current) return;
      setPage(answer);
      setError(null);
    } catch (err) {
      if (mine === seq.current) setError(err);
    }
  }, [api, offset]);

  useEffect(() => {
    void reload();
  }, [reload, streamEpoch]);

  // Without a live stream, poll instead.
  useVisibleInterval(() => {
    if (streamState.kind !== 'live') void reload();
  }, 5_000);

  const shown = useRef(page);
  useEffect(() => {
    shown.current = page;
  }, [page]);

  usePageEvents((incoming) => {
    if (incoming.customerId !== session.user) return;
    const known = shown.current?.items.some((p) => p.reservationId === incoming.reservationId) ?? false;
    // A reservation not on this page (a new one): the list is ordered by last change, reload it.
    if (!known) {
      void reload();
      return;
    }
    setPage((current) => current && { ...current, items: current.items.map((p) => (p.reservationId === incoming.reservationId ? fresher(p, incoming) : p)) });
  });

  const cancel = async (target: ReservationPage) => {
    setConfirming(null);
    setCancelling((s) => new Set(s).add(target.reservationId));
    try {
      await api.cancel(target.reservationId);
      setPage((current) =>
        current && {
          ...current,
          items: current.items.map((p) =>
            p.reservationId === target.reservationId && STATUS_RANK[p.status] < STATUS_RANK.bookCancel ? { ...p, status: 'bookCancel' } : p,
          ),
        },
      );
      notify('success', (tt) => tt('my.cancelRequested', { id: target.reservationId }));
    } catch (err) {
      notify('error', (tt, lng) => describeError(tt, err, lng));
      void reload();
    } finally {
      setCancelling((s) => {
        const next = new Set(s);
        next.delete(target.reservationId);
        return next;
      });
    }
  };

  return (
    <>
      <h1 tabIndex={-1}>{t('my.title')}</h1>
      <p>{t('my.intro')}</p>
      {error !== null && <p className="form-error">{describeError(t, error, i18n.language)}</p>}
      {page === null && error === null && <p>{t('app.loading')}</p>}
      {page !== null && page.items.length === 0 && <p>{t('my.empty')}</p>}
      {page !== null && page.items.length > 0 && (
        <ul className="reservation-list">
          {page.items.map((r) => (
            <ReservationCard key={r.reservationId} reservation={r} now={now} busy={cancelling.has(r.reservationId)} onCancel={() => setConfirming(r)} />
          ))}
        </ul>
      )}
      {page !== null && <Pager total={page.total} limit={PAGE_SIZE} offset={offset} onOffset={setOffset} label={t('my.title')} />}
      <ConfirmDialog
        open={confirming !== null}
        title={t('my.confirmTitle')}
        body={
          confirming
            ? t(confirming.status === 'bookWaiting' ? 'my.confirmBodyWaiting' : 'my.confirmBody', {
                id: confirming.reservationId,
                book: confirming.bookName ?? `#${confirming.bookId}`,
              })
            : ''
        }
        confirmLabel={t('my.confirmYes')}
        cancelLabel={t('common.cancel')}
        onConfirm={() => {
          if (!confirming) return;
          lastConfirmed.current = confirming.reservationId;
          void cancel(confirming);
        }}
        fallbackFocus={() => (lastConfirmed.current === null ? null : document.getElementById(`reservation-${lastConfirmed.current}`))}
        onCancel={() => setConfirming(null)}
      />
    </>
  );
}

/** Where the reservation stands in its life, in a sentence: its place in line, its pickup, its loan, its end. */
function LifeNote({ reservation: r, now }: { reservation: ReservationPage; now: number }) {
  const { t, i18n } = useTranslation();
  const date = (iso: string) => formatDateTime(iso, i18n.language);
  switch (r.status) {
    case 'bookWaiting':
      return (
        <p className="life life-waiting">
          {typeof r.queuePosition === 'number' ? t('my.placeInLine', { position: r.queuePosition }) : t('my.inLine')}
        </p>
      );
    case 'bookReserved': {
      const library = r.libraryName ?? (r.libraryId !== null ? `#${r.libraryId}` : t('my.noLibrary'));
      return (
        <p className="life life-pickup">
          {r.pickupBy ? t('my.readyForPickup', { library, date: date(r.pickupBy) }) : t('my.readyForPickupNoDate', { library })}
        </p>
      );
    }
    case 'bookLoaned':
      if (!r.dueAt) return null;
      return isOverdue(r.dueAt, now) ? (
        <p className="life life-overdue">
          <strong className="badge badge-overdue">{t('my.overdue')}</strong> {t('my.overdueSince', { date: date(r.dueAt) })}
        </p>
      ) : (
        <p className="life life-loan">{t('my.due', { date: date(r.dueAt) })}</p>
      );
    case 'bookReturned':
      return <p className="life life-ended">{t('my.returnedOn', { date: date(r.updatedAt) })}</p>;
    case 'bookExpired':
      return <p className="life life-ended">{t('my.expiredOn', { date: date(r.pickupBy ?? r.updatedAt) })}</p>;
    default:
      return null;
  }
}

function ReservationCard({ reservation: r, now, busy, onCancel }: { reservation: ReservationPage; now: number; busy: boolean; onCancel: () => void }) {
  const { t, i18n } = useTranslation();
  const titleId = `reservation-${r.reservationId}`;
  const cancellable = CANCELLABLE_STATUSES.includes(r.status);
  const ended = TERMINAL_STATUSES.includes(r.status);
  return (
    <li className={`card reservation${ended ? ' reservation-ended' : ''}`} aria-labelledby={titleId}>
      <h2 id={`reservation-${r.reservationId}`} className="h3" tabIndex={-1}>
        {r.bookName ?? `#${r.bookId}`}
      </h2>
      <dl className="facts">
        <div>
          <dt>{t('my.id')}</dt>
          <dd>{r.reservationId}</dd>
        </div>
        <div>
          <dt>{t('my.status')}</dt>
          <dd>
            <StatusLabel status={r.status} />
          </dd>
        </div>
        <div>
          <dt>{t('my.library')}</dt>
          <dd>{r.libraryName ?? t('my.noLibrary')}</dd>
        </div>
        <div>
          <dt>{t('my.created')}</dt>
          <dd>
            <time dateTime={r.createdAt}>{formatDateTime(r.createdAt, i18n.language)}</time>
          </dd>
        </div>
        <div>
          <dt>{t('my.updated')}</dt>
          <dd>
            <time dateTime={r.updatedAt}>{formatDateTime(r.updatedAt, i18n.language)}</time>
          </dd>
        </div>
        {r.status === 'bookReserved' && r.pickupBy && (
          <div>
            <dt>{t('my.pickupBy')}</dt>
            <dd>
              <time dateTime={r.pickupBy}>{formatDateTime(r.pickupBy, i18n.language)}</time>
            </dd>
          </div>
        )}
        {r.status === 'bookLoaned' && r.dueAt && (
          <div>
            <dt>{t('my.dueAt')}</dt>
            <dd>
              <time dateTime={r.dueAt}>{formatDateTime(r.dueAt, i18n.language)}</time>
            </dd>
          </div>
        )}
        {r.status === 'bookWaiting' && typeof r.queuePosition === 'number' && (
          <div>
            <dt>{t('my.queuePosition')}</dt>
            <dd>{r.queuePosition}</dd>
          </div>
        )}
      </dl>
      <LifeNote reservation={r} now={now} />
      {cancellable && (
        <button type="button" className="button-danger" onClick={onCancel} disabled={busy} aria-busy={busy} aria-describedby={titleId}>
          {busy ? t('my.cancelling') : t('my.cancel')}
        </button>
      )}
      <details>
        <summary>{t('my.timeline')}</summary>
        <Timeline entries={r.timeline} caption={t('my.showTimeline', { id: r.reservationId })} />
      </details>
    </li>
  );
}
