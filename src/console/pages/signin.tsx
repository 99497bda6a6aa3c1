import { useState } from 'preact/hooks';
import { type ApiError, call } from '../api.js';
import { ErrorNote } from '../ui.js';

export interface Session {
  readonly principal: { id: string; displayName: string; isAdmin: boolean };
  readonly method: 'code' | 'client' | 'oidc';
  readonly csrfToken: string;
  readonly expiresAt: string;
}

const CODE_NOTICES: Readonly<Record<string, string>> = {
  code_used: 'This sign-in link was already used. Links sign in once: run `conclave console` for a new one.',
  code_expired: 'This sign-in link has expired (links last 5 minutes). Run `conclave console` for a new one.',
  code_unknown: 'This sign-in link is not valid. Run `conclave console` for a new one.',
  oidc_refused: 'The identity provider did not sign you in.',
  oidc_state: 'The answer of the identity provider does not belong to a sign-in started here (or it took more than ten minutes). Try again.',
  oidc_code: 'The identity provider refused to redeem its code. Try again.',
  oidc_token: "The identity provider's token is not accepted by this server (issuer, audience or expiry).",
  oidc_unavailable: 'The identity provider cannot be reached. Try again later, or sign in another way.',
};

/** Sign-in: the one-time link of `conclave console` (handled by the app), client credentials, or an OIDC token. */
export function SignIn({ notice, oidcIssuer, oidcSignIn, onSignedIn }: { notice: ApiError | undefined; oidcIssuer: string | null; oidcSignIn: boolean; onSignedIn: (s: Session) => void }) {
  const [clientId, setClientId] = useState('');
  const [secret, setSecret] = useState('');
  const [token, setToken] = useState('');
  const [error, setError] = useState<Error | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (body: Record<string, string>) => {
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await call<Session>('POST', '/console/api/session', body));
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };
  const reason = notice?.detail?.reason;
  return (
    <main id="main" class="signin">
      <h1>Sign in to the Conclave console</h1>
      {notice ? (
        <div class="note error" role="alert">
          {(typeof reason === 'string' && CODE_NOTICES[reason]) || notice.message}
        </div>
      ) : null}
      <p>
        Run <code>conclave console</code> on the server for a one-time sign-in link, or sign in with the credentials of a client. The console acts as the principal you
        sign in as, with that principal's roles; every action is in the audit log.
      </p>
      {oidcSignIn && oidcIssuer ? (
        <p class="card">
          <a class="button" href="/console/api/oidc/start">
            Sign in with {oidcIssuer}
          </a>
        </p>
      ) : null}
      <form
        class="card"
        aria-labelledby="client-title"
        onSubmit={(e) => {
          e.preventDefault();
          void submit({ clientId: clientId.trim(), clientSecret: secret });
        }}
      >
        <h2 id="client-title">Client credentials</h2>
        <label for="client-id">Client ID</label>
        <input id="client-id" name="clientId" autocomplete="username" required value={clientId} onInput={(e) => setClientId((e.target as HTMLInputElement).value)} />
        <label for="client-secret">Client secret</label>
        <input id="client-secret" name="clientSecret" type="password" autocomplete="current-password" required value={secret} onInput={(e) => setSecret((e.target as HTMLInputElement).value)} />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      <form
        class="card"
        aria-labelledby="oidc-title"
        onSubmit={(e) => {
          e.preventDefault();
          void submit({ accessToken: token.trim() });
        }}
      >
        <h2 id="oidc-title">Identity provider</h2>
        <p>
          {oidcIssuer ? (
            <>
              Paste an access token from <strong>{oidcIssuer}</strong> for this server's audience (for example from your provider's CLI).
            </>
          ) : (
            'No external OpenID Connect issuer is configured (--oidc-issuer); an access token of this server also works.'
          )}
        </p>
        <label for="access-token">Access token</label>
        <textarea id="access-token" rows={3} spellcheck={false} required value={token} onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)} />
        <button type="submit" disabled={busy}>
          Sign in with the token
        </button>
      </form>
      <ErrorNote error={error} what="Sign-in failed" />
    </main>
  );
}
