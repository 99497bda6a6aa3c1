import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP load balancer for replicas on loopback: TLS passes through, connections go round robin to
 * `targets` (filled in once the replicas listen). Its address is the replicas' `--public-url`, i.e. the
 * issuer of access and attestation tokens, so a replica verifying a release target fetches the
 * issuer's JWKS through it, as it would in production.
 */
export interface Balancer {
  readonly url: string;
  readonly targets: string[];
  close(): Promise<void>;
}

export async function startBalancer(): Promise<Balancer> {
  const targets: string[] = [];
  let next = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((down) => {
    const target = targets[next++ % Math.max(1, targets.length)];
    if (!target) return void down.destroy();
    const u = new URL(target);
    const up = connect(Number(u.port), u.hostname);
    down.pipe(up).pipe(down);
    for (const s of [up, down]) {
      open.add(s);
      s.once('close', () => open.delete(s));
    }
    up.on('error', () => down.destroy());
    down.on('error', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    targets,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of open) s.destroy();
      }),
  };
}
