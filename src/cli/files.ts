import { closeSync, constants, fstatSync, ftruncateSync, fchmodSync, lstatSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { CliError } from './output.js';

/**
 * Files the CLI writes (credentials, key backups, private keys, bundles) are the user's alone: created
 * 0600, and never written through a symbolic link (O_NOFOLLOW), so a link planted in a shared directory
 * cannot redirect a secret. An existing regular file is truncated and its mode set to 0600.
 */
export function writePrivateFile(path: string, data: string | Uint8Array): void {
  const fd = openPrivate(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW);
  try {
    if (!fstatSync(fd).isFile()) throw new CliError(`${path} is not a regular file`, 'name a new file', 1);
    fchmodSync(fd, 0o600);
    ftruncateSync(fd, 0);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let at = 0; at < bytes.byteLength; ) at += writeSync(fd, bytes, at);
  } finally {
    closeSync(fd);
  }
}

/**
 * A file created anew (O_EXCL): an existing regular file is removed first (never a directory); a
 * symbolic link at `path` is removed as a link, never followed. For per-start secrets (the agent token).
 */
export function replacePrivateFile(path: string, data: string): void {
  try {
    const st = lstatSync(path);
    if (st.isDirectory()) throw new CliError(`${path} is a directory`, 'name a file', 1);
    unlinkSync(path);
  } catch (e) {
    if (e instanceof CliError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(`cannot replace ${path}: ${(e as NodeJS.ErrnoException).code}`, undefined, 1);
  }
  const fd = openPrivate(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW);
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

function openPrivate(path: string, flags: number): number {
  try {
    return openSync(path, flags, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new CliError(`${path} is a symbolic link: refusing to write through it`, 'name a regular file', 1);
    throw new CliError(`cannot write ${path}: ${code ?? String(e)}`, undefined, 1);
  }
}
