import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import type { LibraryWithLoad } from '../../api.ts';
import { TableWrap } from '../../components/TableWrap.tsx';
import { useApp } from '../../context.ts';
import { describeError } from '../../lib/errors.ts';
import { useIntentAction } from '../../lib/intent-key.ts';
import { FormError, SubmitButton } from '../../components/FormParts.tsx';

/** The library branches, with their load, and a form to add one. */
export function Libraries() {
  const { t, i18n } = useTranslation();
  const { api } = useApp();
  const [libraries, setLibraries] = useState<LibraryWithLoad[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const reload = useCallback(async () => {
    try {
      setLibraries(await api.libraries());
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, [api]);

  useEffect(() => {
    void reload();
  }, [reload]);

  return (
    <>
      <h1 tabIndex={-1}>{t('libraries.title')}</h1>
      <AddLibraryForm onAdded={() => void reload()} />
      <section>
        <h2>{t('libraries.listTitle')}</h2>
        {error !== null && <p className="form-error">{describeError(t, error, i18n.language)}</p>}
        {libraries === null && error === null && <p>{t('app.loading')}</p>}
        {libraries !== null && libraries.length === 0 && <p>{t('libraries.empty')}</p>}
        {libraries !== null && libraries.length > 0 && (
          <TableWrap label={t('libraries.listTitle')}>
            <table>
              <caption className="visually-hidden">{t('libraries.listTitle')}</caption>
              <thead>
                <tr>
                  <th scope="col">{t('libraries.id')}</th>
                  <th scope="col">{t('libraries.name')}</th>
                  <th scope="col">{t('libraries.address')}</th>
                  <th scope="col">{t('libraries.active')}</th>
                </tr>
              </thead>
              <tbody>
                {libraries.map((l) => (
                  <tr key={l.libraryId}>
                    <td>{l.libraryId}</td>
                    <th scope="row">{l.name}</th>
                    <td>{l.address ?? t('common.dash')}</td>
                    <td>{l.activeAssignments}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </section>
    </>
  );
}

function AddLibraryForm({ onAdded }: { onAdded: () => void }) {
  const { t } = useTranslation();
  const { api, notify } = useApp();
  const [name, setName] = useState('');
  const [address, setAddress] = useState('');
  const { busy, error, run } = useIntentAction();
  const id = useId();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const body = { name: name.trim(), ...(address.trim() ? { address: address.trim() } : {}) };
    return run(`library:${JSON.stringify(body)}`, (key) => api.createLibrary(body, key), (library) => {
      notify('success', (tt) => tt('libraries.added', { id: library.libraryId, name: library.name }));
      setName('');
      setAddress('');
      onAdded();
    });
  };

  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{t('libraries.addTitle')}</h2>
      <form className="form grid-form" onSubmit={(e) => void submit(e)}>
        <div className="field">
          <label htmlFor={`${id}-name`}>{t('libraries.name')}</label>
          <input id={`${id}-name`} required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-address`}>{t('libraries.address')}</label>
          <input id={`${id}-address`} maxLength={300} value={address} onChange={(e) => setAddress(e.target.value)} />
        </div>
        <FormError error={error} />
        <SubmitButton busy={busy}>{t('libraries.add')}</SubmitButton>
      </form>
    </section>
  );
}
