import { useTranslation } from 'react-i18next';

export function NotFound({ forRole = false }: { forRole?: boolean }) {
  const { t } = useTranslation();
  return (
    <>
      <h1 tabIndex={-1}>{t('app.notFound')}</h1>
      <p>{forRole ? t('common.notAvailableForRole') : t('app.notFoundBody')}</p>
      <p>
        <a href="#/">{t('app.goHome')}</a>
      </p>
    </>
  );
}
