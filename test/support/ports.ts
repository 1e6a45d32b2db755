/**
 * Free TCP ports on loopback for real-process tests.
 *
 * The ports are picked below the kernel's ephemeral range (`ip_local_port_range`), not by
 * listening on port 0: a port the kernel hands out for `listen(0)` comes from that range, and
 * between our probe closing it and the server binding it, any outgoing connection on the machine
 * may take it as its local port (seen in CI: a node failed to start with EADDRINUSE). Outgoing
 * connections never use ports outside the range, so a port below it that we could bind stays free
 * unless another test picks the same one, which the random choice makes unlikely.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

/** Lowest port we use (below it sit well-known and registered services). */
const LOWEST_PORT = 10_000;
/** Where the ephemeral range starts when the kernel does not say (Linux's default). */
const DEFAULT_EPHEMERAL_LOW = 32_768;

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOWEST_PORT + 1_000 ? low : DEFAULT_EPHEMERAL_LOW;
  } catch {
    return DEFAULT_EPHEMERAL_LOW;
  }
}

/** Listens on `port` (0: any), or resolves null if it is taken. */
function tryListen(port: number): Promise<Server | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** `count` distinct free ports (held open together while choosing, so they are distinct). */
export async function freePorts(count: number): Promise<number[]> {
  const high = ephemeralLow() - 1;
  const held: Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempts = 0; ports.length < count; attempts++) {
      if (attempts > 1_000) throw new Error(`no free port found below ${high + 1} in 1,000 tries`);
      const candidate = LOWEST_PORT + Math.floor(Math.random() * (high - LOWEST_PORT + 1));
      if (ports.includes(candidate)) continue;
      const server = await tryListen(candidate);
      if (server === null) continue;
      held.push(server);
      ports.push(candidate);
    }
    return ports;
  } finally {
    await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}
