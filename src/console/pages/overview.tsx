import { CountBars, TimeBars } from '../charts.js';
import { type AuditEntry, type CollateralStatus, type DryRun, dryRunBaseline, loadAudit, loadBaseline, loadCollateral, loadOverview } from '../data.js';
import { bucketize, collateralFreshness, tcbStatusCounts } from '../model.js';
import { Badge, ErrorNote, Loading, Section, Time, useLoad } from '../ui.js';
import type { Session } from './signin.js';

const HOUR = 3_600_000;

function Releases({ audit, now }: { audit: readonly AuditEntry[]; now: Date }) {
  const releases = audit.filter((e) => e.record.operation === 'release');
  const granted = releases.filter((e) => e.record.result === 'success').length;
  const denied = releases.filter((e) => e.record.result === 'denied').length;
  const buckets = bucketize(
    releases.map((e) => ({ time: new Date(e.record.time), series: e.record.result === 'success' ? 0 : 1 })),
    now,
    HOUR,
    24,
    2,
  );
  return (
    <>
      <p>
        <strong>{granted}</strong> released, <strong>{denied}</strong> denied, {releases.length - granted - denied} failed (last {audit.length} audit records).{' '}
        <a href="#/releases">See every decision.</a>
      </p>
      <TimeBars
        title="Key releases per hour, last 24 hours"
        series={[
          { name: 'released', tone: 'ok' },
          { name: 'denied or failed', tone: 'bad' },
        ]}
        buckets={buckets}
      />
      <table>
        <caption>Recent release decisions</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Key</th>
            <th scope="col">Principal</th>
            <th scope="col">Decision</th>
          </tr>
        </thead>
        <tbody>
          {releases
            .slice(-5)
            .reverse()
            .map((e) => (
              <tr key={e.leafHash}>
                <td>
                  <Time value={e.record.time} />
                </td>
                <td>{e.record.key}</td>
                <td class="wrap">{e.record.principal}</td>
                <td>
                  <Badge tone={e.record.result === 'success' ? 'ok' : 'bad'}>{e.record.result === 'success' ? 'released' : e.record.result}</Badge>
                </td>
              </tr>
            ))}
        </tbody>
      </table>
    </>
  );
}

function Collateral({ status, now }: { status: CollateralStatus; now: Date }) {
  const f = collateralFreshness(status.items, now);
  return (
    <p>
      {f.total} items cached ({status.mode} mode): {f.stale > 0 ? <Badge tone="bad">{f.stale} stale</Badge> : <Badge tone="ok">all fresh</Badge>}
      {f.nextUpdate ? (
        <>
          {' '}
          · next update due <Time value={f.nextUpdate.toISOString()} /> ({f.nextUpdateLabel})
        </>
      ) : null}
      . <a href="#/collateral">Collateral details.</a>
    </p>
  );
}

function Fleet({ run }: { run: DryRun }) {
  const rows = tcbStatusCounts(run.platforms.map((p) => p.current));
  return rows.length ? <CountBars title="TCB status of the platforms seen in the last 90 days" rows={rows} /> : <p class="muted">No platform has attested with real evidence yet.</p>;
}

