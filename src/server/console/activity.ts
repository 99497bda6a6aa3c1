/**
 * Attestation activity of this replica for the console's overview: counts per minute over the last 24
 * hours and the most recent outcomes. Attestations leave no audit record (MAA keeps none either), so this
 * is what the process saw since it started; releases, which are audited, come from the log instead.
 */

export interface AttestationOutcome {
  /** ISO 8601 time. */
  readonly time: string;
  /** The route's type (SevSnpVm, TdxVm, …), as the caller spelled it. */
  readonly type: string;
  /** The HTTP status: 200 a token was issued, 4xx the evidence or its policy was refused. */
  readonly status: number;
}

export interface ActivityBucket {
  /** Start of the minute, ISO 8601. */
  readonly start: string;
  readonly issued: number;
  readonly refused: number;
}

export interface AttestationActivity {
  record(type: string, status: number, at: Date): void;
  snapshot(at: Date): { since: string; buckets: ActivityBucket[]; recent: AttestationOutcome[]; totals: { issued: number; refused: number } };
}

const MINUTE = 60_000;
const WINDOW_MINUTES = 24 * 60;
const RECENT = 50;

export function createAttestationActivity(startedAt: Date): AttestationActivity {
  // One slot per minute of the window, reused as time goes round: bounded memory whatever the load.
  const slots = Array.from({ length: WINDOW_MINUTES }, () => ({ minute: -1, issued: 0, refused: 0 }));
  const recent: AttestationOutcome[] = [];
  return {
    record(type, status, at) {
      const minute = Math.floor(at.getTime() / MINUTE);
      const slot = slots[minute % WINDOW_MINUTES]!;
      if (slot.minute !== minute) Object.assign(slot, { minute, issued: 0, refused: 0 });
      if (status < 300) slot.issued++;
      else slot.refused++;
      recent.unshift({ time: at.toISOString(), type: type.slice(0, 32), status });
      if (recent.length > RECENT) recent.length = RECENT;
    },
    snapshot(at) {
      const now = Math.floor(at.getTime() / MINUTE);
      const buckets = slots
        .filter((s) => s.minute > now - WINDOW_MINUTES && s.minute <= now)
        .sort((a, b) => a.minute - b.minute)
        .map((s) => ({ start: new Date(s.minute * MINUTE).toISOString(), issued: s.issued, refused: s.refused }));
      const totals = buckets.reduce((t, b) => ({ issued: t.issued + b.issued, refused: t.refused + b.refused }), { issued: 0, refused: 0 });
      return { since: startedAt.toISOString(), buckets, recent: [...recent], totals };
    },
  };
}
