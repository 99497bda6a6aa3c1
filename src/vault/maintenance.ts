/**
 * The vault's scheduled work: rotations that fell due under a key's rotation policy, Notify actions,
 * and the purge of soft-deleted keys at their scheduled purge date. Every replica runs it; each action
 * is decided under the key's lock (PostgreSQL advisory lock, SQLite's single writer) from what the store
 * holds at that moment, so it happens exactly once however many replicas race, and each leaves one
 * audit record by the maintenance principal.
 */
import { type VaultCore, MAINTENANCE_PRINCIPAL } from './core.js';
import { rotatedVersion } from './lifecycle.js';
import { DEFAULT_ROTATION_POLICY, dueAt } from './rotation.js';
import type { AuditEntry, RotationCandidate } from './store.js';

/** Per run: bounded work (actions taken), the rest waits for the next run; candidates are read in pages. */
const BATCH = 100;
const MAX_PER_RUN = 1000;

export interface MaintenanceReport {
  readonly rotated: string[];
  readonly notified: string[];
  readonly purged: string[];
}

export function createMaintenance(core: VaultCore) {
  const { store, nowSeconds } = core;

  function record(operation: string, key: string, version: string | undefined, detail: Record<string, unknown>): AuditEntry {
    return { time: core.deps.now().toISOString(), principal: MAINTENANCE_PRINCIPAL, operation, key, ...(version ? { version } : {}), result: 'success', status: 200, detail };
  }

  async function purgeDue(now: number, out: string[]): Promise<void> {
    for (const name of await store.duePurges(now, MAX_PER_RUN)) {
      // `dueBy` makes the store re-check the date in the deleting statement: a key recovered (or purged
      // by another replica) since the listing is left alone.
      if (await store.purge(name, record('purge', name, undefined, { scheduled: true }), now)) out.push(name);
    }
  }

  async function rotateDue(now: number, rotated: string[], notified: string[]): Promise<void> {
    // Every candidate is looked at, in name order (keyset pages, so keys past the first pages are never
    // starved); what one run does is capped, and what is left stays due for the next run.
    let after: string | undefined;
    for (;;) {
      const page = await store.rotationCandidates(after, BATCH);
      for (const c of page) {
        if (rotated.length + notified.length >= MAX_PER_RUN) return;
        try {
          await actOn(c, now, rotated, notified);
        } catch (e) {
          core.deps.logger.error({ err: e, key: c.name }, 'scheduled rotation failed');
        }
      }
      if (page.length < BATCH) return;
      after = page.at(-1)!.name;
    }
  }

  async function actOn(c: RotationCandidate, now: number, rotated: string[], notified: string[]): Promise<void> {
    const policy = c.policy ?? DEFAULT_ROTATION_POLICY;
    const rotateAt = dueAt(policy, 'Rotate', c.latest.attributes);
    if (rotateAt !== undefined && rotateAt <= now) {
      const made = await store.rotateIfDue(c.name, async (latest, policy) => {
        // Decided again on what the lock shows: another replica may have rotated meanwhile.
        const due = dueAt(policy, 'Rotate', latest.attributes);
        if (due === undefined || due > nowSeconds()) return undefined;
        const version = await rotatedVersion(core, latest, policy);
        const detail = { scheduled: true, previous: latest.version, dueAt: due, ...(version.attributes.exp !== undefined ? { exp: version.attributes.exp } : {}) };
        return { version, audit: record('rotate', latest.name, version.version, detail) };
      });
      if (made) rotated.push(made.name);
      return;
    }
    if (c.noticed) return;
    const notifyAt = dueAt(policy, 'Notify', c.latest.attributes);
    if (notifyAt === undefined || notifyAt > now) return;
    // Conclave has no Event Grid: the notice is an audit record (and a log line), once per version.
    const detail = { dueAt: notifyAt, exp: c.latest.attributes.exp };
    if (await store.recordNotice(c.name, c.latest.version, now, record('rotationNotify', c.name, c.latest.version, detail))) {
      notified.push(c.name);
      core.deps.logger.info?.({ key: c.name, version: c.latest.version, exp: c.latest.attributes.exp }, 'key near expiry (rotation policy Notify)');
    }
  }

  return {
    /** One pass of due work at the injected clock's now. Failures of one key are logged; the rest go on. */
    async runMaintenance(): Promise<MaintenanceReport> {
      const now = nowSeconds();
      const report = { rotated: [] as string[], notified: [] as string[], purged: [] as string[] };
      for (const step of [() => purgeDue(now, report.purged), () => rotateDue(now, report.rotated, report.notified)]) {
        try {
          await step();
        } catch (e) {
          core.deps.logger.error({ err: e }, 'vault maintenance step failed');
        }
      }
      return report;
    },
  };
}
