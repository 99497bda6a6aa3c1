/**
 * The full-backup target of the vault as a directory (`--backup-dir`, default `<data-dir>/backups`): a
 * `storageResourceUri` of `file:///…` names a container directory inside it. Nothing outside the backup
 * directory is ever read or written (`..`, absolute escapes and symlinks out are refused). Folders are
 * written to a temporary name and renamed, so a backup is whole or absent; files are 0600.
 *
 * Azure Blob container URLs with a SAS token (`https://<account>.blob.core.windows.net/<container>`) are
 * refused for now: uploading to an S3/Blob-compatible server is a later step (docs/vault.md).
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fail } from '../core/errors.js';
import type { BackupTarget } from '../vault/ports.js';

const MAX_FILE_BYTES = 512 * 1024 * 1024;
/** Below Linux's PATH_MAX (4096) and NAME_MAX (255), so a longer path is the caller's 400, not ENAMETOOLONG. */
const MAX_PATH_BYTES = 1024;
const MAX_NAME_BYTES = 255;
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Whether anything (a symlink too, dangling or not) is at `path`. */
function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function realOrNothing(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

export function createDirectoryBackupTarget(rootDir: string): BackupTarget {
  const root = resolve(rootDir);

  function realRoot(): string {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    return realpathSync(root);
  }

  /**
   * The directory a URI names. For a backup it must lie inside the backup directory; for a restore only
   * the folder must (the SDKs split a folder URL at its first path segment, so the "container" they send
   * back is that segment: `file:///tmp` for `file:///tmp/backups/mhsm-…`).
   */
  function container(uri: string, mustBeInside: boolean): string {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw fail('request.invalid', `storageResourceUri ${JSON.stringify(uri)} is not a URL`, { field: 'storageResourceUri' });
    }
    if (url.protocol === 'https:' || url.protocol === 'http:') {
      throw fail('request.invalid', `Backups to blob storage (${url.host}) are not offered yet: give file:///… inside the backup directory ${root} (docs/vault.md)`, { field: 'storageResourceUri' });
    }
    if (url.protocol !== 'file:' || (url.host !== '' && url.host !== 'localhost')) throw fail('request.invalid', 'storageResourceUri must be a file:/// URL inside the backup directory', { field: 'storageResourceUri' });
    let path: string;
    try {
      path = resolve(fileURLToPath(url));
    } catch {
      // An encoded `/` (%2F) or another path the platform cannot name.
      throw fail('request.invalid', `storageResourceUri ${uri} does not name a directory path`, { field: 'storageResourceUri' });
    }
    // Refused here rather than left to the file system, whose errors for these are not a caller's 4xx.
    if (path.includes('\0') || Buffer.byteLength(path) > MAX_PATH_BYTES || path.split(sep).some((s) => Buffer.byteLength(s) > MAX_NAME_BYTES)) {
      throw fail('request.invalid', `storageResourceUri must be a path of at most ${MAX_PATH_BYTES} bytes, names of at most ${MAX_NAME_BYTES}, without NUL`, { field: 'storageResourceUri' });
    }
    if (mustBeInside && !inside(root, path)) throw fail('request.invalid', `storageResourceUri ${uri} is outside the backup directory ${root}`, { field: 'storageResourceUri' });
    return path;
  }

  function checkedFolder(dir: string, folder: string): string {
    const parts = folder.split('/').filter((p) => p.length > 0);
    if (parts.length === 0 || parts.length > 8 || !parts.every((p) => SEGMENT.test(p))) throw fail('request.invalid', `folder ${JSON.stringify(folder)} is not a backup folder name`, { field: 'folder' });
    return join(dir, ...parts);
  }

  /**
   * The container directory of a backup, checked before anything is made: the deepest part of its path
   * that exists is resolved first, so a symlink in it that leads out (or dangles) is refused (a recursive
   * mkdir would follow it and create the directories outside), and it must be a directory.
   */
  function checkedContainer(containerUri: string): { base: string; dir: string } {
    const base = realRoot();
    const dir = container(containerUri, true);
    let existing = dir;
    while (!lexists(existing)) existing = dirname(existing);
    const real = realOrNothing(existing);
    if (real === undefined || !inside(base, real)) throw fail('request.invalid', `storageResourceUri ${containerUri} leads outside the backup directory`, { field: 'storageResourceUri' });
    if (!statSync(real).isDirectory()) throw fail('request.invalid', `storageResourceUri ${containerUri} is not a directory`, { field: 'storageResourceUri' });
    return { base, dir };
  }

  return {
    async checkContainer(containerUri) {
      checkedContainer(containerUri);
    },

    async writeFolder(containerUri, _token, folderName, files) {
      const { base, dir } = checkedContainer(containerUri);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (!inside(base, realpathSync(dir))) throw fail('request.invalid', `storageResourceUri ${containerUri} leads outside the backup directory`, { field: 'storageResourceUri' });
      const final = checkedFolder(dir, folderName);
      const tmp = join(dir, `.${folderName}.tmp-${randomBytes(4).toString('hex')}`);
      mkdirSync(tmp, { mode: 0o700 });
      try {
        for (const [name, bytes] of Object.entries(files)) {
          if (!SEGMENT.test(name)) throw new Error(`bad backup file name ${name}`);
          writeFileSync(join(tmp, name), bytes, { mode: 0o600, flag: 'wx' });
        }
        renameSync(tmp, final);
      } catch (e) {
        rmSync(tmp, { recursive: true, force: true });
        throw e;
      }
      return pathToFileURL(final).href;
    },

    async readFile(containerUri, _token, folder, file) {
      const base = realRoot();
      const folderPath = checkedFolder(container(containerUri, false), folder);
      if (!inside(root, folderPath)) throw fail('request.invalid', `the backup folder ${folder} is outside the backup directory ${root}`, { field: 'folder' });
      const path = join(folderPath, file);
      let real: string;
      try {
        real = realpathSync(path);
      } catch {
        throw fail('request.not_found', `No backup file ${file} in ${folder}`, { folder });
      }
      if (!inside(base, real)) throw fail('request.invalid', `${folder} leads outside the backup directory`, { field: 'folder' });
      const st = statSync(real);
      if (!st.isFile()) throw fail('request.invalid', `${file} in ${folder} is not a file`, { field: 'folder' });
      if (st.size > MAX_FILE_BYTES) throw fail('request.invalid', `the backup file in ${folder} is larger than ${MAX_FILE_BYTES} bytes`, { field: 'folder' });
      return new Uint8Array(readFileSync(real));
    },
  };
}
