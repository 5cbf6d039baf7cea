import type { ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { describeError } from '../lib/errors.ts';

/** A form's refusal, said where it was pressed (and announced: `role="alert"`); nothing without one. */
export function FormError({ error }: { error: unknown }) {
  const { t, i18n } = useTranslation();
  if (error === null) return null;
  return (
    <p className="form-error" role="alert">
      {describeError(t, error, i18n.language)}
    </p>
  );
}

/** A form's submit button, disabled and marked busy while its action runs. */
export function SubmitButton({ busy, children }: { busy: boolean; children: ReactNode }) {
  return (
    <div className="buttons">
      <button type="submit" className="button-primary" disabled={busy} aria-busy={busy}>
        {children}
      </button>
    </div>
  );
}

/** A filter form's buttons: filter (submit), reset the filters and, when given, reload. */
export function FilterButtons({ onReset, onRefresh }: { onReset: () => void; onRefresh?: () => void }) {
  const { t } = useTranslation();
  return (
    <div className="buttons">
      <button type="submit" className="button-primary">
        {t('common.filter')}
      </button>
      <button type="button" onClick={onReset}>
        {t('common.resetFilters')}
      </button>
      {onRefresh && (
        <button type="button" onClick={onRefresh}>
          {t('common.refresh')}
        </button>
      )}
    </div>
  );
}

/**
 * What a list shows before or instead of its rows: the error of its last load, "loading" before
 * the first answer, `empty` for no rows. Renders the rows (`children`) once there are some.
 */
export function ListStatus({ page, error, empty, children }: { page: { items: readonly unknown[] } | null; error: unknown; empty: string; children: ReactNode }) {
  const { t, i18n } = useTranslation();
  return (
    <>
      {error !== null && <p className="form-error">{describeError(t, error, i18n.language)}</p>}
      {page === null && error === null && <p>{t('app.loading')}</p>}
      {page !== null && page.items.length === 0 && <p>{empty}</p>}
      {page !== null && page.items.length > 0 && children}
    </>
  );
}
