/**
 * `conclave console --open` against a hostile server: the link it prints and hands to the desktop's
 * opener (xdg-open, open, `cmd /c start`) comes from the server's answer. Only a console sign-in link
 * (http(s), /console/#code=<43 base64url>) may be printed or opened: another scheme would open a local
 * file or application, and shell metacharacters (`&`, `|`, `^`) are commands to `cmd /c start` on
 * Windows. A fake `xdg-open` first on PATH records what the CLI opens.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadOrCreateTls } from '../../../src/server/tls.js';
import { conclave } from '../../helpers/cli.js';
import { requireConsoleBuild } from '../../helpers/console.js';
import { tempDir } from '../../helpers/server.js';

describe('conclave console --open: only a console sign-in link leaves the CLI', () => {
  const dir = tempDir();
  const bin = join(dir, 'bin');
  let server: Server;
  let url = '';
  let caPath = '';
  let answer = '';
  let expires: unknown;

  before(async () => {
    requireConsoleBuild();
    const tls = await loadOrCreateTls(join(dir, 'data'), '127.0.0.1');
    caPath = tls.caPath;
    server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      req.resume();
      res.setHeader('content-type', 'application/json');
      if (req.url === '/oauth2/token') res.end(JSON.stringify({ access_token: 'hostile', token_type: 'Bearer', expires_in: 3600 }));
      else if (req.url === '/console/api/sign-in-codes') {
        res.statusCode = 201;
        res.end(JSON.stringify({ url: answer, expiresAt: expires ?? new Date(Date.now() + 300_000).toISOString() }));
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    mkdirSync(bin, { recursive: true });
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  /** Runs `conclave console --open` with the server answering `link`; what the fake opener was given, if anything. */
  const run = async (name: string, link: string) => {
    answer = link;
    const record = join(dir, `opened-${name}`);
    writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > '${record}'\n`);
    chmodSync(join(bin, 'xdg-open'), 0o755);
    const r = await conclave(['console', '--url', url, '--client-id', 'c', '--client-secret', 's', '--ca', caPath, '--open'], { binary: true, env: { PATH: `${bin}:${process.env.PATH}` } });
    // The opener runs detached: give it time to write.
    for (let i = 0; i < 20 && !existsSync(record); i++) await new Promise((res) => setTimeout(res, 50));
    return { r, opened: existsSync(record) ? readFileSync(record, 'utf8') : undefined };
  };

  const code = 'A'.repeat(43);

  test('a link with another scheme, or with shell metacharacters after the code, is refused (exit 2): neither printed nor opened', async () => {
    const hostile: [string, string][] = [
      ['file', 'file:///etc/passwd'],
      ['scheme', `x-hostile-app://127.0.0.1/console/#code=${code}`],
      ['cmd', `${url}/console/#code=${code}&calc.exe`],
      ['path', `${url}/elsewhere/#code=${code}`],
    ];
    for (const [name, link] of hostile) {
      const { r, opened } = await run(name, link);
      assert.equal(opened, undefined, `${name}: the CLI opened ${opened}`);
      assert.equal(r.code, 2, `${name}: exit ${r.code}, stdout ${r.stdout}, stderr ${r.stderr}`);
      assert.ok(!r.stdout.includes(link), `${name}: printed`);
      assert.match(r.stderr, /not a console sign-in link/, name);
    }
  });

  test('metacharacters, userinfo, whitespace or another host form in the host or the prefix are refused too (cmd /c start reads & | ^ < > % in any part of the link)', async () => {
    const hostile: [string, string][] = [
      ['host-amp', `https://127.0.0.1&calc.exe/console/#code=${code}`],
      ['host-pipe', `https://127.0.0.1|calc/console/#code=${code}`],
      ['host-caret', `https://127.0.0.1^&calc/console/#code=${code}`],
      ['userinfo', `https://evil.example@127.0.0.1/console/#code=${code}`],
      ['backslash', `https://127.0.0.1\\evil.example/console/#code=${code}`],
      ['idna', `https://ex\u0430mple.com/console/#code=${code}`],
      ['prefix-amp', `${url}/a&calc.exe/console/#code=${code}`],
      ['prefix-percent', `${url}/%COMSPEC%/console/#code=${code}`],
      ['prefix-escape', `${url}/%26calc/console/#code=${code}`],
      ['prefix-redirect', `${url}/a>out.txt/console/#code=${code}`],
      ['prefix-quote', `${url}/a"b/console/#code=${code}`],
      ['prefix-space', `${url}/a b/console/#code=${code}`],
      ['newline', `${url}/console/#code=${code}\n`],
      ['javascript', `javascript:alert(1)//${url}/console/#code=${code}`],
      ['long-code', `${url}/console/#code=${code}A`],
    ];
    for (const [name, link] of hostile) {
      const { r, opened } = await run(name, link);
      assert.equal(opened, undefined, `${name}: the CLI opened ${opened}`);
      assert.equal(r.code, 2, `${name}: exit ${r.code}, stdout ${r.stdout}, stderr ${r.stderr}`);
      assert.equal(r.stdout, '', `${name}: printed`);
    }
  });

  test('an expiry that is not a time (terminal escapes: OSC 52 sets the clipboard, CSI rewrites the printed link) is refused (exit 2): nothing printed raw, nothing opened', async () => {
    const escapes = ['\u001b]52;c;Y2FsYy5leGU=\u0007', '\u001b[1A\u001b[2Khttps://evil.example/console/', '2030-01-01T00:00:00.000Z\r\u001b[2K', { toString: 1 }];
    try {
      for (const [i, e] of escapes.entries()) {
        expires = e;
        const { r, opened } = await run(`expiry-${i}`, `${url}/console/#code=${code}`);
        assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(r.stderr.replace(/\n/g, '')), `expiry ${i}: a control character reached the terminal: ${JSON.stringify(r.stderr)}`);
        assert.equal(r.code, 2, `expiry ${i}: exit ${r.code}, stderr ${JSON.stringify(r.stderr)}`);
        assert.equal(opened, undefined, `expiry ${i}: opened`);
        assert.equal(r.stdout, '', `expiry ${i}: printed`);
      }
    } finally {
      expires = undefined;
    }
    // A refused link is quoted in the error in printable ASCII: no C1 control (U+009B is CSI) either.
    const { r } = await run('c1', `${url}/console/#code=${code}\u009b2J`);
    assert.equal(r.code, 2);
    assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(r.stderr), `a control character reached the terminal: ${JSON.stringify(r.stderr)}`);
  });

  test('control: a console behind a path prefix (a reverse proxy) is printed and opened', async () => {
    const link = `${url}/tenant-1/conclave.v2/console/#code=${code}`;
    const { r, opened } = await run('prefix-ok', link);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), link);
    assert.equal(opened, link);
  });

  test('control: a console sign-in link is printed and opened', async () => {
    const link = `${url}/console/#code=${code}`;
    const { r, opened } = await run('ok', link);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), link);
    assert.equal(opened, link);
  });
});
