import { useTranslation } from 'react-i18next';
import type { TimelineEntry } from '../api.ts';
import { formatDateTime } from '../lib/format.ts';
import { StatusLabel } from './StatusLabel.tsx';
import { TableWrap } from './TableWrap.tsx';

/**
 * The events of one reservation, oldest first: type, time, the service that emitted it, status;
 * with `showTrace` (staff) also each event's trace id, to find its trace in the tracing backend.
 */
export function Timeline({ entries, caption, showTrace = false }: { entries: TimelineEntry[]; caption: string; showTrace?: boolean }) {
  const { t, i18n } = useTranslation();
  if (entries.length === 0) return <p>{t('timeline.empty')}</p>;
  return (
    <TableWrap label={caption}>
      <table className="timeline">
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{t('timeline.event')}</th>
            <th scope="col">{t('timeline.time')}</th>
            <th scope="col">{t('timeline.service')}</th>
            <th scope="col">{t('timeline.status')}</th>
            {showTrace && <th scope="col">{t('timeline.trace')}</th>}
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.eventId}>
              <th scope="row">
                <code>{e.eventType}</code>
              </th>
              <td>
                <time dateTime={e.occurredAt}>{formatDateTime(e.occurredAt, i18n.language)}</time>
              </td>
              <td>{e.service}</td>
              <td>
                <StatusLabel status={e.status} />
              </td>
              {showTrace && <td>{e.traceId ? <code className="trace-id">{e.traceId}</code> : t('timeline.noTrace')}</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}
