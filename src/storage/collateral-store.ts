import type { CollateralItem, CollateralKind, CollateralMeta } from '../collateral/cache/item.js';
import type { CollateralStore } from '../collateral/ports.js';
import type { Database, SqlExecutor } from './database.js';

export type { CollateralStore, Registration } from '../collateral/ports.js';


interface ItemRow {
  item_key: string;
  kind: string;
  scope: string;
  eval_number: number | string | null;
  selector: string | null;
  meta: string;
  body: Buffer;
  source: string;
  fetched_at: number | string;
  issue_date: number | string | null;
  next_update: number | string | null;
  version: number | string;
}

interface RegistrationRow {
  qe_id: string;
  pce_id: string;
  cpu_svn: string | null;
  pce_svn: string | null;
  enc_ppid: string | null;
  platform_manifest: string | null;
  state: string;
  created_at: number | string;
}

function toRegistration(r: RegistrationRow) {
  return { qeId: r.qe_id, pceId: r.pce_id, cpuSvn: r.cpu_svn ?? undefined, pceSvn: r.pce_svn ?? undefined, encPpid: r.enc_ppid ?? undefined, platformManifest: r.platform_manifest ?? undefined, state: r.state, createdAt: Number(r.created_at) };
}

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

function toItem(r: ItemRow): CollateralItem {
  return {
    key: r.item_key,
    kind: r.kind as CollateralKind,
    scope: r.scope,
    evalNumber: num(r.eval_number),
    selector: r.selector,
    meta: JSON.parse(r.meta) as CollateralMeta,
    body: new Uint8Array(r.body.buffer, r.body.byteOffset, r.body.byteLength),
    source: r.source,
    fetchedAt: Number(r.fetched_at),
    issueDate: num(r.issue_date),
    nextUpdate: num(r.next_update),
    version: Number(r.version),
  };
}

async function bump(tx: SqlExecutor): Promise<number> {
  const row = await tx.get<{ version: number | string }>('UPDATE collateral_state SET version = version + 1 WHERE id = 1 RETURNING version');
  return Number(row?.version ?? 0);
}

/**
 * A platform seen again within this long is not written again: an attestation service sees the same
 * few platforms on every request, and `last_seen` serves fleet views and the baseline dry run, for which
 * a minute is exact enough. Without it every verified quote would cost a store write.
 */
const SIGHTING_RESOLUTION_MS = 60_000;

