import { useId, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, type ApiClient } from '../api.ts';
import { describeError } from '../lib/errors.ts';
import { useIntentKeys } from '../lib/intent-key.ts';
import { sessionFromToken, type Session } from '../session.ts';

const DEMO_USERS = [
  { user: 'alice', role: 'demoPatron' },
  { user: 'bob', role: 'demoPatron' },
  { user: 'librarian', role: 'demoLibrarian' },
] as const;

interface SignInProps {
  api: ApiClient;
  onSignedIn: (session: Session) => void;
}

export function SignIn({ api, onSignedIn }: SignInProps) {
  const { t, i18n } = useTranslation();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const { keyFor, settle } = useIntentKeys();
  const userId = useId();
  const passwordId = useId();
  const errorId = useId();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    const intent = `sign-in:${username}`;
    try {
      const answer = await api.signIn(username, password, keyFor(intent));
      settle(intent);
      const session = sessionFromToken(answer.access_token);
      if (!session) throw new ApiError(500, { code: 'BAD_TOKEN', detail: 'the token could not be read' });
      onSignedIn(session);
    } catch (err) {
      settle(intent, err);
      setError(err);
      setBusy(false);
    }
  };

  return (
    <div className="sign-in">
      <h1 tabIndex={-1}>{t('signIn.title')}</h1>
      <p>{t('signIn.intro')}</p>
      <form onSubmit={(e) => void submit(e)} className="card form" aria-describedby={error ? errorId : undefined}>
        <div className="field">
          <label htmlFor={userId}>{t('signIn.username')}</label>
          <input id={userId} name="username" autoComplete="username" required maxLength={64} value={username} onChange={(e) => setUsername(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={passwordId}>{t('signIn.password')}</label>
          <input
            id={passwordId}
            name="password"
            type="password"
            autoComplete="current-password"
            required
            maxLength={256}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </div>
        {error !== null && (
          <p id={errorId} className="form-error" role="alert">
            {describeError(t, error, i18n.language)}
          </p>
        )}
        <button type="submit" className="button-primary" disabled={busy} aria-busy={busy}>
          {busy ? t('signIn.submitting') : t('signIn.submit')}
        </button>
      </form>
      <section className="card demo-users" aria-labelledby={`${userId}-demo`}>
        <h2 id={`${userId}-demo`}>{t('signIn.demoTitle')}</h2>
        <p>{t('signIn.demoIntro')}</p>
        <ul>
          {DEMO_USERS.map((d) => (
            <li key={d.user}>
              <span>
                <code>{d.user}</code> / <code>{d.user}</code> — {t(`signIn.${d.role}`)}
              </span>{' '}
              <button
                type="button"
                className="button-quiet"
                onClick={() => {
                  setUsername(d.user);
                  setPassword(d.user);
                }}
              >
                {t('signIn.useAccount', { user: d.user })}
              </button>
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}
