import { useState } from 'preact/hooks';
import { ApiError, b64url, call, decodeJwt, fromB64url, MAA_API } from '../api.js';
import { stepStates, VERIFICATION_STEPS, type StepState } from '../model.js';
import { examplePolicy, type PolicyCheck, TraceTree } from '../policy.js';
import { act, Badge, ErrorNote, Json } from '../ui.js';
import type { Session } from './signin.js';

const TYPES = ['SevSnpVm', 'TdxVm', 'SgxEnclave', 'OpenEnclave'] as const;
type AttestType = (typeof TYPES)[number];

const STATE_TONE: Readonly<Record<StepState, 'ok' | 'bad' | 'info'>> = { passed: 'ok', failed: 'bad', 'not reached': 'info' };

function Steps({ states, labels = VERIFICATION_STEPS }: { states: readonly StepState[]; labels?: readonly string[] }) {
  return (
    <ol class="steps" aria-label="Verification steps">
      {labels.map((s, i) => (
        <li key={s}>
          <Badge tone={STATE_TONE[states[i]!]}>{states[i]}</Badge> {s}
        </li>
      ))}
    </ol>
  );
}

function Claims({ claims }: { claims: Record<string, unknown> }) {
  const rows = Object.entries(claims).sort(([a], [b]) => a.localeCompare(b));
  return (
    <table>
      <caption>Claims ({rows.length})</caption>
      <thead>
        <tr>
          <th scope="col">Claim</th>
          <th scope="col">Value</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([k, v]) => (
          <tr key={k}>
            <td>
              <code>{k}</code>
            </td>
            <td class="wrap">
              <Json value={v} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The request body: JSON as `conclave sim evidence` prints it, or bare base64url evidence. */
function requestBody(text: string, type: AttestType): Record<string, unknown> {
  const t = text.trim();
  if (t.startsWith('{')) return JSON.parse(t) as Record<string, unknown>;
  return { [type === 'SevSnpVm' ? 'report' : 'quote']: t };
}

interface Outcome {
  readonly states: StepState[];
  readonly claims?: Record<string, unknown>;
  readonly error?: ApiError;
  readonly draft: boolean;
}

function EvidencePanel({ admin }: { admin: boolean }) {
  const [type, setType] = useState<AttestType>('SevSnpVm');
  const [evidence, setEvidence] = useState('');
  const [policy, setPolicy] = useState('');
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const body = requestBody(evidence, type);
      const draft = policy.trim() !== '';
      if (draft) body.draftPolicyForAttestation = policy;
      try {
        const r = await call<{ token: string }>('POST', `/attest/${type}?api-version=${MAA_API}`, body);
        setOutcome({ states: stepStates(undefined), claims: decodeJwt(r.token).payload, draft });
      } catch (e) {
        if (!(e instanceof ApiError) || e.status >= 500 || e.status === 0) throw e;
        setOutcome({ states: stepStates(e.code), error: e, draft });
      }
    } catch (e) {
      setError(e instanceof SyntaxError ? new Error(`the request is not JSON: ${e.message}`) : (e as Error));
    } finally {
      setBusy(false);
    }
  };
  const loadPolicy = async () => {
    setError(undefined);
    try {
      const r = await call<{ token: string }>('GET', `/policies/${type}?api-version=${MAA_API}`);
      const jws = String(decodeJwt(r.token).payload['x-ms-policy'] ?? '');
      setPolicy(fromB64url(String(decodeJwt(jws).payload.AttestationPolicy ?? '')));
    } catch (e) {
      setError(e as Error);
    }
  };
  const setInForce = async () => {
    if (!confirm(`Set this attestation policy for ${type}? Every ${type} attestation is then evaluated with it.`)) return;
    const jws = `${b64url('{"alg":"none"}')}.${b64url(JSON.stringify({ AttestationPolicy: b64url(policy) }))}.`;
    setError(await act(() => call('PUT', `/policies/${type}?api-version=${MAA_API}`, undefined, { text: jws }), `Attestation policy for ${type} set.`));
  };
  return (
    <section aria-labelledby="evidence-title" class="card">
      <h2 id="evidence-title">Evidence</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run();
        }}
      >
        <div class="row">
          <div>
            <label for="attest-type">Evidence type</label>
            <select id="attest-type" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value as AttestType)}>
              {TYPES.map((t) => (
                <option key={t}>{t}</option>
              ))}
            </select>
          </div>
          <div>
            <label for="evidence-file">Or upload a file</label>
            <input
              id="evidence-file"
              type="file"
              accept=".json,.txt,.bin,application/json,text/plain"
              onChange={async (e) => {
                const f = (e.target as HTMLInputElement).files?.[0];
                if (f) setEvidence(await f.text());
              }}
            />
          </div>
        </div>
        <label for="evidence-text">Attestation request (JSON from conclave sim evidence or an SDK) or base64url evidence</label>
        <textarea id="evidence-text" rows={6} spellcheck={false} required value={evidence} onInput={(e) => setEvidence((e.target as HTMLTextAreaElement).value)} />
        <label for="draft-policy">Attestation policy to try (empty: the policy in force)</label>
        <textarea id="draft-policy" rows={8} spellcheck={false} value={policy} aria-describedby="draft-hint" onInput={(e) => setPolicy((e.target as HTMLTextAreaElement).value)} />
        <p id="draft-hint" class="hint">
          A draft is evaluated without being stored (MAA's draftPolicyForAttestation); its token is unsigned.
        </p>
        <div class="row">
          <button type="submit" disabled={busy || evidence.trim() === ''}>
            Verify
          </button>
          <button type="button" class="secondary" onClick={loadPolicy}>
            Load the policy in force
          </button>
          {admin ? (
            <button type="button" class="secondary" disabled={policy.trim() === ''} onClick={setInForce}>
              Set this policy for {type}
            </button>
          ) : null}
        </div>
      </form>
      <ErrorNote error={error} />
      {outcome ? (
        <div class="result" aria-live="polite">
          <h3>Result{outcome.draft ? ' with the draft policy' : ''}</h3>
          <Steps states={outcome.states} />
          {outcome.error ? (
            <p class="note error">
              <strong>{outcome.error.code}</strong>: {outcome.error.message}
            </p>
          ) : null}
          {outcome.claims?.['x-conclave-simulated'] ? <p class="banner warn">Simulated evidence: development only.</p> : null}
          {outcome.claims ? <Claims claims={outcome.claims} /> : null}
        </div>
      ) : null}
    </section>
  );
}