export function createCollateralStore(db: Database): CollateralStore {
  const written = new Map<string, { at: number; source: string }>();
  return {
    async currentVersion() {
      const r = await db.get<{ version: number | string }>('SELECT version FROM collateral_state WHERE id = 1');
      return Number(r?.version ?? 0);
    },
    async itemsSince(version) {
      const rows = await db.all<ItemRow>('SELECT * FROM collateral_items WHERE version > ? ORDER BY version', [version]);
      return rows.map(toItem);
    },
    async put(items, guard) {
      return db.transaction(async (tx) => {
        // Every writer of collateral items takes this lock (SQLite: one writer at a time anyway), so what the
        // guard reads below is what the writes replace: a copy another replica stored after the caller's
        // own check is seen here, and an older item is refused instead of written over it.
        await tx.lock('collateral');
        const scopes = new Map<string, CollateralItem[]>();
        const checked: Omit<CollateralItem, 'version'>[] = [];
        // All checked before any is written: each item against the store as it was, not its siblings.
        for (const given of items) {
          let stored = scopes.get(given.scope);
          if (!stored) {
            stored = (await tx.all<ItemRow>('SELECT * FROM collateral_items WHERE scope = ?', [given.scope])).map(toItem);
            scopes.set(given.scope, stored);
          }
          checked.push(guard(given, stored));
        }
        let v = 0;
        for (const i of checked) {
          v = await bump(tx);
          await tx.run(
            `INSERT INTO collateral_items (item_key, kind, scope, eval_number, selector, meta, body, source, fetched_at, issue_date, next_update, version)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (item_key) DO UPDATE SET kind = excluded.kind, scope = excluded.scope, eval_number = excluded.eval_number,
               selector = excluded.selector, meta = excluded.meta, body = excluded.body, source = excluded.source, fetched_at = excluded.fetched_at,
               issue_date = excluded.issue_date, next_update = excluded.next_update, version = excluded.version`,
            [i.key, i.kind, i.scope, i.evalNumber, i.selector, JSON.stringify(i.meta), Buffer.from(i.body), i.source, i.fetchedAt, i.issueDate, i.nextUpdate, v],
          );
        }
        return v;
      });
    },
    async getSetting<T>(name: string) {
      const r = await db.get<{ value: string }>('SELECT value FROM collateral_settings WHERE name = ?', [name]);
      return r ? (JSON.parse(r.value) as T) : undefined;
    },
    async putSetting(name, value, at) {
      await db.transaction(async (tx) => {
        await tx.run(
          'INSERT INTO collateral_settings (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
          [name, JSON.stringify(value), at.getTime()],
        );
        // Settings change what is served, so replicas must drop their prepared answers too.
        await bump(tx);
      });
    },
    async recordPlatformSeen(p, source, at) {
      const fmspc = p.fmspc.toUpperCase();
      const cpusvn = p.cpusvn.toLowerCase();
      const tee = p.teeTcbSvn?.toLowerCase() ?? null;
      const key = `${p.tee}:${fmspc}:${cpusvn}:${p.pcesvn}:${tee ?? ''}`;
      const last = written.get(key);
      const ms = at.getTime();
      if (last && last.source === source && ms >= last.at && ms - last.at < SIGHTING_RESOLUTION_MS) return;
      if (written.size >= 4096) written.clear();
      written.set(key, { at: ms, source });
      try {
        await db.run(
          `INSERT INTO collateral_platforms (platform_key, tee, fmspc, cpusvn, pcesvn, tee_tcb_svn, source, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (platform_key) DO UPDATE SET last_seen = excluded.last_seen, source = excluded.source`,
          [key, p.tee, fmspc, cpusvn, p.pcesvn, tee, source, at.getTime(), at.getTime()],
        );
      } catch (e) {
        written.delete(key);
        throw e;
      }
    },
    async platforms(seenSince) {
      const rows = await db.all<{ tee: string; fmspc: string; cpusvn: string; pcesvn: number; tee_tcb_svn: string | null; last_seen: number | string }>(
        'SELECT tee, fmspc, cpusvn, pcesvn, tee_tcb_svn, last_seen FROM collateral_platforms WHERE last_seen >= ? ORDER BY fmspc, cpusvn',
        [seenSince.getTime()],
      );
      return rows.map((r) => ({ tee: r.tee as 'sgx' | 'tdx', fmspc: r.fmspc, cpusvn: r.cpusvn, pcesvn: Number(r.pcesvn), teeTcbSvn: r.tee_tcb_svn ?? undefined, lastSeen: new Date(Number(r.last_seen)) }));
    },
    async registerPlatform(r, at, state = 'new') {
      await db.run(
        `INSERT INTO collateral_registrations (qe_id, pce_id, cpu_svn, pce_svn, enc_ppid, platform_manifest, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (qe_id, pce_id) DO UPDATE SET cpu_svn = excluded.cpu_svn, pce_svn = excluded.pce_svn, enc_ppid = excluded.enc_ppid, platform_manifest = excluded.platform_manifest, state = excluded.state`,
        [r.qeId, r.pceId, r.cpuSvn ?? null, r.pceSvn ?? null, r.encPpid ?? null, r.platformManifest ?? null, state, at.getTime()],
      );
    },
    async registrations(state) {
      const rows = await db.all<RegistrationRow>(
        state === undefined ? 'SELECT * FROM collateral_registrations ORDER BY created_at' : 'SELECT * FROM collateral_registrations WHERE state = ? ORDER BY created_at',
        state === undefined ? [] : [state],
      );
      return rows.map(toRegistration);
    },
    async registration(qeId, pceId) {
      const row = await db.get<RegistrationRow>('SELECT * FROM collateral_registrations WHERE qe_id = ? AND pce_id = ?', [qeId, pceId]);
      return row ? toRegistration(row) : undefined;
    },
    takeRegistrations(state, next) {
      // One transaction: two administrators (or replicas) draining the queue never both get a platform.
      return db.transaction(async (tx) => {
        const rows = await tx.all<RegistrationRow>('SELECT * FROM collateral_registrations WHERE state = ? ORDER BY created_at', [state]);
        await tx.run('UPDATE collateral_registrations SET state = ? WHERE state = ?', [next, state]);
        return rows.map(toRegistration);
      });
    },
    async setRegistrationState(qeId, pceId, state) {
      await db.run('UPDATE collateral_registrations SET state = ? WHERE qe_id = ? AND pce_id = ?', [state, qeId, pceId]);
    },
    withFetchLock(name, fn) {
      if (db.dialect !== 'postgres') return fn();
      return db.transaction(async (tx) => {
        await tx.lock(name);
        return fn();
      });
    },
  };
}
