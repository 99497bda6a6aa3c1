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
import type { WireRoute } from '../../wire/schema.js';
import { LOG } from '../../wire/log.js';
import { authOnce } from '../wire-input.js';

function query(request: FastifyRequest): URLSearchParams {
  const i = request.url.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : request.url.slice(i + 1));
}

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
  app.get('/log/proof/inclusion', route('Inclusion proof of an entry by its leaf hash (RFC 9162 §2.1.3)', LOG.inclusion), async (req) => {
    const q = query(req);
    return service.inclusion(q.get('leaf') ?? undefined, parseIndex(q.get('size'), 'size'));
  });
  app.get('/log/proof/consistency', route('Consistency proof between two tree sizes (RFC 9162 §2.1.4)', LOG.consistency), async (req) => {
    const q = query(req);
    return service.consistency(parseIndex(q.get('from'), 'from'), parseIndex(q.get('to'), 'to'));
  });
  app.get('/log/entries', route('Log entries start…end (inclusive; administrator)', LOG.entries, admin), async (req) => {
    await admin(req);
    const q = query(req);
    return service.entries(parseIndex(q.get('start'), 'start'), parseIndex(q.get('end'), 'end'));
  });
  app.get('/admin/vault/audit', route('Audit records: the log entries from index `from`, then those not yet sequenced (at most `limit`, 1000)', LOG.audit, admin), async (req) => {
    await admin(req);
    const q = query(req);
    const from = parseIndex(q.get('from'), 'from') ?? 0;
    const limit = Math.min(parseIndex(q.get('limit'), 'limit') ?? 1000, 1000);
    return { value: (await log.records(from, limit)).map((r) => ({ index: r.index, leafHash: r.leafHash, record: JSON.parse(r.entry) as unknown })) };
  });
  app.get('/admin/vault/audit/verify', route('Recompute the log from its entries and check every signed head', LOG.verify, admin), async (req) => {
    await admin(req);
    return log.verify();
  });
}
