import { useState } from 'preact/hooks';
import { loadAudit, verifyAudit } from '../data.js';
import { searchAudit } from '../model.js';
import { Badge, ErrorNote, Loading, Section, Time, useLoad } from '../ui.js';

export function AuditPage() {
  const audit = useLoad(() => loadAudit(), []);
  const check = useLoad(verifyAudit, []);
  const [query, setQuery] = useState('');
  const [result, setResult] = useState('');
  const entries = searchAudit(audit.data ?? [], query, result).slice().reverse();
  const v = check.data;
  return (
    <>
      <h1>Audit</h1>
      <Section
        title="Transparency log verification"
        id="log-verify"
        actions={
          <button type="button" class="secondary" onClick={check.reload}>
            Verify again
          </button>
        }
      >
        <ErrorNote error={check.error} what="Verification" />
        {check.loading && !v ? <Loading what="the verification" /> : null}
        {v ? (
          v.ok ? (
            <p>
              <Badge tone="ok">verified</Badge> {v.entries} entries and {v.heads} signed tree heads recomputed and checked; tree size {v.treeSize}, root <code class="wrap">{v.rootHash}</code>
              {v.pending ? `; ${v.pending} newer entries wait for the next signed head` : ''}.
            </p>
          ) : (
            <p role="alert">
              <Badge tone="bad">verification failed</Badge> <strong>{v.code}</strong>: {v.message} (after {v.entries} good entries)
            </p>
          )
        ) : null}
      </Section>
      <Section title="Records" id="audit-records">
        <form class="row" aria-label="Search the audit records" onSubmit={(e) => e.preventDefault()}>
          <div>
            <label for="audit-search">Search</label>
            <input id="audit-search" type="search" value={query} placeholder="key, principal, operation, code…" onInput={(e) => setQuery((e.target as HTMLInputElement).value)} />
          </div>
          <div>
            <label for="audit-result">Result</label>
            <select id="audit-result" value={result} onChange={(e) => setResult((e.target as HTMLSelectElement).value)}>
              <option value="">any</option>
              <option value="success">success</option>
              <option value="denied">denied</option>
              <option value="failed">failed</option>
            </select>
          </div>
        </form>
        <ErrorNote error={audit.error} what="Audit log" />
        {audit.loading && !audit.data ? <Loading what="audit records" /> : null}
        {audit.data ? (
          <p role="status">
            {entries.length} of {audit.data.length} records shown (newest first).
          </p>
        ) : null}
        {entries.length ? (
          <table>
            <caption class="visually-hidden">Audit records</caption>
            <thead>
              <tr>
                <th scope="col">Index</th>
                <th scope="col">Time</th>
                <th scope="col">Principal</th>
                <th scope="col">Operation</th>
                <th scope="col">Key</th>
                <th scope="col">Result</th>
              </tr>
            </thead>
            <tbody>
              {entries.slice(0, 500).map((e) => (
                <tr key={e.leafHash}>
                  <td>{e.index ?? 'pending'}</td>
                  <td>
                    <Time value={e.record.time} />
                  </td>
                  <td class="wrap">{e.record.principal}</td>
                  <td>{e.record.operation}</td>
                  <td>{e.record.key ?? '—'}</td>
                  <td>
                    <Badge tone={e.record.result === 'success' ? 'ok' : e.record.result === 'denied' ? 'bad' : 'warn'}>{e.record.result}</Badge>
                    {e.record.code ? <div class="muted">{e.record.code}</div> : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Section>
    </>
  );
}
