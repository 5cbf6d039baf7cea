import { useId, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';

/** A search box: the query is applied on submit (Enter or the button), cleared with "Clear". */
export function SearchForm({ onSearch, initial = '' }: { onSearch: (q: string) => void; initial?: string }) {
  const { t } = useTranslation();
  const [q, setQ] = useState(initial);
  const id = useId();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    onSearch(q.trim());
  };
  return (
    <form role="search" className="inline-form" onSubmit={submit}>
      <div className="field">
        <label htmlFor={id}>{t('common.searchLabel')}</label>
        <input id={id} type="search" maxLength={100} value={q} onChange={(e) => setQ(e.target.value)} />
      </div>
      <div className="buttons">
        <button type="submit" className="button-primary">
          {t('common.search')}
        </button>
        <button
          type="button"
          onClick={() => {
            setQ('');
            onSearch('');
          }}
        >
          {t('common.clear')}
        </button>
      </div>
    </form>
  );
}
