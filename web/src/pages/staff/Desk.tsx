import { useCallback, useEffect, useId, useMemo, useRef, useState, type ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import type { ReservationStatus } from '@bstore/contracts/statuses';
import type { ApiClient, Library, Reservation } from '../../api.ts';
import { StatusLabel } from '../../components/StatusLabel.tsx';
import { TableWrap } from '../../components/TableWrap.tsx';
import { useApp, usePageEvents } from '../../context.ts';
import { describeError } from '../../lib/errors.ts';
import { formatDateTime } from '../../lib/format.ts';
import { hashQuery, useNow, useVisibleInterval } from '../../lib/hooks.ts';
import { isOverdue, isSameDay } from '../../lib/status.ts';
import { LibraryOptions } from '../../components/LibraryOptions.tsx';

/** Reservations read per request, and the most requests per list (the desk of one branch, not an archive). */
const FETCH_SIZE = 100;
const MAX_PAGES = 10;
const STORAGE_KEY = 'bstore.deskLibrary';

export type DeskAction = 'checkOut' | 'checkIn';

/** What the last check-out or check-in of a reservation at this desk gave. */
type Outcome =
  | { kind: 'success'; action: DeskAction; reservation: Reservation; seq: number }
  | { kind: 'error'; action: DeskAction; error: unknown; seq: number };

interface DeskLists {
  awaiting: Reservation[];
  loans: Reservation[];
  expired: Reservation[];
  truncated: boolean;
  /** The reload that read them: an action finished before it started is in them. */
  seq: number;
}

/** Every reservation of a status at a library, page by page (newest first), up to MAX_PAGES pages. */
async function fetchAll(api: ApiClient, status: ReservationStatus, libraryId: number): Promise<{ items: Reservation[]; truncated: boolean }> {
  const items: Reservation[] = [];
  for (let i = 0; i < MAX_PAGES; i++) {
    const page = await api.reservations({ status, libraryId, limit: FETCH_SIZE, offset: items.length });
    items.push(...page.items);
    if (page.items.length === 0 || items.length >= page.total) return { items, truncated: false };
  }
  return { items, truncated: true };
}

function validId(value: string | null): number | null {
  return value !== null && /^[1-9]\d{0,9}$/.test(value) ? Number(value) : null;
}

/** The library of the address (#/staff/desk?libraryId=3), else the one chosen last time. */
function initialLibrary(): number | null {
  const fromHash = validId(hashQuery().get('libraryId'));
  if (fromHash !== null) return fromHash;
  try {
    return validId(localStorage.getItem(STORAGE_KEY));
  } catch {
    return null;
  }
}

function rememberLibrary(libraryId: number | null): void {
  // The address names the library (a bookmark of this desk), without a new history entry.
  window.history.replaceState(null, '', libraryId === null ? '#/staff/desk' : `#/staff/desk?libraryId=${libraryId}`);
  try {
    if (libraryId === null) localStorage.removeItem(STORAGE_KEY);
    else localStorage.setItem(STORAGE_KEY, String(libraryId));
  } catch {
    // Without storage the choice lasts for this page.
  }
}

/** An ISO instant as a sortable number; none sorts last. */
function instant(iso: string | null | undefined): number {
  const ms = iso ? Date.parse(iso) : Number.NaN;
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

/**
 * The circulation desk of one library: copies waiting for their patron (check out), loans
 * (check in; overdue first) and the holds that expired today. Kept fresh by the live stream.
 */
export function Desk() {
  const { t, i18n } = useTranslation();
  const { api, streamEpoch, streamState } = useApp();
  const [libraries, setLibraries] = useState<Library[] | null>(null);
  const [librariesError, setLibrariesError] = useState<unknown>(null);
  const [libraryId, setLibraryId] = useState<number | null>(initialLibrary);
  const libraryRef = useRef(libraryId);
  libraryRef.current = libraryId;
  const [lists, setLists] = useState<DeskLists | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [outcomes, setOutcomes] = useState<ReadonlyMap<number, Outcome>>(new Map());
  const [busy, setBusy] = useState<ReadonlySet<number>>(new Set());
  const busyRef = useRef(new Set<number>());
  const seq = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const focusAfter = useRef<number | null>(null);
  const now = useNow(5_000);
  const fieldId = useId();

  useEffect(() => {
    const controller = new AbortController();
    api.libraries(controller.signal).then(
      (items) => {
        setLibraries(items);
        setLibrariesError(null);
      },
      (err: unknown) => {
        if (!controller.signal.aborted) setLibrariesError(err);
      },
    );
    return () => controller.abort();
  }, [api]);

  const reload = useCallback(async () => {
    const mine = ++seq.current;
    if (libraryId === null) return;
    try {
      const [awaiting, loans, expired] = await Promise.all([
        fetchAll(api, 'bookReserved', libraryId),
        fetchAll(api, 'bookLoaned', libraryId),
        fetchAll(api, 'bookExpired', libraryId),
      ]);
      if (mine !== seq.current) return;
      setLists({ awaiting: awaiting.items, loans: loans.items, expired: expired.items, truncated: awaiting.truncated || loans.truncated || expired.truncated, seq: mine });
      setError(null);
    } catch (err) {
      if (mine === seq.current) setError(err);
    }
  }, [api, libraryId]);

  useEffect(() => {
    void reload();
  }, [reload, streamEpoch]);

  // A change at this library (a pickup, a return, an expiry, a new hold) reloads; a burst makes one reload.
  usePageEvents((page) => {
    if (libraryId === null || page.libraryId !== libraryId) return;
    if (timer.current !== undefined) clearTimeout(timer.current);
    timer.current = setTimeout(() => void reload(), 300);
  });
  useEffect(() => () => clearTimeout(timer.current), []);

  // Without a live stream, poll instead.
  useVisibleInterval(() => {
    if (streamState.kind !== 'live') void reload();
  }, 10_000);

  const choose = (value: string) => {
    const next = validId(value);
    seq.current += 1; // an answer for the previous library is dropped
    setLibraryId(next);
    setLists(null);
    setError(null);
    setOutcomes(new Map());
    rememberLibrary(next);
  };

  const act = async (reservation: Reservation, action: DeskAction) => {
    const id = reservation.reservationId;
    if (busyRef.current.has(id)) return;
    busyRef.current.add(id);
    setBusy(new Set(busyRef.current));
    const forLibrary = libraryRef.current;
    let outcome: Outcome;
    try {
      const answer = action === 'checkOut' ? await api.checkOut(id) : await api.checkIn(id);
      outcome = { kind: 'success', action, reservation: answer, seq: seq.current };
    } catch (err) {
      outcome = { kind: 'error', action, error: err, seq: seq.current };
    } finally {
      busyRef.current.delete(id);
      setBusy(new Set(busyRef.current));
    }
    // The library changed meanwhile: its result belongs to another desk.
    if (forLibrary !== libraryRef.current) return;
    setOutcomes((current) => new Map(current).set(id, outcome));
    focusAfter.current = id;
    void reload();
  };

  // After an action, focus its result, in whichever list its reservation now is.
  useEffect(() => {
    const id = focusAfter.current;
    if (id === null) return;
    const target = document.getElementById(`desk-result-${id}`);
    if (target) {
      focusAfter.current = null;
      target.focus();
    }
  });

  const view = useMemo(() => {
    if (!lists) return null;
    const done = new Map<number, Extract<Outcome, { kind: 'success' }>>();
    for (const [id, outcome] of outcomes) if (outcome.kind === 'success') done.set(id, outcome);
    const loans = new Map(lists.loans.map((r) => [r.reservationId, r]));
    const expiredIds = new Set(lists.expired.map((r) => r.reservationId));
    // The three lists are read side by side: one that moved between the reads shows once, in its later list.
    const awaiting = lists.awaiting
      .filter((r) => !done.has(r.reservationId) && !loans.has(r.reservationId) && !expiredIds.has(r.reservationId))
      .sort((a, b) => instant(a.pickupBy) - instant(b.pickupBy) || a.reservationId - b.reservationId);
    for (const [id, outcome] of done) {
      // A copy checked in here stays in its row, with its result, until the desk changes library.
      if (outcome.action === 'checkIn') loans.set(id, outcome.reservation);
      // A copy checked out here is on loan even before a reload shows it.
      else if (outcome.seq >= lists.seq && !loans.has(id)) loans.set(id, outcome.reservation);
    }
    // Overdue first: the earliest due date first (returned ones in their place, for their result).
    const sortedLoans = [...loans.values()].sort((a, b) => instant(a.dueAt) - instant(b.dueAt) || a.reservationId - b.reservationId);
    const expired = lists.expired.filter((r) => isSameDay(r.updatedAt, now));
    return { awaiting, loans: sortedLoans, expired };
  }, [lists, outcomes, now]);

  const date = (iso: string | null | undefined) => (iso ? <time dateTime={iso}>{formatDateTime(iso, i18n.language)}</time> : t('common.dash'));

  const result = (r: Reservation) => {
    const outcome = outcomes.get(r.reservationId);
    let text = '';
    let className = 'desk-result';
    if (outcome?.kind === 'success') {
      className += ' desk-result-success';
      if (outcome.action === 'checkIn') text = t('desk.checkedIn');
      else
        text = outcome.reservation.dueAt
          ? t('desk.checkedOut', { customer: outcome.reservation.customerId, date: formatDateTime(outcome.reservation.dueAt, i18n.language) })
          : t('desk.checkedOutNoDate', { customer: outcome.reservation.customerId });
    } else if (outcome?.kind === 'error') {
      className += ' desk-result-error';
      text = t('desk.failed', { reason: describeError(t, outcome.error, i18n.language) });
    }
    return (
      <td id={`desk-result-${r.reservationId}`} className={className} tabIndex={-1}>
        {text}
      </td>
    );
  };

  const rowHeader = (r: Reservation) => (
    <th scope="row" id={`desk-row-${r.reservationId}`}>
      <a href={`#/staff/reservations/${r.reservationId}`}>{r.reservationId}</a>
    </th>
  );

  const actionButton = (r: Reservation, action: DeskAction) => {
    const working = busy.has(r.reservationId);
    const idle = action === 'checkOut' ? t('desk.checkOut') : t('desk.checkIn');
    const doing = action === 'checkOut' ? t('desk.checkingOut') : t('desk.checkingIn');
    return (
      <button
        type="button"
        className="button-primary"
        onClick={() => void act(r, action)}
        disabled={working}
        aria-busy={working}
        aria-describedby={`desk-row-${r.reservationId} desk-book-${r.reservationId}`}
      >
        {working ? doing : idle}
      </button>
    );
  };

  return (
    <>
      <h1 tabIndex={-1}>{t('desk.title')}</h1>
      <p>{t('desk.intro')}</p>
      <div className="toolbar card">
        <div className="field">
          <label htmlFor={fieldId}>{t('desk.library')}</label>
          <select id={fieldId} value={libraryId === null ? '' : String(libraryId)} onChange={(e) => choose(e.target.value)}>
            <option value="">{t('desk.chooseLibrary')}</option>
            {libraryId !== null && libraries !== null && !libraries.some((l) => l.libraryId === libraryId) && (
              <option value={String(libraryId)}>#{libraryId}</option>
            )}
            <LibraryOptions libraries={libraries ?? []} />
          </select>
        </div>
      </div>
      {librariesError !== null && <p className="form-error">{describeError(t, librariesError, i18n.language)}</p>}
      {libraries !== null && libraries.length === 0 && <p>{t('desk.noLibraries')}</p>}
      {libraryId === null && <p>{t('desk.pickFirst')}</p>}
      {libraryId !== null && (
        <>
          {error !== null && <p className="form-error">{describeError(t, error, i18n.language)}</p>}
          {view === null && error === null && <p>{t('app.loading')}</p>}
          {lists?.truncated && <p className="muted">{t('desk.truncated', { count: FETCH_SIZE * MAX_PAGES })}</p>}
          {view !== null && (
            <>
              <DeskSection
                title={t('desk.awaitingTitle')}
                count={view.awaiting.length}
                empty={view.awaiting.length === 0}
                emptyText={t('desk.awaitingEmpty')}
                headers={[t('desk.reservation'), t('desk.book'), t('desk.customer'), t('desk.pickupBy'), t('desk.action'), t('desk.result')]}
              >
                {view.awaiting.map((r) => (
                  <tr key={r.reservationId}>
                    {rowHeader(r)}
                    <td id={`desk-book-${r.reservationId}`}>{r.bookName ?? `#${r.bookId}`}</td>
                    <td>{r.customerId}</td>
                    <td>
                      {date(r.pickupBy)}
                      {isOverdue(r.pickupBy, now) && (
                        <>
                          {' '}
                          <strong className="badge badge-overdue">{t('desk.pastPickup')}</strong>
                        </>
                      )}
                    </td>
                    <td>{actionButton(r, 'checkOut')}</td>
                    {result(r)}
                  </tr>
                ))}
              </DeskSection>
              <DeskSection
                title={t('desk.loansTitle')}
                count={view.loans.filter((r) => r.status === 'bookLoaned').length}
                empty={view.loans.length === 0}
                emptyText={t('desk.loansEmpty')}
                headers={[t('desk.reservation'), t('desk.book'), t('desk.customer'), t('desk.status'), t('desk.dueAt'), t('desk.action'), t('desk.result')]}
              >
                {view.loans.map((r) => {
                  const onLoan = r.status === 'bookLoaned';
                  const overdue = onLoan && isOverdue(r.dueAt, now);
                  return (
                    <tr key={r.reservationId} className={overdue ? 'row-overdue' : onLoan ? undefined : 'row-done'}>
                      {rowHeader(r)}
                      <td id={`desk-book-${r.reservationId}`}>{r.bookName ?? `#${r.bookId}`}</td>
                      <td>{r.customerId}</td>
                      <td>
                        <StatusLabel status={r.status} />
                      </td>
                      <td>
                        {date(r.dueAt)}
                        {overdue && (
                          <>
                            {' '}
                            <strong className="badge badge-overdue">{t('desk.overdue')}</strong>
                          </>
                        )}
                      </td>
                      <td>{onLoan ? actionButton(r, 'checkIn') : t('common.dash')}</td>
                      {result(r)}
                    </tr>
                  );
                })}
              </DeskSection>
              <DeskSection
                title={t('desk.expiredTitle')}
                count={view.expired.length}
                empty={view.expired.length === 0}
                emptyText={t('desk.expiredEmpty')}
                headers={[t('desk.reservation'), t('desk.book'), t('desk.customer'), t('desk.pickupBy'), t('desk.expiredAt'), t('desk.result')]}
              >
                {view.expired.map((r) => (
                  <tr key={r.reservationId}>
                    {rowHeader(r)}
                    <td id={`desk-book-${r.reservationId}`}>{r.bookName ?? `#${r.bookId}`}</td>
                    <td>{r.customerId}</td>
                    <td>{date(r.pickupBy)}</td>
                    <td>{date(r.updatedAt)}</td>
                    {result(r)}
                  </tr>
                ))}
              </DeskSection>
            </>
          )}
        </>
      )}
    </>
  );
}

/** One list of the desk: its title and count, a line when it is empty, else its table. */
function DeskSection(props: { title: string; count: number; empty: boolean; emptyText: string; headers: string[]; children: ReactNode }) {
  return (
    <section className="desk-section">
      <h2>
        {props.title} <span className="count">({props.count})</span>
      </h2>
      {props.empty ? (
        <p>{props.emptyText}</p>
      ) : (
        <TableWrap label={props.title}>
          <table>
            <caption className="visually-hidden">{props.title}</caption>
            <thead>
              <tr>
                {props.headers.map((h) => (
                  <th key={h} scope="col">
                    {h}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>{props.children}</tbody>
          </table>
        </TableWrap>
      )}
    </section>
  );
}
