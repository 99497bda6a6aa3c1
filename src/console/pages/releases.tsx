import { useState } from 'preact/hooks';
import { type AuditEntry, loadAudit } from '../data.js';
import { type TraceNode, TraceTree } from '../policy.js';
import { failedClauses } from '../model.js';
import { Badge, ErrorNote, Json, Loading, Time, useLoad } from '../ui.js';

function Decision({ entry, open, onToggle }: { entry: AuditEntry; open: boolean; onToggle: () => void }) {
  const r = entry.record;
  const d = r.detail ?? {};
  const trace = d.trace as TraceNode | undefined;
  const claims = d.claims as Record<string, unknown> | undefined;
  const panel = `decision-${entry.leafHash.slice(0, 16)}`;
  return (
    <>
      <tr>
        <td>
          <Time value={r.time} />
        </td>
        <td>{r.key ?? '—'}</td>
        <td class="wrap">{r.principal}</td>
        <td>
          <Badge tone={r.result === 'success' ? 'ok' : 'bad'}>{r.result === 'success' ? 'released' : r.result}</Badge>
        </td>
        <td>
          <button type="button" class="secondary" aria-expanded={open} aria-controls={panel} onClick={onToggle}>
            {open ? 'Hide' : 'Show'} why{r.key ? ` (${r.key})` : ''}
          </button>
        </td>
      </tr>
      {open ? (
        <tr id={panel} class="detail">
          <td colSpan={5}>
            {r.result !== 'success' ? (
              <p>
                <strong>{r.code}</strong>: {r.message}
              </p>
            ) : (
              <p>Released{typeof d.enc === 'string' ? `, wrapped with ${d.enc}` : ''}.</p>
            )}
            {trace ? (
              <>
                {r.result === 'denied' ? (
                  <table>
                    <caption>Failed clauses</caption>
                    <thead>
                      <tr>
                        <th scope="col">Authority</th>
                        <th scope="col">Clause</th>
                        <th scope="col">Claim</th>
                        <th scope="col">Expected</th>
                        <th scope="col">Actual</th>
                      </tr>
                    </thead>
                    <tbody>
                      {failedClauses(trace, typeof d.issuer === 'string' ? d.issuer : undefined).map((f) => (
                        <tr key={f.path}>
                          <td class="wrap">{f.authority}</td>
                          <td>
                            <code>{f.path}</code>
                          </td>
                          <td>
                            <code>{f.claim}</code> {f.condition}
                          </td>
                          <td>
                            <Json value={f.expected} />
                          </td>
                          <td>{f.actual === undefined ? <em>absent</em> : <Json value={f.actual} />}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                ) : null}
                <h3>Evaluation trace</h3>
                <TraceTree trace={trace} />
              </>
            ) : null}
            <dl class="facts">
              {typeof d.issuer === 'string' ? (
                <>
                  <dt>Token issuer</dt>
                  <dd>{d.issuer}</dd>
                </>
              ) : null}
              {typeof d.jti === 'string' ? (
                <>
                  <dt>Token id (jti)</dt>
                  <dd>
                    <code>{d.jti}</code>
                  </dd>
                </>
              ) : null}
              {typeof d.claimsSha256 === 'string' ? (
                <>
                  <dt>Claims SHA-256</dt>
                  <dd>
                    <code class="wrap">{d.claimsSha256}</code>
                  </dd>
                </>
              ) : null}
              <dt>Log leaf</dt>
              <dd>
                <code class="wrap">{entry.leafHash}</code> {entry.index === null ? '(not yet in a signed tree head)' : `(index ${entry.index})`}
              </dd>
            </dl>
            {claims ? (
              <details>
                <summary>Token claims</summary>
                <pre class="json">{JSON.stringify(claims, null, 2)}</pre>
              </details>
            ) : null}
          </td>
        </tr>
      ) : null}
    </>
  );
}

export function ReleasesPage() {
  const audit = useLoad(() => loadAudit(), []);
  const [only, setOnly] = useState<'all' | 'denied'>('all');
  const [open, setOpen] = useState<string | null>(null);
  const releases = (audit.data ?? []).filter((e) => e.record.operation === 'release' && (only === 'all' || e.record.result !== 'success')).reverse();
  return (
    <>
      <h1>Release decisions</h1>
      <p>Every Secure Key Release decision from the audit log, newest first. A denial names the clauses of the key's release policy the token did not satisfy.</p>
      <div class="row">
        <div>
          <label for="release-filter">Show</label>
          <select id="release-filter" value={only} onChange={(e) => setOnly((e.target as HTMLSelectElement).value as 'all' | 'denied')}>
            <option value="all">all decisions</option>
            <option value="denied">denials and failures</option>
          </select>
        </div>
        <div class="end">
          <button type="button" class="secondary" onClick={audit.reload}>
            Refresh
          </button>
        </div>
      </div>
      <ErrorNote error={audit.error} what="Audit log" />
      {audit.loading && !audit.data ? <Loading what="release decisions" /> : null}
      {audit.data && releases.length === 0 ? <p class="muted">No release decisions yet.</p> : null}
      {releases.length ? (
        <table>
          <caption class="visually-hidden">Release decisions</caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Key</th>
              <th scope="col">Principal</th>
              <th scope="col">Decision</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {releases.map((e) => (
              <Decision key={e.leafHash} entry={e} open={open === e.leafHash} onToggle={() => setOpen(open === e.leafHash ? null : e.leafHash)} />
            ))}
          </tbody>
        </table>
      ) : null}
    </>
  );
}
