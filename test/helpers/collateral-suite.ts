/**
 * A collateral-only test server on a PCS stand-in, for a describe block: both started before its tests
 * (the server on the given clock), `ready` handed them, both stopped after.
 */
import { after, before } from 'node:test';
import { type PcsStandin, type StandinSet, startPcsStandin } from './pcs-standin.js';
import { type TestServer, startTestServer } from './server.js';

export function collateralOnStandin(set: StandinSet, now: () => Date, ready: (up: PcsStandin, server: TestServer) => void): void {
  let up: PcsStandin | undefined;
  let server: TestServer | undefined;
  before(async () => {
    up = await startPcsStandin(set);
    server = await startTestServer({ services: 'collateral', upstreamIntel: up.url }, { now });
    ready(up, server);
  });
  after(async () => {
    await server?.stop();
    await up?.close();
  });
}
