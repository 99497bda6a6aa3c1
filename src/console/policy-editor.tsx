/**
 * The release-policy editor: JSON text, checked as you type by the server's own parser (the dry run of
 * `conclave policy check`), shown as a tree with the offending clause marked.
 */
import { useEffect, useState } from 'preact/hooks';
import { call } from './api.js';
import { type PolicyCheck, PolicyTree } from './policy.js';

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function PolicyEditor({ id, label, value, onInput, onValidity }: { id: string; label: string; value: string; onInput: (text: string) => void; onValidity?: (valid: boolean) => void }) {
  const [check, setCheck] = useState<PolicyCheck | undefined>(undefined);
  useEffect(() => {
    let live = true;
    const t = setTimeout(() => {
      call<PolicyCheck>('POST', '/console/api/release-policy/check', { policy: value }).then(
        (r) => {
          if (!live) return;
          setCheck(r);
          onValidity?.(r.valid);
        },
        (e: Error) => {
          // The check itself refused (too large, signed out, …): say so, and the policy is not valid.
          if (!live) return;
          setCheck({ valid: false, error: { code: (e as { code?: string }).code ?? 'error', message: e.message, path: '' } });
          onValidity?.(false);
        },
      );
    }, 250);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [value]);
  const error = check && !check.valid ? check.error : undefined;
  const doc = parsed(value);
  return (
    <div class="policy-editor">
      <label for={id}>{label}</label>
      <textarea id={id} rows={12} spellcheck={false} value={value} aria-invalid={error ? 'true' : 'false'} aria-describedby={`${id}-status`} onInput={(e) => onInput((e.target as HTMLTextAreaElement).value)} />
      <p id={`${id}-status`} class={error ? 'note error' : 'note ok'}>
        {check === undefined ? 'Checking…' : error ? `Invalid at ${error.path || 'the top level'}: ${error.message}` : 'Valid release policy.'}
      </p>
      {doc !== undefined ? <PolicyTree policy={doc} error={error} /> : null}
    </div>
  );
}
