import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';

/** The absolute path of an executable (a path is checked as given, a bare name searched in PATH). */
export async function findExecutable(name: string): Promise<string | undefined> {
  const candidates = name.includes('/') || isAbsolute(name) ? [name] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Runs a program without a shell; resolves stdout bytes, rejects with stderr in the message. */
export function runProgram(file: string, args: readonly string[], timeoutMs = 30_000): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'buffer', timeout: timeoutMs, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const msg = Buffer.from(stderr ?? '').toString('utf8').trim();
        reject(new Error(`${file} ${args.join(' ')}: ${msg || err.message}`));
        return;
      }
      resolve(new Uint8Array(stdout));
    });
  });
}
