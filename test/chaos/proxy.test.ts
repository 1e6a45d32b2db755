/**
 * Proves the link proxy breaks exactly one direction of one link the way the nemesis asks: `cut`
 * resets old and new connections, `drop` swallows bytes silently (and resets the holed streams on
 * heal), `delay` holds bytes for at least the delay without reordering them, and the reverse link
 * (a separate proxy) is untouched by any of it.
 */
import { createServer, type Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { LinkProxy } from './proxy.js';

/** A TCP echo server that also counts what it received. */
interface Echo {
  server: Server;
  port: number;
  receivedBytes: number;
  connections: number;
}

async function startEcho(): Promise<Echo> {
  const echo: Echo = { server: createServer(), port: 0, receivedBytes: 0, connections: 0 };
  echo.server.on('connection', (socket) => {
    echo.connections++;
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      echo.receivedBytes += chunk.length;
      socket.write(chunk);
    });
  });
  await new Promise<void>((resolve) => echo.server.listen(0, '127.0.0.1', resolve));
  const address = echo.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  echo.port = address.port;
  return echo;
}

/** A client socket that records what it receives and how it ended. */
interface Probe {
  socket: Socket;
  received: Buffer[];
  ended: 'open' | 'closed' | 'error';
}

async function dial(port: number): Promise<Probe> {
  const socket = new Socket();
  const probe: Probe = { socket, received: [], ended: 'open' };
  socket.on('data', (chunk) => probe.received.push(chunk));
  socket.on('error', () => {
    probe.ended = 'error';
  });
  socket.on('close', () => {
    if (probe.ended === 'open') probe.ended = 'closed';
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
    socket.connect(port, '127.0.0.1');
  });
  return probe;
}

const text = (probe: Probe) => Buffer.concat(probe.received).toString();

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(): Promise<{ echo: Echo; proxy: LinkProxy }> {
  const echo = await startEcho();
  cleanups.push(() => new Promise<void>((resolve) => echo.server.close(() => resolve())));
  const proxy = await LinkProxy.start({ targetPort: echo.port, name: 'a->b' });
  cleanups.push(() => proxy.close());
  return { echo, proxy };
}

async function track(probe: Promise<Probe>): Promise<Probe> {
  const p = await probe;
  cleanups.push(() => {
    p.socket.destroy();
  });
  return p;
}

describe('LinkProxy', () => {
  it('passes bytes both ways when healthy', async () => {
    const { proxy } = await setup();
    const probe = await track(dial(proxy.port));
    probe.socket.write('hello');
    await waitFor(() => text(probe) === 'hello', { what: 'echo through the proxy' });
    expect(proxy.stats().forwardedBytes).toBe(10);
  });

  it('cut resets open connections and every new one until healed', async () => {
    const { echo, proxy } = await setup();
    const before = await track(dial(proxy.port));
    before.socket.write('x');
    await waitFor(() => text(before) === 'x', { what: 'first echo' });

    proxy.cut();
    await waitFor(() => before.ended !== 'open', { what: 'the open connection to be reset' });
    expect(before.ended).toBe('error');

    // A new connection is reset at once (before or just after the client sees it connected).
    const during = await dial(proxy.port).then(
      (probe) =>
        waitFor(() => probe.ended !== 'open' && probe.ended, { what: 'a new connection to be reset' }),
      (error: NodeJS.ErrnoException) => error.code,
    );
    expect(['ECONNRESET', 'error', 'closed']).toContain(during);
    expect(echo.connections).toBe(1);

    proxy.heal();
    const after = await track(dial(proxy.port));
    after.socket.write('back');
    await waitFor(() => text(after) === 'back', { what: 'echo after heal' });
  });

  it('drop swallows bytes in silence, then resets the holed connections on heal', async () => {
    const { echo, proxy } = await setup();
    const open = await track(dial(proxy.port));
    open.socket.write('a');
    await waitFor(() => text(open) === 'a', { what: 'first echo' });

    proxy.drop();
    open.socket.write('lost');
    const fresh = await track(dial(proxy.port));
    fresh.socket.write('never');
    await waitFor(() => proxy.stats().droppedBytes === 'lost'.length + 'never'.length, {
      what: 'both writes to reach the proxy',
    });
    // The bytes were swallowed where they arrived: nothing was forwarded, both sockets are still open.
    expect(proxy.stats().forwardedBytes).toBe(2);
    expect(echo.receivedBytes).toBe(1);
    expect(echo.connections).toBe(1);
    expect([open.ended, fresh.ended]).toEqual(['open', 'open']);

    proxy.heal();
    await waitFor(() => open.ended !== 'open' && fresh.ended !== 'open', {
      what: 'the holed connections to be reset on heal',
    });
    expect(text(open)).toBe('a');
    const after = await track(dial(proxy.port));
    after.socket.write('ok');
    await waitFor(() => text(after) === 'ok', { what: 'echo after heal' });
  });

  it('delay holds every chunk at least the delay and keeps them in order under jitter', async () => {
    const { proxy } = await setup();
    const probe = await track(dial(proxy.port));
    proxy.delay(150, 0);
    const sentAtMs = performance.now();
    probe.socket.write('ping');
    await waitFor(() => text(probe) === 'ping', { what: 'delayed echo' });
    // One delay on the way in and one on the way back (timers may round down by a millisecond).
    expect(performance.now() - sentAtMs).toBeGreaterThanOrEqual(2 * 150 - 2);

    proxy.delay(5, 40);
    probe.received.length = 0;
    const expected = Array.from({ length: 200 }, (_, i) => `<${i}>`).join('');
    for (let i = 0; i < 200; i++) {
      probe.socket.write(`<${i}>`);
      if (i % 20 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await waitFor(() => text(probe).length === expected.length, { what: 'every jittered chunk' });
    expect(text(probe)).toBe(expected);
  });

  it('breaking one direction leaves the reverse link alone', async () => {
    const { echo, proxy: aToB } = await setup();
    const bToA = await LinkProxy.start({ targetPort: echo.port, name: 'b->a' });
    cleanups.push(() => bToA.close());
    const forward = await track(dial(aToB.port));
    const reverse = await track(dial(bToA.port));

    aToB.cut();
    await waitFor(() => forward.ended !== 'open', { what: 'a->b to be reset' });
    reverse.socket.write('still here');
    await waitFor(() => text(reverse) === 'still here', { what: 'b->a to keep working' });
    expect(reverse.ended).toBe('open');
    expect(bToA.currentMode).toBe('pass');
  });

  it('close resets every connection and frees the port', async () => {
    const echo = await startEcho();
    cleanups.push(() => new Promise<void>((resolve) => echo.server.close(() => resolve())));
    const proxy = await LinkProxy.start({ targetPort: echo.port });
    const probe = await track(dial(proxy.port));
    probe.socket.write('x');
    await waitFor(() => text(probe) === 'x', { what: 'echo' });
    await proxy.close();
    await waitFor(() => probe.ended !== 'open', { what: 'the connection to be reset by close' });
    const again = createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(proxy.port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => again.close(() => resolve()));
  });
});
