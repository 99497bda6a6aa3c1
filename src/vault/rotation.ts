/**
 * Key rotation policies (AKV keys API 7.3+, `GET/PUT /keys/{name}/rotationpolicy`): parsing, the wire
 * shape, ISO 8601 durations, and when a policy's actions fall due. Pure: times are epoch seconds.
 *
 * AKV's rules, as its documentation states them: `expiryTime` at least 28 days; a Rotate trigger at
 * least 7 days after creation and, before expiry, at least 7 days before it; one trigger per action
 * (`timeAfterCreate` or `timeBeforeExpiry`); at most one Rotate and one Notify; Notify only before
 * expiry. A key with no stored policy reports AKV's default (Notify 30 days before expiry).
 */
import { fail } from '../core/errors.js';

export type LifetimeActionType = 'Rotate' | 'Notify';

/** An ISO 8601 duration (`P1Y2M10DT2H30M`, `P2W`) split into calendar and clock parts. */
export interface Duration {
  readonly text: string;
  readonly years: number;
  readonly months: number;
  readonly days: number;
  readonly seconds: number;
}

export interface LifetimeAction {
  readonly type: LifetimeActionType;
  readonly trigger: { readonly timeAfterCreate: Duration } | { readonly timeBeforeExpiry: Duration };
}

export interface RotationPolicy {
  readonly lifetimeActions: readonly LifetimeAction[];
  /** How long a version made by rotation lives (its `exp` = creation + expiryTime). */
  readonly expiryTime?: Duration;
  readonly created: number;
  readonly updated: number;
}

const DAY = 86400;
const DURATION = /^P(?!$)(?:(\d{1,4})Y)?(?:(\d{1,5})M)?(?:(\d{1,5})W)?(?:(\d{1,6})D)?(?:T(?=\d)(?:(\d{1,7})H)?(?:(\d{1,9})M)?(?:(\d{1,10})S)?)?$/;

function invalid(field: string, message: string): never {
  throw fail('key.invalid', message, { field });
}

/** Parses an ISO 8601 duration (integer components only, as AKV's examples use). */
export function parseDuration(v: unknown, field: string): Duration {
  if (typeof v !== 'string') invalid(field, `${field} must be an ISO 8601 duration such as P90D`);
  const m = DURATION.exec(v.toUpperCase());
  if (!m) invalid(field, `${field} ${JSON.stringify(v)} is not an ISO 8601 duration (PnYnMnWnDTnHnMnS, e.g. P90D or P1Y)`);
  const n = (i: number) => (m[i] === undefined ? 0 : Number(m[i]));
  return { text: v.toUpperCase(), years: n(1), months: n(2), days: n(3) * 7 + n(4), seconds: n(5) * 3600 + n(6) * 60 + n(7) };
}

/**
 * `at` moved by the duration (`sign` -1 to go back): years and months on the UTC calendar, the day of
 * month clamped to the target month's last day (31 Jan + P1M = 28/29 Feb), then days and seconds.
 */
export function addDuration(at: number, d: Duration, sign: 1 | -1 = 1): number {
  const t = new Date(at * 1000);
  const monthsTotal = t.getUTCFullYear() * 12 + t.getUTCMonth() + sign * (d.years * 12 + d.months);
  const year = Math.floor(monthsTotal / 12);
  const month = monthsTotal - year * 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const moved = Date.UTC(year, month, Math.min(t.getUTCDate(), lastDay), t.getUTCHours(), t.getUTCMinutes(), t.getUTCSeconds());
  return Math.floor(moved / 1000) + sign * (d.days * DAY + d.seconds);
}

