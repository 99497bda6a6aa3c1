/**
 * The transparency log's HTTP API (docs/audit.md) and its sequencer metrics. Heads, proofs and the log key are
 * public, as a Certificate Transparency log's are: they reveal sizes and hashes only. Entries (who did
 * what to which key) need the administrator's bearer token.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram } from 'prom-client';
import { fail } from '../../core/errors.js';
import { parseIndex } from '../../log/service.js';
import type { AppContext, LogServices } from '../context.js';
import type { RouteTypes, WireRoute } from '../../wire/schema.js';
import { LOG } from '../../wire/log.js';
import { authOnce } from '../wire-input.js';

/** Registers the log routes (served with the vault) and this replica's sequencer metrics. */
export async function logPlugin(app: FastifyInstance, ctx: AppContext, log: LogServices): Promise<void> {
  const { service } = log;
  const inclusion = new Histogram({
    name: 'conclave_log_inclusion_seconds',
    help: 'From an entry stored to its index in a signed tree head (batches sequenced by this replica)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5],
    registers: [ctx.metrics],
  });
  const batches = new Counter({ name: 'conclave_log_batches_total', help: 'Batches sequenced by this replica', registers: [ctx.metrics] });
  const treeSize = new Gauge({ name: 'conclave_log_tree_size', help: 'Size of the latest tree head this replica signed', registers: [ctx.metrics] });
  const leader = new Gauge({ name: 'conclave_log_sequencer_leader', help: '1 while this replica holds the sequencer lease', registers: [ctx.metrics] });
  log.onBatch((b) => {
    batches.inc();
    treeSize.set(b.treeSize);
    for (const ms of b.latenciesMs) inclusion.observe(ms / 1000);
  });
  log.onLeadership((held) => leader.set(held ? 1 : 0));

  const admin = authOnce(async (request: FastifyRequest): Promise<void> => {
    const p = await ctx.auth.authenticate(request.headers.authorization, Math.floor(ctx.now().getTime() / 1000));
    if (!p.isAdmin) throw fail('auth.forbidden', 'only the administrator may read log entries');
  });
  const route = (summary: string, wire: WireRoute, auth?: typeof admin) => ({ config: { family: 'conclave' as const, wire, ...(auth ? { auth } : {}) }, schema: { summary, tags: ['log'] } });

  app.get('/log/sth', route('The latest signed tree head', LOG.sth), async () => service.sth());
  app.get('/log/key', route('The log key that signs tree heads (SubjectPublicKeyInfo, PEM)', LOG.key), async () => {
    const k = await log.signer();
    return { keyId: k.keyId, alg: k.publicKey.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256', publicKey: k.publicKey.export({ type: 'spki', format: 'pem' }) };
  });
  // Queries come checked against LOG's schemas (server/wire-input.ts) and typed by them; parseIndex makes numbers.
  app.get<RouteTypes<typeof LOG.inclusion>>('/log/proof/inclusion', route('Inclusion proof of an entry by its leaf hash (RFC 9162 §2.1.3)', LOG.inclusion), async (req) =>
    service.inclusion(req.query.leaf ?? undefined, parseIndex(req.query.size, 'size')),
  );
  app.get<RouteTypes<typeof LOG.consistency>>('/log/proof/consistency', route('Consistency proof between two tree sizes (RFC 9162 §2.1.4)', LOG.consistency), async (req) =>
    service.consistency(parseIndex(req.query.from, 'from'), parseIndex(req.query.to, 'to')),
  );
  app.get<RouteTypes<typeof LOG.entries>>('/log/entries', route('Log entries start…end (inclusive; administrator)', LOG.entries, admin), async (req) => {
    await admin(req);
    return service.entries(parseIndex(req.query.start, 'start'), parseIndex(req.query.end, 'end'));
  });
  app.get<RouteTypes<typeof LOG.audit>>('/admin/vault/audit', route('Audit records: the log entries from index `from`, then those not yet sequenced (at most `limit`, 1000)', LOG.audit, admin), async (req) => {
    await admin(req);
    const from = parseIndex(req.query.from, 'from') ?? 0;
    const limit = Math.min(parseIndex(req.query.limit, 'limit') ?? 1000, 1000);
    return { value: (await log.records(from, limit)).map((r) => ({ index: r.index, leafHash: r.leafHash, record: JSON.parse(r.entry) as unknown })) };
  });
  app.get('/admin/vault/audit/verify', route('Recompute the log from its entries and check every signed head', LOG.verify, admin), async (req) => {
    await admin(req);
    return log.verify();
  });
}
