import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import type { Assignment, Page } from '../../api.ts';
import { Pager } from '../../components/Pager.tsx';
import { DataTable } from '../../components/TableWrap.tsx';
import { useApp } from '../../context.ts';
import { formatDateTime } from '../../lib/format.ts';
import { hashQuery } from '../../lib/hooks.ts';
import { FilterButtons, ListStatus } from '../../components/FormParts.tsx';

const PAGE_SIZE = 20;

const STATUS_KEYS = {
  assigned: 'assignments.statusAssigned',
  released: 'assignments.statusReleased',
  voided: 'assignments.statusVoided',
  failed: 'assignments.statusFailed',
  closed: 'assignments.statusClosed',
} as const;

function initialFilter(): string {
  const value = hashQuery().get('reservationId') ?? '';
  return /^[1-9]\d*$/.test(value) ? value : '';
}

/** Which library serves which reservation; filter by reservation. */
export function Assignments() {
  const { t, i18n } = useTranslation();
  const { api } = useApp();
  const [draft, setDraft] = useState(initialFilter);
  const [reservationId, setReservationId] = useState(initialFilter);
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<Page<Assignment> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const id = useId();

  const reload = useCallback(async () => {
    try {
      setPage(await api.assignments({ ...(reservationId ? { reservationId: Number(reservationId) } : {}), limit: PAGE_SIZE, offset }));
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, [api, reservationId, offset]);

  useEffect(() => {
    void reload();
  }, [reload]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setReservationId(draft.trim());
    setOffset(0);
  };

  return (
    <>
      <h1 tabIndex={-1}>{t('assignments.title')}</h1>
      <form className="inline-form card" onSubmit={submit} aria-label={t('common.filter')}>
        <div className="field">
          <label htmlFor={`${id}-rid`}>{t('assignments.filterLabel')}</label>
          <input id={`${id}-rid`} type="number" inputMode="numeric" min={1} step={1} value={draft} onChange={(e) => setDraft(e.target.value)} />
        </div>
        <FilterButtons
          onReset={() => {
            setDraft('');
            setReservationId('');
            setOffset(0);
          }}
          onRefresh={() => void reload()}
        />
      </form>
      <ListStatus page={page} error={error} empty={t('assignments.empty')}>
        <DataTable title={t('assignments.title')} columns={[t('assignments.id'), t('assignments.reservation'), t('assignments.book'), t('assignments.customer'), t('assignments.library'), t('assignments.status'), t('assignments.created')]}>
          {page?.items.map((a) => (
            <tr key={a.assignmentId}>
              <th scope="row">{a.assignmentId}</th>
              <td>
                <a href={`#/staff/reservations/${a.reservationId}`}>{a.reservationId}</a>
              </td>
              <td>{a.bookId}</td>
              <td>{a.customerId}</td>
              <td>{a.libraryName ?? t('common.dash')}</td>
              <td>
                {t(STATUS_KEYS[a.status])} (<code>{a.status}</code>)
              </td>
              <td>
                <time dateTime={a.createdAt}>{formatDateTime(a.createdAt, i18n.language)}</time>
              </td>
            </tr>
          ))}
        </DataTable>
      </ListStatus>
      {page !== null && <Pager total={page.total} limit={PAGE_SIZE} offset={offset} onOffset={setOffset} label={t('assignments.title')} />}
    </>
  );
}
