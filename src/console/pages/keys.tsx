import { useState } from 'preact/hooks';
import { akv, b64url, call, fromB64url, listAll } from '../api.js';
import { type DeletedKeyItem, type KeyBundle, type KeyItem, lastSegment, loadAssignments, type RoleAssignment } from '../data.js';
import { examplePolicy, PolicyTree } from '../policy.js';
import { PolicyEditor } from '../policy-editor.js';
import { act, Badge, ErrorNote, Loading, Section, Time, useLoad } from '../ui.js';
import type { Session } from './signin.js';

const KEY_TYPES = ['RSA-HSM', 'RSA', 'EC-HSM', 'EC', 'oct-HSM'] as const;
const RELEASE_ROLE = 'Key Vault Crypto Service Release User';
const KEY_ROLES = [RELEASE_ROLE, 'Key Vault Crypto User', 'Key Vault Crypto Officer', 'Key Vault Reader'] as const;

const keyPath = (name: string) => `/keys/${encodeURIComponent(name)}`;

function CreateKey({ onCreated }: { onCreated: (name: string) => void }) {
  const [name, setName] = useState('');
  const [kty, setKty] = useState<(typeof KEY_TYPES)[number]>('RSA-HSM');
  const [size, setSize] = useState('2048');
  const [curve, setCurve] = useState('P-256');
  const [exportable, setExportable] = useState(true);
  const [policy, setPolicy] = useState(() => examplePolicy(location.origin));
  const [policyValid, setPolicyValid] = useState(false);
  const [error, setError] = useState<Error | undefined>(undefined);
  const family = kty.startsWith('RSA') ? 'RSA' : kty.startsWith('EC') ? 'EC' : 'oct';
  const nameOk = /^[0-9a-zA-Z-]{1,127}$/.test(name);
  const submit = async (e: Event) => {
    e.preventDefault();
    const body: Record<string, unknown> = { kty, attributes: { enabled: true, exportable } };
    if (family === 'RSA') body.key_size = Number(size);
    if (family === 'EC') body.crv = curve;
    if (family === 'oct') body.key_size = 256;
    if (exportable) body.release_policy = { contentType: 'application/json; charset=utf-8', data: b64url(policy) };
    const err = await act(() => call('POST', akv(`${keyPath(name)}/create`), body), `Key ${name} created.`);
    setError(err);
    if (!err) onCreated(name);
  };
  return (
    <form onSubmit={submit} aria-labelledby="create-title" class="card">
      <h2 id="create-title">Create a key</h2>
      <div class="row">
        <div>
          <label for="key-name">Name</label>
          <input id="key-name" required value={name} aria-invalid={name !== '' && !nameOk ? 'true' : 'false'} aria-describedby="key-name-hint" onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          <p id="key-name-hint" class="hint">
            1–127 letters, digits and dashes.
          </p>
        </div>
        <div>
          <label for="key-type">Type</label>
          <select id="key-type" value={kty} onChange={(e) => setKty((e.target as HTMLSelectElement).value as (typeof KEY_TYPES)[number])}>
            {KEY_TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
        {family === 'RSA' ? (
          <div>
            <label for="key-size">Size</label>
            <select id="key-size" value={size} onChange={(e) => setSize((e.target as HTMLSelectElement).value)}>
              {['2048', '3072', '4096'].map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </div>
        ) : null}
        {family === 'EC' ? (
          <div>
            <label for="key-curve">Curve</label>
            <select id="key-curve" value={curve} onChange={(e) => setCurve((e.target as HTMLSelectElement).value)}>
              {['P-256', 'P-384', 'P-521', 'P-256K'].map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          </div>
        ) : null}
      </div>
      <div class="check">
        <input id="key-exportable" type="checkbox" checked={exportable} onChange={(e) => setExportable((e.target as HTMLInputElement).checked)} />
        <label for="key-exportable">Exportable: released only to TEEs whose attestation satisfies the release policy</label>
      </div>
      {exportable ? <PolicyEditor id="key-policy" label="Release policy (JSON)" value={policy} onInput={setPolicy} onValidity={setPolicyValid} /> : null}
      <button type="submit" disabled={!nameOk || (exportable && !policyValid)}>
        Create key
      </button>
      <ErrorNote error={error} what="Could not create the key" />
    </form>
  );
}

export function KeysPage({ session }: { session: Session }) {
  const keys = useLoad(() => listAll<KeyItem>('/keys'), []);
  const deleted = useLoad(() => listAll<DeletedKeyItem>('/deletedkeys'), []);
  const [error, setError] = useState<Error | undefined>(undefined);
  void session;
  return (
    <>
      <h1>Keys</h1>
      <Section title="Keys" id="keys-list" actions={<button type="button" class="secondary" onClick={keys.reload}>Refresh</button>}>
        <ErrorNote error={keys.error} what="Keys" />
        {keys.loading && !keys.data ? <Loading what="keys" /> : null}
        {keys.data ? (
          keys.data.length === 0 ? (
            <p class="muted">No keys yet.</p>
          ) : (
            <table>
              <caption class="visually-hidden">Keys of this vault</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">State</th>
                  <th scope="col">Exportable</th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {keys.data.map((k) => {
                  const name = lastSegment(k.kid);
                  return (
                    <tr key={k.kid}>
                      <td>
                        <a href={`#/keys/${encodeURIComponent(name)}`}>{name}</a>
                      </td>
                      <td>{k.attributes.enabled ? <Badge tone="ok">enabled</Badge> : <Badge tone="warn">disabled</Badge>}</td>
                      <td>{k.attributes.exportable ? 'yes, under a release policy' : 'no'}</td>
                      <td>
                        <Time value={k.attributes.updated} />
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )
        ) : null}
      </Section>
      <CreateKey
        onCreated={(name) => {
          keys.reload();
          location.hash = `#/keys/${encodeURIComponent(name)}`;
        }}
      />
      <Section title="Deleted keys" id="deleted-keys">
        <ErrorNote error={deleted.error ?? error} what="Deleted keys" />
        {deleted.data && deleted.data.length === 0 ? <p class="muted">No deleted keys.</p> : null}
        {deleted.data?.length ? (
          <table>
            <caption class="visually-hidden">Deleted keys, recoverable until their purge date</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Deleted</th>
                <th scope="col">Purged on</th>
                <th scope="col">Action</th>
              </tr>
            </thead>
            <tbody>
              {deleted.data.map((k) => {
                const name = lastSegment(k.kid);
                return (
                  <tr key={k.kid}>
                    <td>{name}</td>
                    <td>
                      <Time value={k.deletedDate} />
                    </td>
                    <td>
                      <Time value={k.scheduledPurgeDate} />
                    </td>
                    <td>
                      <button
                        type="button"
                        class="secondary"
                        onClick={async () => {
                          setError(await act(() => call('POST', akv(`/deletedkeys/${encodeURIComponent(name)}/recover`)), `Key ${name} recovered.`));
                          deleted.reload();
                          keys.reload();
                        }}
                      >
                        Recover {name}
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : null}
      </Section>
    </>
  );
}

function Roles({ name, admin }: { name: string; admin: boolean }) {
  const scope = `/keys/${name}`;
  const list = useLoad(() => (admin ? loadAssignments() : Promise.resolve([] as RoleAssignment[])), [admin, name]);
  const [principal, setPrincipal] = useState('');
  const [role, setRole] = useState<string>(RELEASE_ROLE);
  const [error, setError] = useState<Error | undefined>(undefined);
  if (!admin) return <p class="muted">Role assignments are managed by the administrator.</p>;
  const rows = (list.data ?? []).filter((a) => a.scope === '/' || a.scope.toLowerCase() === scope.toLowerCase());
  return (
    <>
      <ErrorNote error={list.error ?? error} what="Role assignments" />
      <table>
        <caption>Who may use this key (assignments at this key and at the whole vault)</caption>
        <thead>
          <tr>
            <th scope="col">Principal</th>
            <th scope="col">Role</th>
            <th scope="col">Scope</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((a) => (
            <tr key={a.id}>
              <td class="wrap">{a.principalId}</td>
              <td>{a.role}</td>
              <td>{a.scope === '/' ? 'vault' : 'this key'}</td>
              <td>
                {a.scope !== '/' ? (
                  <button
                    type="button"
                    class="secondary"
                    aria-label={`Remove ${a.role} from ${a.principalId}`}
                    onClick={async () => {
                      setError(await act(() => call('DELETE', `/admin/vault/roleAssignments/${encodeURIComponent(a.id)}`), 'Role assignment removed.'));
                      list.reload();
                    }}
                  >
                    Remove
                  </button>
                ) : (
                  <span class="muted">manage at vault scope</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        class="row"
        aria-label="Assign a role on this key"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(await act(() => call('PUT', '/admin/vault/roleAssignments', { principalId: principal.trim(), role, scope }), `${role} assigned.`));
          list.reload();
        }}
      >
        <div>
          <label for="role-principal">Principal (client id or issuer#sub)</label>
          <input id="role-principal" required value={principal} onInput={(e) => setPrincipal((e.target as HTMLInputElement).value)} />
        </div>
        <div>
          <label for="role-name">Role</label>
          <select id="role-name" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value)}>
            {KEY_ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </div>
        <div class="end">
          <button type="submit">Assign</button>
        </div>
      </form>
    </>
  );
}

function PolicySection({ name, bundle, onChanged }: { name: string; bundle: KeyBundle; onChanged: () => void }) {
  const text = bundle.release_policy ? fromB64url(bundle.release_policy.data) : '';
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(text);
  const [valid, setValid] = useState(true);
  const [error, setError] = useState<Error | undefined>(undefined);
  if (!bundle.release_policy) return <p class="muted">This key is not exportable: it has no release policy and is never released.</p>;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = text;
  }
  return (
    <>
      {bundle.release_policy.immutable ? <p>The policy is immutable: it can never change.</p> : null}
      {editing ? (
        <form
          onSubmit={async (e) => {
            e.preventDefault();
            const err = await act(
              () => call('PATCH', akv(keyPath(name)), { release_policy: { contentType: 'application/json; charset=utf-8', data: b64url(draft) } }),
              'Release policy updated.',
            );
            setError(err);
            if (!err) {
              setEditing(false);
              onChanged();
            }
          }}
        >
          <PolicyEditor id="edit-policy" label="Release policy (JSON)" value={draft} onInput={setDraft} onValidity={setValid} />
          <div class="row">
            <button type="submit" disabled={!valid}>
              Save policy
            </button>
            <button type="button" class="secondary" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <>
          <PolicyTree policy={doc} />
          {!bundle.release_policy.immutable ? (
            <button type="button" class="secondary" onClick={() => {
                setDraft(JSON.stringify(doc, null, 2));
                setEditing(true);
              }}>
              Edit the release policy
            </button>
          ) : null}
        </>
      )}
      <ErrorNote error={error} what="Could not update the policy" />
    </>
  );
}

export function KeyPage({ name, session }: { name: string; session: Session }) {
  const key = useLoad(() => call<KeyBundle>('GET', akv(keyPath(name))), [name]);
  const versions = useLoad(() => listAll<KeyItem>(`${keyPath(name)}/versions`), [name]);
  const [error, setError] = useState<Error | undefined>(undefined);
  const reload = () => {
    key.reload();
    versions.reload();
  };
  const run = async (method: string, path: string, body: unknown, done: string) => {
    setError(await act(() => call(method, akv(path), body), done));
    reload();
  };
  const b = key.data;
  return (
    <>
      <p>
        <a href="#/keys">← All keys</a>
      </p>
      <h1>Key {name}</h1>
      <ErrorNote error={key.error ?? error} what={`Key ${name}`} />
      {key.loading && !b ? <Loading what="the key" /> : null}
      {b ? (
        <>
          <Section
            title="Attributes"
            id="key-attributes"
            actions={
              <>
                <button type="button" class="secondary" onClick={() => run('POST', `${keyPath(name)}/rotate`, undefined, `Key ${name} rotated: a new version is current.`)}>
                  Rotate
                </button>
                <button
                  type="button"
                  class="secondary"
                  onClick={() => run('PATCH', keyPath(name), { attributes: { enabled: !b.attributes.enabled } }, `Key ${name} ${b.attributes.enabled ? 'disabled' : 'enabled'}.`)}
                >
                  {b.attributes.enabled ? 'Disable' : 'Enable'}
                </button>
                <button
                  type="button"
                  class="danger"
                  onClick={async () => {
                    if (!confirm(`Delete key ${name}? It stays recoverable until its purge date.`)) return;
                    const err = await act(() => call('DELETE', akv(keyPath(name))), `Key ${name} deleted (recoverable).`);
                    setError(err);
                    if (!err) location.hash = '#/keys';
                  }}
                >
                  Delete
                </button>
              </>
            }
          >
            <dl class="facts">
              <dt>Type</dt>
              <dd>
                {b.key.kty}
                {b.key.crv ? ` ${b.key.crv}` : ''}
              </dd>
              <dt>Current version</dt>
              <dd>
                <code>{lastSegment(b.key.kid)}</code>
              </dd>
              <dt>State</dt>
              <dd>{b.attributes.enabled ? <Badge tone="ok">enabled</Badge> : <Badge tone="warn">disabled</Badge>}</dd>
              <dt>Exportable</dt>
              <dd>{b.attributes.exportable ? 'yes' : 'no'}</dd>
              <dt>Created</dt>
              <dd>
                <Time value={b.attributes.created} />
              </dd>
              <dt>Updated</dt>
              <dd>
                <Time value={b.attributes.updated} />
              </dd>
              <dt>Recovery</dt>
              <dd>{b.attributes.recoveryLevel ?? '—'}</dd>
              <dt>Operations</dt>
              <dd>{b.key.key_ops?.join(', ') ?? '—'}</dd>
            </dl>
          </Section>
          <Section title="Release policy" id="key-policy-title">
            <PolicySection name={name} bundle={b} onChanged={reload} />
          </Section>
          <Section title="Versions" id="key-versions">
            <ErrorNote error={versions.error} what="Versions" />
            <table>
              <caption class="visually-hidden">Versions of {name}</caption>
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">State</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {(versions.data ?? [])
                  .slice()
                  .sort((x, y) => y.attributes.created - x.attributes.created)
                  .map((v) => (
                    <tr key={v.kid}>
                      <td>
                        <code>{lastSegment(v.kid)}</code>
                        {lastSegment(v.kid) === lastSegment(b.key.kid) ? ' (current)' : ''}
                      </td>
                      <td>{v.attributes.enabled ? 'enabled' : 'disabled'}</td>
                      <td>
                        <Time value={v.attributes.created} />
                      </td>
                    </tr>
                  ))}
              </tbody>
            </table>
          </Section>
          <Section title="Role assignments" id="key-roles">
            <Roles name={name} admin={session.principal.isAdmin} />
          </Section>
        </>
      ) : null}
    </>
  );
}
