import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiClient, ApiError, type ReservationPage } from './api.ts';
import { Header } from './components/Header.tsx';
import { Messages } from './components/Messages.tsx';
import { StreamIndicator } from './components/StreamIndicator.tsx';
import { AppContext, PageFeed, type AppServices, type Message, type Notify } from './context.ts';
import { navigate, useHashRoute } from './lib/hooks.ts';
import { Catalogue } from './pages/Catalogue.tsx';
import { MyReservations } from './pages/MyReservations.tsx';
import { NotFound } from './pages/NotFound.tsx';
import { SignIn } from './pages/SignIn.tsx';
import { Assignments } from './pages/staff/Assignments.tsx';
import { DeadLetters } from './pages/staff/DeadLetters.tsx';
import { Desk } from './pages/staff/Desk.tsx';
import { Libraries } from './pages/staff/Libraries.tsx';
import { ReservationDetail } from './pages/staff/ReservationDetail.tsx';
import { StaffBooks } from './pages/staff/StaffBooks.tsx';
import { StaffReservations } from './pages/staff/StaffReservations.tsx';
import { clearStoredSession, loadSession, storeSession, type Session } from './session.ts';
import { openEventStream, type StreamState } from './sse.ts';

const MAX_MESSAGES = 4;

function problemCode(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null && 'code' in parsed && typeof parsed.code === 'string') return parsed.code;
  } catch {
    // Not JSON.
  }
  return 'UNAUTHENTICATED';
}

export function App() {
  const { t } = useTranslation();
  const route = useHashRoute();
  const [session, setSession] = useState<Session | null>(loadSession);
  const sessionRef = useRef(session);
  sessionRef.current = session;
  const [messages, setMessages] = useState<Message[]>([]);
  const nextId = useRef(1);

  const notify: Notify = useCallback((kind, render) => {
    const id = nextId.current++;
    setMessages((current) => [{ id, kind, render }, ...current].slice(0, MAX_MESSAGES));
  }, []);
  const dismiss = useCallback((id: number) => setMessages((current) => current.filter((m) => m.id !== id)), []);

  const endSession = useCallback(
    (reason: 'signedOut' | 'expired', code?: string) => {
      if (!sessionRef.current) return;
      sessionRef.current = null;
      clearStoredSession();
      setSession(null);
      setMessages([]);
      if (reason === 'expired') notify('error', (tt) => tt('signIn.sessionEnded', { code: code ?? 'UNAUTHENTICATED' }));
      else notify('info', (tt) => tt('signIn.signedOut'));
    },
    [notify],
  );

  const api = useMemo(
    () => new ApiClient({ token: () => sessionRef.current?.token, onUnauthorized: (error: ApiError) => endSession('expired', error.code) }),
    [endSession],
  );

  // A token past its expiry: sign out at that moment, rather than at the next failed call.
  useEffect(() => {
    if (!session) return;
    const ms = session.expiresAt - Date.now();
    const id = setTimeout(() => endSession('expired', 'TOKEN_EXPIRED'), Math.max(0, Math.min(ms, 2_147_483_647)));
    return () => clearTimeout(id);
  }, [session, endSession]);

  const signedIn = (next: Session) => {
    storeSession(next);
    sessionRef.current = next;
    setMessages([]);
    setSession(next);
    navigate(next.role === 'staff' ? '/staff/books' : '/');
  };

  const main = useRef<HTMLElement>(null);
  // On a change of page, move focus to its heading so a screen reader announces it.
  const firstRender = useRef(true);
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    const heading = main.current?.querySelector<HTMLElement>('h1');
    (heading ?? main.current)?.focus();
  }, [route, session?.user]);

  return (
    <>
      <a
        className="skip-link"
        href="#main-content"
        onClick={(e) => {
          // Hash routing: follow the link by focus, not by changing the hash.
          e.preventDefault();
          main.current?.focus();
        }}
      >
        {t('app.skipToContent')}
      </a>
      <Header session={session} route={route} onSignOut={() => endSession('signedOut')} />
      {session ? (
        <SignedIn session={session} api={api} notify={notify} route={route} messages={messages} onDismiss={dismiss} mainRef={main} />
      ) : (
        <main id="main-content" ref={main} tabIndex={-1}>
          <Messages messages={messages} onDismiss={dismiss} />
          <SignIn api={api} onSignedIn={signedIn} />
        </main>
      )}
      <footer className="site-footer">
        <p>{t('app.footer')}</p>
      </footer>
    </>
  );
}

interface SignedInProps {
  session: Session;
  api: ApiClient;
  notify: Notify;
  route: string;
  messages: Message[];
  onDismiss: (id: number) => void;
  mainRef: React.RefObject<HTMLElement | null>;
}

/** The app for a signed-in user: the live stream of reservation pages, and the page of the route. */
function SignedIn({ session, api, notify, route, messages, onDismiss, mainRef }: SignedInProps) {
  const feed = useMemo(() => new PageFeed(), []);
  const [streamState, setStreamState] = useState<StreamState>({ kind: 'connecting' });
  const [streamEpoch, setStreamEpoch] = useState(0);

  useEffect(() => {
    let connectedBefore = false;
    return openEventStream({
      url: '/reservationPages/stream',
      token: () => api.token,
      onMessage: (message) => {
        if (message.event !== 'reservationPage') return;
        try {
          feed.emit(JSON.parse(message.data) as ReservationPage);
        } catch {
          // A malformed message is skipped; the next reload shows the truth.
        }
      },
      onState: (state) => {
        setStreamState(state);
        // After a reconnect, events may have been missed: the pages reload.
        if (state.kind === 'live') {
          if (connectedBefore) setStreamEpoch((n) => n + 1);
          connectedBefore = true;
        }
      },
      onUnauthorized: (status, body) => api.unauthorized(new ApiError(status, { code: problemCode(body) })),
    });
  }, [api, feed, session.token]);

  const services: AppServices = { api, notify, session, feed, streamState, streamEpoch };

  return (
    <AppContext.Provider value={services}>
      <main id="main-content" ref={mainRef} tabIndex={-1}>
        <div className="main-top">
          <StreamIndicator state={streamState} />
        </div>
        <Messages messages={messages} onDismiss={onDismiss} />
        <Page session={session} route={route} />
      </main>
    </AppContext.Provider>
  );
}

function Page({ session, route }: { session: Session; route: string }): ReactNode {
  const staff = session.role === 'staff';
  if (route === '/' || route === '') return staff ? <StaffBooks /> : <Catalogue />;
  if (route === '/my') return staff ? <NotFound forRole /> : <MyReservations />;
  if (route.startsWith('/staff/')) {
    if (!staff) return <NotFound forRole />;
    const detail = /^\/staff\/reservations\/([1-9]\d{0,9})$/.exec(route);
    if (detail?.[1]) return <ReservationDetail key={detail[1]} reservationId={Number(detail[1])} />;
    switch (route) {
      case '/staff/books':
        return <StaffBooks />;
      case '/staff/libraries':
        return <Libraries />;
      case '/staff/assignments':
        return <Assignments />;
      case '/staff/reservations':
        return <StaffReservations />;
      case '/staff/desk':
        return <Desk />;
      case '/staff/dead-letters':
        return <DeadLetters />;
      default:
        break;
    }
  }
  return <NotFound />;
}