const TOKEN_STEPS = ['Token decoded', "Signature verified with this server's attestation key (/certs)", 'Not expired', 'Issued by this server'] as const;

async function verifySignature(token: string): Promise<boolean> {
  const { header, signingInput, signature } = decodeJwt(token);
  if (header.alg !== 'RS256') return false;
  const jwks = await call<{ keys: { kid: string; n: string; e: string }[] }>('GET', '/certs');
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) return false;
  const key = await crypto.subtle.importKey('jwk', { kty: 'RSA', n: jwk.n, e: jwk.e, alg: 'RS256', ext: true }, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['verify']);
  const sig = Uint8Array.from(atob(signature.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (signature.length % 4)) % 4)), (c) => c.charCodeAt(0));
  return crypto.subtle.verify('RSASSA-PKCS1-v1_5', key, sig, new TextEncoder().encode(signingInput));
}

function TokenPanel() {
  const [token, setToken] = useState('');
  const [policy, setPolicy] = useState(() => examplePolicy(location.origin));
  const [result, setResult] = useState<{ states: StepState[]; claims?: Record<string, unknown>; check?: PolicyCheck } | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const inspect = async () => {
    setError(undefined);
    let jwt = token.trim();
    if (jwt.startsWith('{')) jwt = String((JSON.parse(jwt) as { token?: unknown }).token ?? '');
    let claims: Record<string, unknown>;
    try {
      claims = decodeJwt(jwt).payload;
    } catch (e) {
      setResult({ states: ['failed', 'not reached', 'not reached', 'not reached'] });
      setError(e as Error);
      return;
    }
    const signed = await verifySignature(jwt).catch(() => false);
    const fresh = typeof claims.exp === 'number' && claims.exp * 1000 > Date.now();
    const ours = claims.iss === location.origin;
    const states: StepState[] = ['passed', signed ? 'passed' : 'failed', fresh ? 'passed' : 'failed', ours ? 'passed' : 'failed'];
    let check: PolicyCheck | undefined;
    if (policy.trim()) check = await call<PolicyCheck>('POST', '/console/api/release-policy/check', { policy, token: jwt });
    setResult({ states, claims, ...(check ? { check } : {}) });
  };
  return (
    <section aria-labelledby="token-title" class="card">
      <h2 id="token-title">Token</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          inspect().catch((err: Error) => setError(err));
        }}
      >
        <label for="token-text">Attestation token (JWT, or the JSON answer holding it)</label>
        <textarea id="token-text" rows={4} spellcheck={false} required value={token} onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)} />
        <label for="token-policy">Release policy to evaluate against it (dry run, as conclave policy check)</label>
        <textarea id="token-policy" rows={8} spellcheck={false} value={policy} onInput={(e) => setPolicy((e.target as HTMLTextAreaElement).value)} />
        <button type="submit" disabled={token.trim() === ''}>
          Inspect
        </button>
      </form>
      <ErrorNote error={error} />
      {result ? (
        <div class="result" aria-live="polite">
          <Steps states={result.states} labels={TOKEN_STEPS} />
          {result.check ? (
            result.check.valid && result.check.decision ? (
              <>
                <h3>Release policy: {result.check.decision.released ? 'would release' : 'would deny'}</h3>
                {result.check.decision.explanation ? <p>{result.check.decision.explanation}</p> : null}
                <TraceTree trace={result.check.decision.trace} />
              </>
            ) : (
              <p class="note error">The release policy is invalid: {result.check.error?.message}</p>
            )
          ) : null}
          {result.claims ? <Claims claims={result.claims} /> : null}
        </div>
      ) : null}
    </section>
  );
}

export function PlaygroundPage({ session }: { session: Session }) {
  return (
    <>
      <h1>Attestation playground</h1>
      <p>Verify evidence or a token without touching any key: see each verification step, the claims, and how a policy treats them.</p>
      <EvidencePanel admin={session.principal.isAdmin} />
      <TokenPanel />
    </>
  );
}
