/**
 * HTTP of Managed HSM's full backup and restore: `POST /backup`, `PUT /restore`, `PUT /keys/{name}/restore`
 * and the checks `POST /prebackup`, `PUT /prerestore` (7.5 and later) answer 202 with the job and `Azure-AsyncOperation: {vault}/{backup|restore}/{jobId}/pending`, which the
 * official KeyVaultBackupClient polls (`GET …/pending`, 200).
 */
import type { FastifyInstance } from 'fastify';
import { jobWire } from '../../vault/full-backup.js';
import type { VaultService } from '../../vault/service.js';
import type { AkvAuth } from './access-control.js';
import type { RouteTypes, WireRoute } from '../../wire/schema.js';
import { VAULT } from '../../wire/vault.js';

export function registerBackupRoutes(app: FastifyInstance, service: VaultService, akv: AkvAuth, baseUrl: () => string): void {
  const route = (summary: string, wire: WireRoute) => ({ config: { family: 'akv' as const, wire, auth: akv }, schema: { summary, tags: ['vault backup'] } });
  const accepted = (kind: 'backup' | 'restore', job: { jobId: string }) => `${baseUrl()}/${kind}/${job.jobId}/pending`;

  app.post<RouteTypes<typeof VAULT.fullBackup>>('/backup', route('Start a full backup of the vault', VAULT.fullBackup), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    const job = await service.startFullBackup(p, v, req.body);
    return reply.status(202).header('Azure-AsyncOperation', accepted('backup', job)).send(jobWire(job));
  });
  app.post<RouteTypes<typeof VAULT.preBackup>>('/prebackup', route('Check that a full backup could be made (writes nothing)', VAULT.preBackup), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    const job = await service.startPreBackup(p, v, req.body);
    return reply.status(202).header('Azure-AsyncOperation', accepted('backup', job)).send(jobWire(job));
  });
  app.put<RouteTypes<typeof VAULT.preRestore>>('/prerestore', route('Check that a full backup could be restored (restores nothing)', VAULT.preRestore), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    const job = await service.startPreRestore(p, v, req.body);
    return reply.status(202).header('Azure-AsyncOperation', accepted('restore', job)).send(jobWire(job));
  });
  app.put<RouteTypes<typeof VAULT.fullRestore>>('/restore', route('Restore the vault from a full backup', VAULT.fullRestore), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    const job = await service.startFullRestore(p, v, req.body);
    return reply.status(202).header('Azure-AsyncOperation', accepted('restore', job)).send(jobWire(job));
  });
  app.put<RouteTypes<typeof VAULT.selectiveRestore>>('/keys/:name/restore', route('Restore one key from a full backup', VAULT.selectiveRestore), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    const job = await service.startSelectiveRestore(p, v, req.params.name, req.body);
    return reply.status(202).header('Azure-AsyncOperation', accepted('restore', job)).send(jobWire(job));
  });
  for (const kind of ['backup', 'restore'] as const) {
    app.get<RouteTypes<typeof VAULT.backupJob>>(`/${kind}/:jobId/pending`, route(`Status of a ${kind} job`, VAULT.backupJob), async (req, reply) => {
      const { p, v } = await akv(req, reply);
      return jobWire(await service.backupJob(p, v, kind, req.params.jobId));
    });
  }
}
