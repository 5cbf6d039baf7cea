import { useTranslation } from 'react-i18next';
import { RESERVATION_STATUSES, type ReservationStatus } from '@bstore/contracts/statuses';

function isKnown(status: string): status is ReservationStatus {
  return (RESERVATION_STATUSES as readonly string[]).includes(status);
}

/** A reservation status in words, with the seed's status code beside it: "Reserved (bookReserved)". */
export function StatusLabel({ status }: { status: string }) {
  const { t } = useTranslation();
  const words = isKnown(status) ? t(`status.${status}`) : t('status.unknown');
  return (
    <span className={`status status-${isKnown(status) ? status : 'unknown'}`}>
      {words} (<code>{status}</code>)
    </span>
  );
}

/** The same, as plain text (for messages and option labels). */
export function statusText(t: (key: `status.${ReservationStatus | 'unknown'}`) => string, status: string): string {
  return `${isKnown(status) ? t(`status.${status}`) : t('status.unknown')} (${status})`;
}