/** A lower bound on a duration's length (months as 28 days, years as 365): for the minimum checks. */
function minimumSeconds(d: Duration): number {
  return (d.years * 365 + d.months * 28 + d.days) * DAY + d.seconds;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseActionType(v: unknown, field: string): LifetimeActionType {
  const t = isObject(v) ? v.type : undefined;
  if (typeof t === 'string') {
    if (t.toLowerCase() === 'rotate') return 'Rotate';
    if (t.toLowerCase() === 'notify') return 'Notify';
  }
  invalid(field, `${field}.type must be Rotate or Notify, got ${JSON.stringify(t)}`);
}

/**
 * `PUT /keys/{name}/rotationpolicy` body (KeyRotationPolicy): `lifetimeActions` and `attributes.expiryTime`.
 * An empty or absent `lifetimeActions` resets the actions to AKV's default.
 */
export function parseRotationPolicy(body: unknown, nowSeconds: number, created?: number): RotationPolicy {
  if (!isObject(body)) invalid('body', 'The request body must be a JSON object (KeyRotationPolicy)');
  const attrs = body.attributes;
  if (attrs !== undefined && attrs !== null && !isObject(attrs)) invalid('attributes', 'attributes must be an object');
  const rawExpiry = isObject(attrs) ? attrs.expiryTime : undefined;
  const expiryTime = rawExpiry === undefined || rawExpiry === null ? undefined : parseDuration(rawExpiry, 'attributes.expiryTime');
  if (expiryTime && minimumSeconds(expiryTime) < 28 * DAY) invalid('attributes.expiryTime', `attributes.expiryTime ${expiryTime.text} is shorter than the minimum of 28 days (P28D)`);
  const raw = body.lifetimeActions;
  if (raw !== undefined && raw !== null && !Array.isArray(raw)) invalid('lifetimeActions', 'lifetimeActions must be an array');
  const list = (raw ?? []) as unknown[];
  if (list.length > 2) invalid('lifetimeActions', 'lifetimeActions holds at most two actions: one Rotate and one Notify');
  const actions: LifetimeAction[] = [];
  list.forEach((a, i) => {
    const field = `lifetimeActions[${i}]`;
    if (!isObject(a)) invalid(field, `${field} must be an object {trigger, action}`);
    const type = parseActionType(a.action, `${field}.action`);
    if (actions.some((x) => x.type === type)) invalid(field, `lifetimeActions holds more than one ${type} action`);
    const trig = a.trigger;
    if (!isObject(trig)) invalid(`${field}.trigger`, `${field}.trigger must be an object`);
    const after = trig.timeAfterCreate ?? undefined;
    const before = trig.timeBeforeExpiry ?? undefined;
    if ((after === undefined) === (before === undefined)) invalid(`${field}.trigger`, `${field}.trigger needs exactly one of timeAfterCreate and timeBeforeExpiry`);
    if (after !== undefined) {
      const d = parseDuration(after, `${field}.trigger.timeAfterCreate`);
      if (type === 'Notify') invalid(`${field}.trigger`, 'A Notify action is triggered by timeBeforeExpiry only');
      if (minimumSeconds(d) < 7 * DAY) invalid(`${field}.trigger.timeAfterCreate`, `timeAfterCreate ${d.text} is shorter than the minimum of 7 days (P7D)`);
      if (expiryTime && minimumSeconds(d) > minimumSeconds(expiryTime) - 7 * DAY) {
        invalid(`${field}.trigger.timeAfterCreate`, `timeAfterCreate ${d.text} must fall at least 7 days before expiryTime ${expiryTime.text}`);
      }
      actions.push({ type, trigger: { timeAfterCreate: d } });
    } else {
      const d = parseDuration(before, `${field}.trigger.timeBeforeExpiry`);
      if (type === 'Rotate' && minimumSeconds(d) < 7 * DAY) invalid(`${field}.trigger.timeBeforeExpiry`, `timeBeforeExpiry ${d.text} is shorter than the minimum of 7 days (P7D)`);
      if (expiryTime && minimumSeconds(d) >= minimumSeconds(expiryTime)) invalid(`${field}.trigger.timeBeforeExpiry`, `timeBeforeExpiry ${d.text} must be shorter than expiryTime ${expiryTime.text}`);
      actions.push({ type, trigger: { timeBeforeExpiry: d } });
    }
  });
  return {
    lifetimeActions: actions.length > 0 ? actions : DEFAULT_ACTIONS,
    ...(expiryTime ? { expiryTime } : {}),
    created: created ?? nowSeconds,
    updated: nowSeconds,
  };
}

const DEFAULT_ACTIONS: readonly LifetimeAction[] = [{ type: 'Notify', trigger: { timeBeforeExpiry: parseDuration('P30D', 'default') } }];

/** What `GET …/rotationpolicy` reports for a key that never had a policy (AKV's default). */
export const DEFAULT_ROTATION_POLICY: Omit<RotationPolicy, 'created' | 'updated'> = { lifetimeActions: DEFAULT_ACTIONS };

/** KeyRotationPolicy on the wire. */
export function rotationPolicyWire(keyUrl: string, p: Omit<RotationPolicy, 'created' | 'updated'> & { created?: number; updated?: number }): Record<string, unknown> {
  return {
    id: `${keyUrl}/rotationpolicy`,
    lifetimeActions: p.lifetimeActions.map((a) => ({
      trigger: 'timeAfterCreate' in a.trigger ? { timeAfterCreate: a.trigger.timeAfterCreate.text } : { timeBeforeExpiry: a.trigger.timeBeforeExpiry.text },
      action: { type: a.type },
    })),
    attributes: {
      expiryTime: p.expiryTime?.text ?? null,
      ...(p.created !== undefined ? { created: p.created } : {}),
      ...(p.updated !== undefined ? { updated: p.updated } : {}),
    },
  };
}

/** The stored form: durations as their text, re-parsed on load. */
export function serializeRotationPolicy(p: RotationPolicy): string {
  return JSON.stringify(rotationPolicyWire('', p));
}

export function deserializeRotationPolicy(json: string): RotationPolicy {
  const w = JSON.parse(json) as { attributes: { created: number; updated: number } };
  return parseStored(w);
}

function parseStored(w: { attributes: { created: number; updated: number } } & Record<string, unknown>): RotationPolicy {
  const actions = (w.lifetimeActions as { trigger: Record<string, string>; action: { type: string } }[]).map((a): LifetimeAction => {
    const type = a.action.type as LifetimeActionType;
    return a.trigger.timeAfterCreate !== undefined
      ? { type, trigger: { timeAfterCreate: parseDuration(a.trigger.timeAfterCreate, 'stored') } }
      : { type, trigger: { timeBeforeExpiry: parseDuration(a.trigger.timeBeforeExpiry, 'stored') } };
  });
  const exp = (w.attributes as { expiryTime?: string | null }).expiryTime;
  return { lifetimeActions: actions, ...(exp ? { expiryTime: parseDuration(exp, 'stored') } : {}), created: w.attributes.created, updated: w.attributes.updated };
}

/**
 * When the action of `type` falls due for the current version (created `created`, expiring `exp`):
 * undefined when the policy has no such action, or it counts back from an expiry the version lacks.
 */
export function dueAt(policy: Pick<RotationPolicy, 'lifetimeActions'>, type: LifetimeActionType, version: { created: number; exp?: number | undefined }): number | undefined {
  const a = policy.lifetimeActions.find((x) => x.type === type);
  if (!a) return undefined;
  if ('timeAfterCreate' in a.trigger) return addDuration(version.created, a.trigger.timeAfterCreate);
  return version.exp === undefined ? undefined : addDuration(version.exp, a.trigger.timeBeforeExpiry, -1);
}

/** The `exp` of a version the rotator (or `POST …/rotate`) makes at `nowSeconds`. */
export function rotatedExpiry(policy: Pick<RotationPolicy, 'expiryTime'> | undefined, nowSeconds: number): number | undefined {
  return policy?.expiryTime ? addDuration(nowSeconds, policy.expiryTime) : undefined;
}