export function OverviewPage({ session }: { session: Session }) {
  const now = new Date();
  const overview = useLoad(loadOverview, []);
  const admin = session.principal.isAdmin;
  const audit = useLoad(() => (admin ? loadAudit() : Promise.resolve([])), [admin]);
  const collateral = useLoad(() => (admin && overview.data?.server.services.includes('collateral') ? loadCollateral() : Promise.resolve(undefined)), [admin, overview.data]);
  const fleet = useLoad(
    () => (admin && overview.data?.server.services.includes('collateral') ? loadBaseline().then((b) => dryRunBaseline(b.policy)) : Promise.resolve(undefined)),
    [admin, overview.data],
  );
  const o = overview.data;
  return (
    <>
      <h1>Overview</h1>
      <ErrorNote error={overview.error} what="Overview" />
      {o?.server.simulate ? (
        <div class="banner warn" role="note" aria-label="Simulated TEE warning">
          <strong>Simulated TEE trusted (--simulate).</strong> This server accepts evidence from the simulated TEE, for development only; every token it yields says{' '}
          <code>"x-conclave-simulated": true</code> and no vault without --simulate releases to it.
        </div>
      ) : null}
      {!o ? (
        overview.loading ? <Loading what="the overview" /> : null
      ) : (
        <div class="grid">
          <Section title="Services" id="services">
            <dl class="facts">
              <dt>Version</dt>
              <dd>{o.server.version}</dd>
              <dt>Public URL</dt>
              <dd>{o.server.publicUrl}</dd>
              <dt>Services</dt>
              <dd>{o.server.services.join(', ')}</dd>
              <dt>Store</dt>
              <dd>{o.server.store}</dd>
              <dt>Key protection</dt>
              <dd>{o.server.keyProtection === 'pkcs11' ? 'HSM (PKCS#11)' : 'software (master key)'}</dd>
              <dt>Trust</dt>
              <dd>{o.server.simulate ? <Badge tone="warn">simulated TEE trusted</Badge> : <Badge tone="ok">real vendor roots only</Badge>}</dd>
              <dt>Attestation policies</dt>
              <dd>{o.server.isolated ? 'isolated (signed policies only)' : 'AAD mode (unsigned policies accepted)'}</dd>
            </dl>
            <ul class="checks" aria-label="Readiness">
              {o.readiness.map((r) => (
                <li key={r.name}>
                  <Badge tone={r.ok ? 'ok' : 'bad'}>{r.ok ? 'ready' : 'failing'}</Badge> {r.name}
                </li>
              ))}
            </ul>
          </Section>
          <Section title="Attestations" id="attestations">
            <p>
              <strong>{o.attestations.totals.issued}</strong> tokens issued, <strong>{o.attestations.totals.refused}</strong> refused in the last 24 hours (this replica, since{' '}
              <Time value={o.attestations.since} />
              ). <a href="#/playground">Try evidence in the playground.</a>
            </p>
            <TimeBars
              title="Attestations per hour, last 24 hours"
              series={[
                { name: 'issued', tone: 'ok' },
                { name: 'refused', tone: 'bad' },
              ]}
              buckets={bucketize(
                o.attestations.buckets.flatMap((b) => [
                  ...Array.from({ length: b.issued }, () => ({ time: new Date(b.start), series: 0 })),
                  ...Array.from({ length: b.refused }, () => ({ time: new Date(b.start), series: 1 })),
                ]),
                now,
                HOUR,
                24,
                2,
              )}
            />
            <table>
              <caption>Recent attestations</caption>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Type</th>
                  <th scope="col">Outcome</th>
                </tr>
              </thead>
              <tbody>
                {o.attestations.recent.slice(0, 5).map((a, i) => (
                  <tr key={i}>
                    <td>
                      <Time value={a.time} />
                    </td>
                    <td>{a.type}</td>
                    <td>
                      <Badge tone={a.status < 300 ? 'ok' : 'bad'}>{a.status < 300 ? 'token issued' : `refused (${a.status})`}</Badge>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
          {o.server.services.includes('vault') ? (
            <Section title="Key releases" id="releases-summary">
              {!admin ? <p class="muted">The audit log is for the administrator.</p> : audit.data ? <Releases audit={audit.data} now={now} /> : <ErrorNote error={audit.error} what="Audit log" />}
            </Section>
          ) : null}
          {o.server.services.includes('collateral') ? (
            <Section title="Collateral" id="collateral-summary">
              {!admin ? (
                <p class="muted">Collateral administration is for the administrator.</p>
              ) : collateral.data ? (
                <Collateral status={collateral.data} now={now} />
              ) : (
                <ErrorNote error={collateral.error} what="Collateral" />
              )}
              {fleet.data ? <Fleet run={fleet.data} /> : <ErrorNote error={fleet.error} what="Fleet" />}
            </Section>
          ) : null}
        </div>
      )}
    </>
  );
}
