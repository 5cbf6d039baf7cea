import { useTranslation } from 'react-i18next';

interface PagerProps {
  total: number;
  limit: number;
  offset: number;
  onOffset: (offset: number) => void;
  label: string;
}

/** Previous / next page of a list with limit and offset. */
export function Pager({ total, limit, offset, onOffset, label }: PagerProps) {
  const { t } = useTranslation();
  if (total === 0) return null;
  const from = offset + 1;
  const to = Math.min(offset + limit, total);
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" onClick={() => onOffset(Math.max(0, offset - limit))} disabled={offset === 0}>
        {t('common.previous')}
      </button>
      <span>{t('common.pageInfo', { from, to, total })}</span>
      <button type="button" onClick={() => onOffset(offset + limit)} disabled={to >= total}>
        {t('common.next')}
      </button>
    </nav>
  );
}
