/**
 * Three small SVG charts of our own: counts over time, a timeline of validity windows, and counts per
 * status. Each is an image with a title and a description for screen readers, and its numbers are also
 * in a table (visually hidden) so nothing is only in the picture.
 */
import { formatTime, type SeriesBucket } from './model.js';

export type { SeriesBucket } from './model.js';

let ids = 0;
const nextId = (p: string) => `${p}-${++ids}`;

/** Stacked bars per time bucket (e.g. issued and refused attestations per hour). */
export function TimeBars({ title, series, buckets, width = 480, height = 140 }: { title: string; series: readonly { name: string; tone: string }[]; buckets: readonly SeriesBucket[]; width?: number; height?: number }) {
  const id = nextId('chart');
  const max = Math.max(1, ...buckets.map((b) => b.values.reduce((a, v) => a + v, 0)));
  const pad = { l: 32, r: 8, t: 8, b: 22 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  const step = buckets.length ? w / buckets.length : w;
  const totals = series.map((_, i) => buckets.reduce((a, b) => a + (b.values[i] ?? 0), 0));
  const desc = `${series.map((s, i) => `${totals[i]} ${s.name}`).join(', ')} in ${buckets.length} intervals${buckets.length ? ` from ${formatTime(buckets[0]!.start)}` : ''}; the highest interval holds ${max === 1 && totals.every((t) => t === 0) ? 0 : max}.`;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby={`${id}-t ${id}-d`}>
        <title id={`${id}-t`}>{title}</title>
        <desc id={`${id}-d`}>{desc}</desc>
        <line class="axis" x1={pad.l} y1={pad.t + h} x2={pad.l + w} y2={pad.t + h} />
        <text class="tick" x={pad.l - 4} y={pad.t + 8} text-anchor="end">
          {max}
        </text>
        <text class="tick" x={pad.l - 4} y={pad.t + h} text-anchor="end">
          0
        </text>
        {buckets.map((b, i) => {
          let y = pad.t + h;
          return b.values.map((v, k) => {
            const bh = (v / max) * h;
            y -= bh;
            return v > 0 ? <rect key={`${i}-${k}`} class={`bar ${series[k]?.tone ?? ''}`} x={pad.l + i * step + 1} y={y} width={Math.max(1, step - 2)} height={bh} /> : null;
          });
        })}
        {buckets.length > 0 ? (
          <>
            <text class="tick" x={pad.l} y={height - 6}>
              {formatTime(buckets[0]!.start)}
            </text>
            <text class="tick" x={pad.l + w} y={height - 6} text-anchor="end">
              {formatTime(buckets[buckets.length - 1]!.start)}
            </text>
          </>
        ) : null}
      </svg>
      <figcaption>
        {series.map((s, i) => (
          <span key={s.name} class="legend">
            <span class={`swatch ${s.tone}`} aria-hidden="true" /> {s.name}: {totals[i]}
          </span>
        ))}
      </figcaption>
      <table class="visually-hidden">
        <caption>{title}</caption>
        <thead>
          <tr>
            <th scope="col">interval from</th>
            {series.map((s) => (
              <th key={s.name} scope="col">
                {s.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {buckets
            .filter((b) => b.values.some((v) => v > 0))
            .map((b) => (
              <tr key={b.start.toISOString()}>
                <td>{formatTime(b.start)}</td>
                {b.values.map((v, k) => (
                  <td key={series[k]?.name}>{v}</td>
                ))}
              </tr>
            ))}
        </tbody>
      </table>
    </figure>
  );
}

export interface Span {
  readonly label: string;
  readonly start: Date | null;
  readonly end: Date | null;
  readonly tone: string;
}

/** Validity windows on one time axis, with today marked (e.g. collateral issue date → next update). */
export function Timeline({ title, spans, now, width = 1000 }: { title: string; spans: readonly Span[]; now: Date; width?: number }) {
  const id = nextId('timeline');
  const row = 18;
  const pad = { l: 250, r: 12, t: 8, b: 24 };
  const height = pad.t + pad.b + Math.max(1, spans.length) * row;
  const times = spans.flatMap((s) => [s.start, s.end]).filter((d): d is Date => d !== null).map((d) => d.getTime());
  const lo = Math.min(now.getTime() - 86_400_000, ...times);
  const hi = Math.max(now.getTime() + 86_400_000, ...times);
  const x = (t: number) => pad.l + ((t - lo) / (hi - lo)) * (width - pad.l - pad.r);
  const expired = spans.filter((s) => s.end && s.end.getTime() < now.getTime()).length;
  const next = spans
    .filter((s) => s.end && s.end.getTime() >= now.getTime())
    .sort((a, b) => a.end!.getTime() - b.end!.getTime())[0];
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby={`${id}-t ${id}-d`}>
        <title id={`${id}-t`}>{title}</title>
        <desc id={`${id}-d`}>
          {`${spans.length} items; ${expired} past their next update${next ? `; the next to need an update is ${next.label}, on ${formatTime(next.end!)}` : ''}.`}
        </desc>
        {spans.map((s, i) => {
          const y = pad.t + i * row;
          const a = x((s.start ?? s.end ?? now).getTime());
          const b = x((s.end ?? now).getTime());
          return (
            <g key={`${s.label}-${i}`}>
              <text class="tick" x={pad.l - 6} y={y + 12} text-anchor="end">
                {s.label.length > 40 ? `${s.label.slice(0, 39)}…` : s.label}
              </text>
              <rect class={`bar ${s.tone}`} x={a} y={y + 3} width={Math.max(2, b - a)} height={row - 6} />
            </g>
          );
        })}
        <line class="now" x1={x(now.getTime())} y1={pad.t} x2={x(now.getTime())} y2={height - pad.b} />
        <text class="tick" x={x(now.getTime())} y={height - 8} text-anchor="middle">
          now
        </text>
        <text class="tick" x={pad.l} y={height - 8}>
          {formatTime(new Date(lo)).slice(0, 10)}
        </text>
        <text class="tick" x={width - pad.r} y={height - 8} text-anchor="end">
          {formatTime(new Date(hi)).slice(0, 10)}
        </text>
      </svg>
    </figure>
  );
}

/** Horizontal bars of counts per category (e.g. TCB status of the platforms seen). */
export function CountBars({ title, rows, width = 480 }: { title: string; rows: readonly { label: string; count: number; tone: string }[]; width?: number }) {
  const id = nextId('counts');
  const row = 22;
  const pad = { l: 180, r: 40 };
  const height = Math.max(1, rows.length) * row + 8;
  const max = Math.max(1, ...rows.map((r) => r.count));
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby={`${id}-t ${id}-d`}>
        <title id={`${id}-t`}>{title}</title>
        <desc id={`${id}-d`}>{rows.length ? rows.map((r) => `${r.label}: ${r.count}`).join(', ') : 'nothing seen yet'}</desc>
        {rows.map((r, i) => {
          const w = (r.count / max) * (width - pad.l - pad.r);
          return (
            <g key={r.label}>
              <text class="tick" x={pad.l - 6} y={i * row + 16} text-anchor="end">
                {r.label}
              </text>
              <rect class={`bar ${r.tone}`} x={pad.l} y={i * row + 4} width={Math.max(1, w)} height={row - 8} />
              <text class="tick" x={pad.l + w + 4} y={i * row + 16}>
                {r.count}
              </text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
