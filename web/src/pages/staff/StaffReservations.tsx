import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { RESERVATION_STATUSES, type ReservationStatus } from '@bstore/contracts/statuses';
import type { Page, ReservationPage } from '../../api.ts';
import { Pager } from '../../components/Pager.tsx';
import { statusText, StatusLabel } from '../../components/StatusLabel.tsx';
import { DataTable } from '../../components/TableWrap.tsx';
import { useApp, usePageEvents } from '../../context.ts';
import { formatDateTime } from '../../lib/format.ts';
import { FilterButtons, ListStatus } from '../../components/FormParts.tsx';

const PAGE_SIZE = 20;

interface Filters {
  status: ReservationStatus | '';
  customerId: string;
}

/** Every reservation (staff), filtered by status and patron, paged, kept fresh by the stream. */
export function StaffReservations() {
  const { t, i18n } = useTranslation();
  const { api, streamEpoch } = useApp();
  const [draft, setDraft] = useState<Filters>({ status: '', customerId: '' });
  const [filters, setFilters] = useState<Filters>({ status: '', customerId: '' });
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<Page<ReservationPage> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const seq = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const id = useId();

  const reload = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const answer = await api.reservationPages({
        ...(filters.status ? { status: filters.status } : {}),
        ...(filters.customerId ? { customerId: filters.customerId } : {}),
        limit: PAGE_SIZE,
        offset,
      });
      if (mine !== seq.current) return;
      setPage(answer);
      setError(null);
    } catch (err) {
      if (mine === seq.current) setError(err);
    }
  }, [api, filters, offset]);

  useEffect(() => {
    void reload();
  }, [reload, streamEpoch]);

  // A burst of events (a reservation moves through several statuses) makes one reload.
  usePageEvents(() => {
    if (timer.current !== undefined) clearTimeout(timer.current);
    timer.current = setTimeout(() => void reload(), 300);
  });
  useEffect(() => () => clearTimeout(timer.current), []);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setFilters({ status: draft.status, customerId: draft.customerId.trim() });
    setOffset(0);
  };

  return (
    <>
      <h1 tabIndex={-1}>{t('staffReservations.title')}</h1>
      <form className="inline-form card" onSubmit={submit} aria-label={t('common.filter')}>
        <div className="field">
          <label htmlFor={`${id}-status`}>{t('staffReservations.statusFilter')}</label>
          <select id={`${id}-status`} value={draft.status} onChange={(e) => setDraft({ ...draft, status: e.target.value as Filters['status'] })}>
            <option value="">{t('common.anyStatus')}</option>
            {RESERVATION_STATUSES.map((s) => (
              <option key={s} value={s}>
                {statusText(t, s)}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${id}-customer`}>{t('staffReservations.customerFilter')}</label>
          <input
            id={`${id}-customer`}
            maxLength={64}
            pattern="[A-Za-z0-9._@\-]{1,64}"
            value={draft.customerId}
            onChange={(e) => setDraft({ ...draft, customerId: e.target.value })}
          />
        </div>
        <FilterButtons
          onReset={() => {
            setDraft({ status: '', customerId: '' });
            setFilters({ status: '', customerId: '' });
            setOffset(0);
          }}
        />
      </form>
      <ListStatus page={page} error={error} empty={t('staffReservations.empty')}>
        <DataTable title={t('staffReservations.title')} columns={[t('staffReservations.id'), t('staffReservations.book'), t('staffReservations.customer'), t('staffReservations.status'), t('staffReservations.library'), t('staffReservations.updated'), t('staffReservations.details')]}>
          {page?.items.map((r) => (
            <tr key={r.reservationId}>
              <th scope="row">{r.reservationId}</th>
              <td>{r.bookName ?? `#${r.bookId}`}</td>
              <td>{r.customerId}</td>
              <td>
                <StatusLabel status={r.status} />
              </td>
              <td>{r.libraryName ?? t('common.dash')}</td>
              <td>
                <time dateTime={r.updatedAt}>{formatDateTime(r.updatedAt, i18n.language)}</time>
              </td>
              <td>
                <a href={`#/staff/reservations/${r.reservationId}`}>{t('staffReservations.openTimeline', { id: r.reservationId })}</a>
              </td>
            </tr>
          ))}
        </DataTable>
      </ListStatus>
      {page !== null && <Pager total={page.total} limit={PAGE_SIZE} offset={offset} onOffset={setOffset} label={t('staffReservations.title')} />}
    </>
  );
}
