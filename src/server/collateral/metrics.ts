/** Prometheus gauges of the collateral cache: the age of each item, and the time to its signed nextUpdate. */
import { Gauge, type Registry } from 'prom-client';
import type { CollateralService } from '../../collateral/service.js';

export function registerCollateralMetrics(registry: Registry, svc: CollateralService, now: () => number): void {
  new Gauge({
    name: 'conclave_collateral_age_seconds',
    help: 'Seconds since each cached collateral item was fetched',
    labelNames: ['key', 'kind'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const i of svc.items()) this.set({ key: i.key, kind: i.kind }, (now() - i.fetchedAt) / 1000);
    },
  });
  new Gauge({
    name: 'conclave_collateral_expiry_seconds',
    help: 'Seconds until each cached item passes its signed nextUpdate (negative: past it)',
    labelNames: ['key', 'kind'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const i of svc.items()) if (i.nextUpdate !== null) this.set({ key: i.key, kind: i.kind }, (i.nextUpdate - now()) / 1000);
    },
  });

}
