import { useTranslation } from 'react-i18next';
import type { Session } from '../session.ts';
import { LanguageSwitch } from './LanguageSwitch.tsx';

const PATRON_LINKS = [
  { route: '/', key: 'nav.catalogue' },
  { route: '/my', key: 'nav.myReservations' },
] as const;

const STAFF_LINKS = [
  { route: '/staff/books', key: 'nav.books' },
  { route: '/staff/libraries', key: 'nav.libraries' },
  { route: '/staff/desk', key: 'nav.desk' },
  { route: '/staff/reservations', key: 'nav.reservations' },
  { route: '/staff/assignments', key: 'nav.assignments' },
  { route: '/staff/dead-letters', key: 'nav.deadLetters' },
] as const;

function isCurrent(route: string, link: string): boolean {
  return link === '/' ? route === '/' : route === link || route.startsWith(`${link}/`);
}

export function Header({ session, route, onSignOut }: { session: Session | null; route: string; onSignOut: () => void }) {
  const { t } = useTranslation();
  const links = session === null ? [] : session.role === 'staff' ? STAFF_LINKS : PATRON_LINKS;
  return (
    <header className="site-header">
      <div className="header-top">
        <p className="brand">
          <a href="#/">
            <span aria-hidden="true" className="brand-mark">
              b
            </span>
            {t('app.name')} <span className="tagline">{t('app.tagline')}</span>
          </a>
        </p>
        <div className="header-tools">
          <LanguageSwitch />
          {session && (
            <div className="who">
              <span>{t('app.signedInAs', { user: session.user, role: t(`role.${session.role}`) })}</span>
              <button type="button" onClick={onSignOut}>
                {t('app.signOut')}
              </button>
            </div>
          )}
        </div>
      </div>
      {links.length > 0 && (
        <nav aria-label={t('app.mainNav')} className="main-nav">
          <ul>
            {links.map((link) => (
              <li key={link.route}>
                <a href={`#${link.route}`} aria-current={isCurrent(route, link.route) ? 'page' : undefined}>
                  {t(link.key)}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      )}
    </header>
  );
}
