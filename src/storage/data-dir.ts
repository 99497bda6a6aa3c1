import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** What the server writes at the top of its data dir; anything else there is the operator's and left alone. */
const OWN_ENTRIES = /^(master\.key|admin\.json|conclave\.db(-wal|-shm|-journal)?|tls|simulated|backups)$/;

/**
 * Makes the data dir private whatever existed before: the directory and the folders the server keeps in
 * it 0700, the files it writes there 0600 (the SQLite database and its WAL, the master key, the admin
 * credential, the TLS identity, the simulated TEE's hierarchy). Symbolic links are not followed. Run at
 * start and again once start-up has written its files; a file created in between by another process is
 * no wider than its creator's umask allows and is tightened on the next start.
 */
export function secureDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  tighten(dataDir, true);
  for (const name of readdirSync(dataDir)) {
    if (!OWN_ENTRIES.test(name)) continue;
    const p = join(dataDir, name);
    // Backups are the operator's archive: only the folder itself (its files are written 0600).
    tighten(p, name !== 'backups');
  }
}

function tighten(path: string, recurse: boolean): void {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch {
    return; // removed meanwhile
  }
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    if ((st.mode & 0o777) !== 0o700) chmod(path, 0o700);
    if (!recurse) return;
    for (const name of readdirSync(path)) tighten(join(path, name), true);
  } else if (st.isFile() && (st.mode & 0o777) !== 0o600) {
    chmod(path, 0o600);
  }
}

/**
 * A file the server cannot change (a Kubernetes Secret mounted read-only over master.key, owned by root)
 * is not one it wrote: it keeps the mode its owner gave it.
 */
function chmod(path: string, mode: number): void {
  try {
    chmodSync(path, mode);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EROFS' && code !== 'EPERM') throw e;
  }
}
