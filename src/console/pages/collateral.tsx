import { useState } from 'preact/hooks';
import { call } from '../api.js';
import { Timeline } from '../charts.js';
import { type BaselinePolicy, type BaselineView, type CollateralItem, type DryRun, dryRunBaseline, loadBaseline, loadCollateral } from '../data.js';
import { groupCollateral, tcbTone } from '../model.js';
import { act, Badge, ErrorNote, Loading, Section, Time, useLoad } from '../ui.js';

function ItemTable({ title, items }: { title: string; items: readonly CollateralItem[] }) {
  return (
    <table>
      <caption>{title}</caption>
      <thead>
        <tr>
          <th scope="col">What</th>
          <th scope="col">From</th>
          <th scope="col">Issued</th>
          <th scope="col">Next update</th>
          <th scope="col">State</th>
        </tr>
      </thead>
      <tbody>
        {items.map((i) => (
          <tr key={i.key}>
            <td>
              {i.kind}
              {i.tcbEvaluationDataNumber !== null ? ` #${i.tcbEvaluationDataNumber}` : ''}
              <div class="muted wrap">{i.key}</div>
            </td>
            <td class="wrap">
              {i.source}
              <div class="muted">
                fetched <Time value={i.fetchedAt} />
              </div>
            </td>
            <td>
              <Time value={i.issueDate} />
            </td>
            <td>
              <Time value={i.nextUpdate} />
            </td>
            <td>
              {i.stale ? <Badge tone="bad">stale</Badge> : <Badge tone="ok">fresh</Badge>}
              {i.lastError ? <div class="muted">last refresh failed: {i.lastError.message}</div> : null}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The pin key of a TCB info scope (`sgx/v4/tcb/<FMSPC>` → `sgx:<FMSPC>`). */
const pinKeyOf = (scope: string) => {
  const [tee, , what, fmspc] = scope.split('/');
  return what === 'tcb' && fmspc ? `${tee}:${fmspc.toUpperCase()}` : undefined;
};

function Baseline({ view, onApplied }: { view: BaselineView; onApplied: () => void }) {
  const [minAge, setMinAge] = useState(String(view.policy.minAgeDays));
  const [pins, setPins] = useState<Record<string, number>>({ ...view.policy.pinned });
  const [run, setRun] = useState<DryRun | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const candidate = (): BaselinePolicy => ({ minAgeDays: Number(minAge), pinned: pins, amdMinimumTcb: view.policy.amdMinimumTcb });
  const tcbScopes = view.scopes.filter((s) => pinKeyOf(s.scope));
  return (
    <>
      <p>
        The baseline chooses which TCB evaluation number is served (and so which platforms count as up to date): the newest one public for at least{' '}
        <strong>{view.policy.minAgeDays}</strong> days, unless a pin names one.
      </p>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setError(undefined);
          try {
            setRun(await dryRunBaseline(candidate()));
          } catch (err) {
            setError(err as Error);
          }
        }}
      >
        <div class="row">
          <div>
            <label for="min-age">Minimum age of an evaluation number (days)</label>
            <input id="min-age" type="number" min={0} max={3650} required value={minAge} onInput={(e) => setMinAge((e.target as HTMLInputElement).value)} />
          </div>
        </div>
        {tcbScopes.length ? (
          <table>
            <caption>TCB info per FMSPC: evaluation numbers cached, served, and pinned</caption>
            <thead>
              <tr>
                <th scope="col">Scope</th>
                <th scope="col">Cached</th>
                <th scope="col">Served now</th>
                <th scope="col">Pin</th>
              </tr>
            </thead>
            <tbody>
              {tcbScopes.map((s) => {
                const key = pinKeyOf(s.scope)!;
                const id = `pin-${key.replace(/[^A-Za-z0-9]/g, '-')}`;
                return (
                  <tr key={s.scope}>
                    <td>{s.scope}</td>
                    <td>{s.available.join(', ')}</td>
                    <td>{s.served ?? '—'}</td>
                    <td>
                      <label for={id} class="visually-hidden">
                        Pin {s.scope}
                      </label>
                      <select
                        id={id}
                        value={pins[key] === undefined ? '' : String(pins[key])}
                        onChange={(e) => {
                          const v = (e.target as HTMLSelectElement).value;
                          const next = { ...pins };
                          if (v === '') delete next[key];
                          else next[key] = Number(v);
                          setPins(next);
                        }}
                      >
                        <option value="">follow the baseline</option>
                        {s.available.map((n) => (
                          <option key={n} value={String(n)}>
                            pin to {n}
                          </option>
                        ))}
                      </select>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : (
          <p class="muted">No TCB info is cached yet.</p>
        )}
        <div class="row">
          <button type="submit">Dry run</button>
          <button
            type="button"
            class="secondary"
            disabled={!run}
            onClick={async () => {
              if (!confirm('Set this baseline? Attestations are evaluated under it at once.')) return;
              const err = await act(() => call('PUT', '/admin/collateral/baseline', candidate()), 'Baseline set.');
              setError(err);
              if (!err) onApplied();
            }}
          >
            Apply this baseline
          </button>
        </div>
      </form>
      <ErrorNote error={error} what="Baseline" />
      {run ? (
        <div aria-live="polite">
          <p>
            <strong>{run.changed}</strong> of {run.platforms.length} platforms seen in the last 90 days would change status.
          </p>
          {run.platforms.length ? (
            <table>
              <caption>Platforms under the current and the candidate baseline</caption>
              <thead>
                <tr>
                  <th scope="col">Platform</th>
                  <th scope="col">Last seen</th>
                  <th scope="col">Now</th>
                  <th scope="col">Candidate</th>
                </tr>
              </thead>
              <tbody>
                {run.platforms.map((p, i) => (
                  <tr key={i}>
                    <td>
                      {p.tee.toUpperCase()} {p.fmspc}
                    </td>
                    <td>
                      <Time value={p.lastSeen} />
                    </td>
                    <td>
                      <Badge tone={tcbTone(p.current) as 'ok'}>{p.current}</Badge>
                    </td>
                    <td>
                      <Badge tone={tcbTone(p.candidate) as 'ok'}>{p.candidate}</Badge>
                      {p.changed ? ' (changes)' : ''}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
        </div>
      ) : null}
    </>
  );
}

export function CollateralPage() {
  const status = useLoad(loadCollateral, []);
  const baseline = useLoad(loadBaseline, []);
  const [error, setError] = useState<Error | undefined>(undefined);
  const now = new Date();
  const items = status.data?.items ?? [];
  return (
    <>
      <h1>Collateral</h1>
      <ErrorNote error={status.error ?? error} what="Collateral" />
      {status.loading && !status.data ? <Loading what="collateral" /> : null}
      {status.data ? (
        <Section
          title="Cache"
          id="collateral-cache"
          actions={
            <button
              type="button"
              class="secondary"
              onClick={async () => {
                setError(await act(() => call('POST', '/admin/collateral/refresh'), 'Collateral refreshed.'));
                status.reload();
              }}
            >
              Refresh from upstream
            </button>
          }
        >
          <p>
            Mode <strong>{status.data.mode}</strong>; upstreams:{' '}
            {Object.entries(status.data.upstreams)
              .filter(([, v]) => v)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ') || 'none (offline bundles only)'}
            . {items.length} items cached.
          </p>
          {items.length ? (
            <Timeline
              title="Collateral validity: issue date to next update"
              now={now}
              spans={items
                .filter((i) => i.issueDate || i.nextUpdate)
                .map((i) => ({
                  label: i.key.replace(/^(sgx|tdx)\/v\d\//, '$1 '),
                  start: i.issueDate ? new Date(i.issueDate) : null,
                  end: i.nextUpdate ? new Date(i.nextUpdate) : null,
                  tone: i.stale ? 'bad' : 'ok',
                }))}
            />
          ) : (
            <p class="muted">Nothing cached yet: collateral is fetched on first use ({status.data.mode} mode) or imported from a bundle.</p>
          )}
        </Section>
      ) : null}
      {groupCollateral(items).map((g, n) => (
        <Section key={g.title} title={g.title} id={`group-${n}`}>
          <ItemTable title={`What is cached for ${g.title}`} items={g.items} />
        </Section>
      ))}
      <Section title="TCB baseline" id="baseline">
        <ErrorNote error={baseline.error} what="Baseline" />
        {baseline.data ? (
          <Baseline
            view={baseline.data}
            onApplied={() => {
              baseline.reload();
              status.reload();
            }}
          />
        ) : null}
      </Section>
    </>
  );
}
