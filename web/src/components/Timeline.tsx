import { useTranslation } from 'react-i18next';
import type { TimelineEntry } from '../api.ts';
import { formatDateTime } from '../lib/format.ts';
import { StatusLabel } from './StatusLabel.tsx';
import { TableWrap } from './TableWrap.tsx';

/** The events of one reservation, oldest first: type, time, the service that emitted it, status. */
export function Timeline({ entries, caption }: { entries: TimelineEntry[]; caption: string }) {
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
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}
