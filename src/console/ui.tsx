/** Small shared pieces of the console: loading state, errors, badges, times, the status live region. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.js';
import { formatTime } from './model.js';

export interface Loaded<T> {
  readonly data: T | undefined;
  readonly error: ApiError | Error | undefined;
  readonly loading: boolean;
  reload(): void;
}

/** Runs `load` when `deps` change (and on reload()), keeping the last answer or error. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error: Error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/** An error as a sentence: the catalogue code, then the server's message. */
export function ErrorNote({ error, what }: { error: Error | undefined; what?: string }) {
  if (!error) return null;
  const code = error instanceof ApiError ? error.code : undefined;
  const forbidden = error instanceof ApiError && error.status === 403 && code !== 'auth.csrf';
  return (
    <div class="note error" role="alert">
      <strong>{what ? `${what}: ` : ''}</strong>
      {forbidden ? 'your principal lacks the role for this. ' : ''}
      {error.message}
      {code ? <span class="code"> ({code})</span> : null}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status">
      Loading {what}…
    </p>
  );
}

export type Tone = 'ok' | 'warn' | 'bad' | 'info';

/** A status in words and colour (the words carry the meaning; colour only repeats it). */
export function Badge({ tone, children }: { tone: Tone; children: ComponentChildren }) {
  return <span class={`badge ${tone}`}>{children}</span>;
}

export function Section({ title, id, children, actions }: { title: string; id: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section aria-labelledby={id} class="card">
      <div class="card-head">
        <h2 id={id}>{title}</h2>
        {actions ? <div class="actions">{actions}</div> : null}
      </div>
      {children}
    </section>
  );
}

/** A time as the reader's local date and time, with the ISO form for machines. */
export function Time({ value }: { value: string | number | null | undefined }) {
  if (value === null || value === undefined || value === '') return <span class="muted">—</span>;
  const d = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(d.getTime())) return <span>{String(value)}</span>;
  return <time dateTime={d.toISOString()}>{formatTime(d)}</time>;
}


/** Shows any JSON value compactly (claims, expected and actual values). */
export function Json({ value }: { value: unknown }) {
  const text = typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value, null, typeof value === 'object' && value !== null ? 2 : 0);
  return <code class="json">{text === undefined ? 'absent' : text}</code>;
}

let announce: (text: string) => void = () => undefined;

/** The one polite live region: success messages of actions are read out here. */
export function StatusRegion() {
  const [text, setText] = useState('');
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  announce = (t: string) => {
    setText('');
    clearTimeout(timer.current);
    setTimeout(() => setText(t), 50);
    // Read out, then out of the way.
    timer.current = setTimeout(() => setText(''), 6000);
  };
  return (
    <div class="status-region" role="status" aria-live="polite">
      {text}
    </div>
  );
}

export function say(text: string): void {
  announce(text);
}

/** Runs an action, announcing success or returning the error for display. */
export async function act(run: () => Promise<unknown>, done: string): Promise<Error | undefined> {
  try {
    await run();
    say(done);
    return undefined;
  } catch (e) {
    return e as Error;
  }
}
