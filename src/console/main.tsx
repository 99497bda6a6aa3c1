/**
 * The Conclave web console: sign-in, then one page per route of the hash (#/overview, #/keys, …). The
 * console holds no privileges: it signs in as a principal and calls the server's APIs as that principal.
 */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, call, setCsrfToken } from './api.js';
import { routeOf } from './model.js';
import { AuditPage } from './pages/audit.js';
import { CollateralPage } from './pages/collateral.js';
import { KeyPage, KeysPage } from './pages/keys.js';
import { OverviewPage } from './pages/overview.js';
import { PlaygroundPage } from './pages/playground.js';
import { ReleasesPage } from './pages/releases.js';
import { type Session, SignIn } from './pages/signin.js';
import { StatusRegion } from './ui.js';
import './console.css';

const PAGES = [
  { path: 'overview', title: 'Overview' },
  { path: 'keys', title: 'Keys' },
  { path: 'releases', title: 'Release decisions' },
  { path: 'playground', title: 'Attestation playground' },
  { path: 'collateral', title: 'Collateral' },
  { path: 'audit', title: 'Audit' },
] as const;

function currentRoute(): string[] {
  return routeOf(location.hash);
}

function useRoute(): string[] {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const on = () => setRoute(currentRoute());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function Page({ route, session }: { route: string[]; session: Session }) {
  const [name, arg] = route;
  switch (name ?? 'overview') {
    case 'overview':
      return <OverviewPage session={session} />;
    case 'keys':
      return arg ? <KeyPage name={arg} session={session} /> : <KeysPage session={session} />;
    case 'releases':
      return <ReleasesPage />;
    case 'playground':
      return <PlaygroundPage session={session} />;
    case 'collateral':
      return <CollateralPage />;
    case 'audit':
      return <AuditPage />;
    default:
      return (
        <>
          <h1>Not found</h1>
          <p>
            There is no page <code>#{route.join('/')}</code>. <a href="#/overview">Go to the overview.</a>
          </p>
        </>
      );
  }
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const route = useRoute();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  const active = route[0] ?? 'overview';
  const title = PAGES.find((p) => p.path === active)?.title ?? 'Conclave';
  useEffect(() => {
    document.title = `${title} · Conclave console`;
    // Move focus to the new page (not on first load) so screen readers and keyboards start there.
    if (!first.current) main.current?.focus();
    first.current = false;
  }, [route.join('/')]);
  return (
    <>
      <button type="button" class="skip" onClick={() => main.current?.focus()}>
        Skip to content
      </button>
      <header class="top">
        <span class="brand">Conclave</span>
        <nav aria-label="Console">
          <ul class="nav-list">
            {PAGES.map((p) => (
              <li key={p.path}>
                <a href={`#/${p.path}`} aria-current={active === p.path ? 'page' : undefined}>
                  {p.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span title={session.principal.id}>
            {session.principal.displayName}
            {session.principal.isAdmin ? ' (administrator)' : ''}
          </span>
          <button type="button" class="link" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <Page route={route} session={session} />
      </main>
      <StatusRegion />
    </>
  );
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [notice, setNotice] = useState<ApiError | undefined>(undefined);
  const [oidcIssuer, setOidcIssuer] = useState<string | null>(null);
  const [oidcSignIn, setOidcSignIn] = useState(false);
  useEffect(() => {
    const code = /^#code=([A-Za-z0-9_-]+)$/.exec(location.hash)?.[1];
    // Where a failed "Sign in with" the identity provider comes back to.
    const failed = /^#signin-error=([a-z_]+)$/.exec(location.hash)?.[1];
    if (failed) {
      history.replaceState(null, '', `${location.pathname}#/overview`);
      setNotice(new ApiError(401, 'auth.unauthenticated', 'signing in with the identity provider failed', { reason: failed }));
    }
    // The code leaves the address bar (and history) before anything else happens.
    if (code) history.replaceState(null, '', `${location.pathname}#/overview`);
    const start = code ? call<Session>('POST', '/console/api/session', { code }) : call<Session>('GET', '/console/api/session');
    start.then(
      (s) => {
        setCsrfToken(s.csrfToken);
        setSession(s);
      },
      (e: ApiError) => {
        if (code) setNotice(e);
        const issuer = e.detail?.oidcIssuer;
        if (typeof issuer === 'string') setOidcIssuer(issuer);
        setOidcSignIn(e.detail?.oidcSignIn === true);
        setSession(null);
      },
    );
  }, []);
  if (session === undefined) return <p role="status">Loading the console…</p>;
  if (session === null) {
    return (
      <SignIn
        notice={notice}
        oidcIssuer={oidcIssuer}
        oidcSignIn={oidcSignIn}
        onSignedIn={(s) => {
          setCsrfToken(s.csrfToken);
          setNotice(undefined);
          setSession(s);
        }}
      />
    );
  }
  return (
    <Shell
      session={session}
      onSignOut={() => {
        call('DELETE', '/console/api/session').finally(() => {
          setCsrfToken('');
          setSession(null);
        });
      }}
    />
  );
}

render(<App />, document.getElementById('app')!);
