/**
 * Release policies as readable trees: the policy as written (with the clause a validation error points
 * at marked), and the evaluation trace of a decision (authority, clause, claim, expected, actual).
 */
import type { ComponentChildren } from 'preact';
import type { TraceNode } from './model.js';
import { Badge, Json } from './ui.js';

const OPERATOR_WORDS: Readonly<Record<string, string>> = {
  equals: 'equals',
  notEquals: 'does not equal',
  greater: 'is greater than',
  greaterOrEquals: 'is at least',
  less: 'is less than',
  lessOrEquals: 'is at most',
  exists: 'exists',
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The error path is this node or inside it. */
const hits = (path: string, errorPath: string | undefined) => errorPath !== undefined && (errorPath === path || errorPath.startsWith(`${path}/`));

function ErrorMark({ path, errorPath, message }: { path: string; errorPath: string | undefined; message: string | undefined }) {
  if (errorPath === undefined || message === undefined) return null;
  // The message is shown on the deepest node the path reaches; parents only get the outline.
  return errorPath === path ? (
    <span class="clause-error" role="alert">
      {' '}
      ✗ {message}
    </span>
  ) : null;
}

function Condition({ node, path, errorPath, message }: { node: unknown; path: string; errorPath?: string | undefined; message?: string | undefined }) {
  const invalid = hits(path, errorPath);
  if (!isObject(node)) {
    return (
      <li class={invalid ? 'invalid' : ''} data-path={path}>
        <Json value={node} />
        <ErrorMark path={path} errorPath={errorPath} message={message} />
      </li>
    );
  }
  const group = 'anyOf' in node ? 'anyOf' : 'allOf' in node ? 'allOf' : undefined;
  if (group) {
    const list = node[group];
    return (
      <li class={invalid ? 'invalid' : ''} data-path={path}>
        {typeof node.authority === 'string' ? (
          <>
            tokens from <strong>{node.authority}</strong>,{' '}
          </>
        ) : null}
        {group === 'anyOf' ? 'any of' : 'all of'}:
        <ErrorMark path={path} errorPath={errorPath} message={message} />
        {Array.isArray(list) ? (
          <ul>
            {list.map((c, i) => (
              <Condition key={i} node={c} path={`${path}/${group}/${i}`} errorPath={errorPath} message={message} />
            ))}
          </ul>
        ) : (
          <ErrorMark path={`${path}/${group}`} errorPath={errorPath} message={message} />
        )}
      </li>
    );
  }
  const keys = Object.keys(node).filter((k) => k !== 'claim');
  const legacy = 'condition' in node;
  const operator = legacy ? String(node.condition) : (keys[0] ?? '?');
  const value = legacy ? node.value : node[operator];
  return (
    <li class={invalid ? 'invalid' : ''} data-path={path}>
      claim <code>{String(node.claim ?? '?')}</code> {OPERATOR_WORDS[operator] ?? operator}
      {operator === 'exists' && value !== false && value !== 'false' ? null : (
        <>
          {' '}
          <Json value={value} />
        </>
      )}
      <ErrorMark path={path} errorPath={errorPath} message={message} />
      {keys
        .filter((k) => k !== operator && k !== 'condition' && k !== 'value')
        .map((k) => (
          <ErrorMark key={k} path={`${path}/${k}`} errorPath={errorPath} message={message} />
        ))}
      <ErrorMark path={`${path}/claim`} errorPath={errorPath} message={message} />
      <ErrorMark path={`${path}/${operator}`} errorPath={errorPath} message={message} />
    </li>
  );
}

/** A release policy (as the user wrote it) as nested lists; `error` marks the clause a validation error names. */
export function PolicyTree({ policy, error }: { policy: unknown; error?: { path: string; message: string } | undefined }) {
  const errorPath = error?.path;
  const message = error?.message;
  if (!isObject(policy)) {
    return (
      <div class="policy-tree">
        <p class={error ? 'invalid' : ''}>
          The policy must be a JSON object.{message ? ` ${message}` : ''}
        </p>
      </div>
    );
  }
  return (
    <div class="policy-tree">
      <p>
        Release policy{typeof policy.version === 'string' ? ` version ${policy.version}` : ''}: release to
      </p>
      <ul>
        <Condition node={Object.fromEntries(Object.entries(policy).filter(([k]) => k !== 'version'))} path="" errorPath={errorPath} message={message} />
      </ul>
    </div>
  );
}

export type { TraceNode } from './model.js';

function TraceItem({ node }: { node: TraceNode }) {
  const verdict = <Badge tone={node.result ? 'ok' : 'bad'}>{node.result ? 'met' : 'not met'}</Badge>;
  let text: ComponentChildren;
  if (node.kind === 'claim') {
    text = (
      <>
        claim <code>{node.claim}</code> {OPERATOR_WORDS[node.condition ?? ''] ?? node.condition} expected <Json value={node.expected} />, actual{' '}
        {node.actual === undefined ? <em>absent</em> : <Json value={node.actual} />}
      </>
    );
  } else if (node.kind === 'authority') {
    text = (
      <>
        authority <strong>{node.authority}</strong> {node.authorityMatched === false ? '(the token comes from another issuer)' : '(issuer matches)'}
      </>
    );
  } else text = node.kind === 'anyOf' ? 'any of' : node.kind === 'allOf' ? 'all of' : node.kind;
  return (
    <li data-path={node.path} class={node.result ? 'met' : 'unmet'}>
      {verdict} {text}
      {node.path ? <span class="muted path"> at {node.path}</span> : null}
      {node.children?.length ? (
        <ul>
          {node.children.map((c, i) => (
            <TraceItem key={i} node={c} />
          ))}
        </ul>
      ) : null}
    </li>
  );
}

/** The evaluation trace of a release decision. */
export function TraceTree({ trace }: { trace: TraceNode }) {
  return (
    <div class="policy-tree trace">
      <ul>
        <TraceItem node={trace} />
      </ul>
    </div>
  );
}

/** A starting point for a new key's release policy (this server as the authority). */
export function examplePolicy(authority: string): string {
  return JSON.stringify(
    { version: '1.0.0', anyOf: [{ authority, allOf: [{ claim: 'x-ms-sevsnpvm-is-debuggable', equals: 'false' }, { claim: 'x-ms-attestation-type', equals: 'sevsnpvm' }] }] },
    null,
    2,
  );
}

export interface PolicyCheck {
  readonly valid: boolean;
  readonly canonical?: unknown;
  readonly error?: { code: string; message: string; path: string };
  readonly decision?: { released: boolean; issuer: string; trace: TraceNode; explanation: string | null };
  readonly claims?: Record<string, unknown>;
}
