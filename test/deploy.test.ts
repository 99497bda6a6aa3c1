/**
 * Static checks of deploy/ (no container runtime or cluster runs here): the Kubernetes manifests are
 * consistent with each other and with the server (readiness on /readyz over HTTPS, every Secret key they
 * mount exists, real CONCLAVE_* variables), and the container and systemd files keep their hardening.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, } from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { ROOT as root } from './helpers/root.js';

const read = (p: string) => readFileSync(join(root, p), 'utf8');
const config = read('src/config/config.ts');
const knownVariable = (name: string) => config.includes(`'${name}'`);

function manifests(file: string): any[] {
  return parseAllDocuments(read(`deploy/kubernetes/${file}`)).map((d) => {
    assert.deepEqual(d.errors, [], `${file} is valid YAML`);
    return d.toJS();
  });
}

describe('deploy/kubernetes', () => {
  const [deployment] = manifests('deployment.yaml');
  const [service] = manifests('service.yaml');
  const [secret] = manifests('secret.yaml');
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];

  test('the kustomization lists every manifest', () => {
    const [k] = parseAllDocuments(read('deploy/kubernetes/kustomization.yaml')).map((d) => d.toJS());
    assert.deepEqual([...k.resources].sort(), ['deployment.yaml', 'secret.yaml', 'service.yaml']);
  });

  test('readiness is GET /readyz over HTTPS on the serving port; liveness is /healthz', () => {
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    assert.equal(container.readinessProbe.httpGet.scheme, 'HTTPS');
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    const port = container.ports.find((p: any) => p.name === container.readinessProbe.httpGet.port);
    assert.equal(String(port.containerPort), container.env.find((e: any) => e.name === 'CONCLAVE_PORT').value);
  });

  test('non-root, read-only root file system, no privilege escalation, no capabilities', () => {
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.notEqual(pod.securityContext.runAsUser, 0);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
    assert.equal(pod.automountServiceAccountToken, false);
  });

  test('the master key, admin credential, TLS material and database URL come from the Secret, and the Secret has them', () => {
    const keys = new Set([...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})]);
    const mounted = container.volumeMounts.filter((m: any) => m.name === 'secret').map((m: any) => m.subPath);
    assert.deepEqual([...mounted].sort(), ['admin.json', 'ca.pem', 'master.key', 'server.key', 'server.pem']);
    for (const k of mounted) assert.ok(keys.has(k), `the Secret has ${k}`);
    const db = container.env.find((e: any) => e.name === 'CONCLAVE_DB');
    assert.equal(db.valueFrom.secretKeyRef.name, secret.metadata.name);
    assert.ok(keys.has(db.valueFrom.secretKeyRef.key));
    assert.equal(pod.volumes.find((v: any) => v.name === 'secret').secret.secretName, secret.metadata.name);
  });

  test('every CONCLAVE_* variable is one the server reads', () => {
    for (const e of container.env) assert.ok(knownVariable(e.name), `${e.name} is a configuration variable`);
  });

  test('the Service selects the pods and targets the serving port', () => {
    for (const [k, v] of Object.entries(service.spec.selector)) assert.equal(deployment.spec.template.metadata.labels[k], v);
    assert.ok(container.ports.some((p: any) => p.name === service.spec.ports[0].targetPort));
  });
});

describe('deploy/Containerfile', () => {
  const file = read('deploy/Containerfile');
  const runtime = file.slice(file.lastIndexOf('\nFROM '));

  test('the runtime stage runs as a non-root user, with the data volume and the conclave binary', () => {
    const user = /\nUSER (\S+)/.exec(runtime)?.[1];
    assert.ok(user && !/^(root|0)(:|$)/.test(user), `USER ${user}`);
    assert.match(runtime, /\nVOLUME \["\/var\/lib\/conclave"\]/);
    assert.match(runtime, /\nENTRYPOINT \["node", "\/app\/bin\/conclave\.js"\]/);
    assert.match(runtime, /CONCLAVE_DATA_DIR=\/var\/lib\/conclave/);
    for (const name of runtime.match(/CONCLAVE_[A-Z_]+/g) ?? []) assert.ok(knownVariable(name), name);
  });

  test('the build context filter leaves out dependencies, builds and data', () => {
    const ignore = read('deploy/Containerfile.dockerignore');
    for (const p of ['node_modules', 'dist', 'data']) assert.match(ignore, new RegExp(`^${p}$`, 'm'));
  });
});

describe('deploy/conclave.service', () => {
  const unit = read('deploy/conclave.service');
  const directive = (name: string) => [...unit.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]);

  test('an unprivileged service with its state directory and the rest of the system read-only', () => {
    assert.deepEqual(directive('DynamicUser'), ['yes']);
    assert.deepEqual(directive('StateDirectory'), ['conclave']);
    assert.deepEqual(directive('ProtectSystem'), ['strict']);
    assert.deepEqual(directive('NoNewPrivileges'), ['yes']);
    assert.deepEqual(directive('CapabilityBoundingSet'), ['']);
    assert.deepEqual(directive('PrivateTmp'), ['yes']);
    assert.match(directive('ExecStart')[0]!, /bin\/conclave\.js serve$/);
    assert.match(directive('Environment')[0]!, /CONCLAVE_DATA_DIR=\/var\/lib\/conclave/);
    for (const name of unit.match(/CONCLAVE_[A-Z_]+/g) ?? []) assert.ok(knownVariable(name), name);
  });

  test('systemd-analyze verify accepts the unit (where systemd is installed)', (t) => {
    const r = spawnSync('systemd-analyze', ['verify', join(root, 'deploy', 'conclave.service')], { encoding: 'utf8' });
    if (r.error) return t.skip('systemd-analyze is not installed');
    assert.equal(r.status, 0, r.stderr);
  });
});
