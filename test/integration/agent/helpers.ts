import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { ROOT as root, cliFromSourceArgs } from '../../helpers/root.js';
import type { TestServer } from '../../helpers/server.js';

/** Creates an exportable key whose release policy trusts this server as attestation authority. */
export async function createReleasableKey(server: TestServer, name: string, kty: 'RSA' | 'EC' | 'oct-HSM' = 'RSA'): Promise<Record<string, unknown>> {
  const policy = { version: '1.0.0', anyOf: [{ authority: server.url, allOf: [{ claim: 'x-ms-attestation-type', equals: 'sevsnpvm' }] }] };
  const body = {
    kty,
    ...(kty === 'RSA' ? { key_size: 2048 } : kty === 'EC' ? { crv: 'P-256' } : { key_size: 256 }),
    attributes: { exportable: true },
    release_policy: { contentType: 'application/json; charset=utf-8', data: Buffer.from(JSON.stringify(policy)).toString('base64url') },
  };
  const auth = { authorization: `Bearer ${await server.adminToken()}` };
  // Release needs the explicit release role, also for the administrator.
  const grant = await server.send('PUT', '/admin/vault/roleAssignments', {
    headers: auth,
    body: { principalId: server.admin.clientId, role: 'Key Vault Crypto Service Release User', scope: '/' },
  });
  if (grant.status !== 200 && grant.status !== 201) throw new Error(`role assignment: ${grant.status} ${grant.text}`);
  const r = await server.send('POST', `/keys/${name}/create?api-version=7.4`, { headers: { authorization: `Bearer ${await server.adminToken()}` }, body });
  if (r.status !== 200) throw new Error(`create key: ${r.status} ${r.text}`);
  return r.json().key as Record<string, unknown>;
}

export interface AgentProcess {
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** Runs `conclave agent … --port 0 --output json` as a child process and waits for its startup line. */
export function spawnAgent(args: string[]): Promise<AgentProcess> {
  const child = spawn(process.execPath, [...cliFromSourceArgs(), 'agent', '--port', '0', '--output', 'json', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  return new Promise((resolvePromise, reject) => {
    // An agent that never listens is killed: left running, it would keep the test process alive for ever.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agent did not start: ${err}`));
    }, 20_000);
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /"listening": "(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePromise({
          url: m[1]!,
          child,
          stop: () =>
            new Promise<void>((r) => {
              child.once('exit', () => r());
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited (${code}): ${err}`));
    });
  });
}

/** Plain-HTTP JSON POST/GET to the agent, as a container in the group would send it (curl -H 'Content-Type: application/json' -d). */
export function agentCall(url: string, method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolvePromise, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${url}${path}`, { method, headers: { ...(text ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    if (text) req.write(text);
    req.end();
  });
}

/** Runs a one-shot `conclave …` command; resolves its exit code and output. */
export function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [...cliFromSourceArgs(), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((resolvePromise) => child.once('exit', (code) => resolvePromise({ code: code ?? -1, stdout, stderr })));
}
