/**
 * A TCP proxy for one directed peer link (node i dialling node j). Chaos campaigns put one of these
 * in front of every i→j link, so the nemesis can break a link in one direction only:
 *
 * - `cut()`: open connections are reset and new ones are reset as soon as they arrive. The sender
 *   learns at once that the link is down (like a refused or reset connection).
 * - `drop()`: a black hole. Connections stay open (new ones are accepted) but no byte gets through
 *   in either direction; the sender only notices by its own timeouts. Connections that lost bytes
 *   are reset on `heal()`, as a real TCP connection would eventually time out: their streams have
 *   holes and must never be resumed.
 * - `delay(ms, jitterMs)`: every chunk is held for `ms` (plus up to `jitterMs`) before it is
 *   forwarded, in order.
 * - `heal()`: back to passing bytes straight through.
 */
import { createServer, type Server, Socket } from 'node:net';

/** How long a connection whose other side closed may linger before it is destroyed. */
const LINGER_MS = 5_000;

export type LinkMode = 'pass' | 'cut' | 'drop';

export interface LinkProxyOptions {
  /** Where the proxied connections go (node j's listen port on loopback). */
  targetPort: number;
  targetHost?: string;
  /** Port to listen on; 0 (default) picks a free one. */
  listenPort?: number;
  /** For messages: `n1->n2`. */
  name?: string;
  /** Jitter draws; defaults to Math.random (campaigns pass their seeded generator). */
  random?: () => number;
}

export interface LinkProxyStats {
  /** Connections accepted since start. */
  accepted: number;
  /** Connections open now. */
  open: number;
  /** Bytes forwarded, both directions. */
  forwardedBytes: number;
  /** Bytes swallowed by `drop`, both directions. */
  droppedBytes: number;
  /** Connections reset by `cut`, `drop`+`heal` or `close`. */
  resets: number;
}

/** One direction of one connection, delivering chunks in order after the current delay. */
class DelayedPipe {
  private readonly queue: { dueMs: number; chunk: Buffer }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private lastDueMs = 0;
  private ending = false;

  constructor(private readonly out: Socket) {}

  push(chunk: Buffer, delayMs: number): void {
    if (delayMs <= 0 && this.queue.length === 0) {
      this.out.write(chunk);
      return;
    }
    // Never schedule before an earlier chunk: the stream must stay in order when the delay shrinks.
    const dueMs = Math.max(performance.now() + delayMs, this.lastDueMs);
    this.lastDueMs = dueMs;
    this.queue.push({ dueMs, chunk });
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
  }

  /** Half-close the output once every queued chunk is written (the other side ended normally). */
  end(): void {
    this.ending = true;
    if (this.queue.length === 0) this.out.end();
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    const waitMs = Math.max(0, this.queue[0]!.dueMs - performance.now());
    this.timer = setTimeout(() => this.flushDue(), waitMs);
  }

  private flushDue(): void {
    this.timer = null;
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0]!.dueMs <= now) {
      const { chunk } = this.queue.shift()!;
      if (!this.out.destroyed) this.out.write(chunk);
    }
    if (this.ending && this.queue.length === 0) this.out.end();
    this.schedule();
  }
}

/** A proxied connection: the dialler's socket and ours to the target. */
interface Conn {
  client: Socket;
  upstream: Socket | null;
  toUpstream: DelayedPipe | null;
  toClient: DelayedPipe;
  /** Set once a byte of this connection was swallowed: it can never carry a whole stream again. */
  lostBytes: boolean;
}

export class LinkProxy {
  private mode: LinkMode = 'pass';
  private delayMs = 0;
  private jitterMs = 0;
  private readonly conns = new Set<Conn>();
  private readonly counters: LinkProxyStats = {
    accepted: 0,
    open: 0,
    forwardedBytes: 0,
    droppedBytes: 0,
    resets: 0,
  };

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly name: string,
    private readonly options: LinkProxyOptions,
  ) {}

  static async start(options: LinkProxyOptions): Promise<LinkProxy> {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listenPort ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('LinkProxy: no port');
    const name = options.name ?? `proxy:${address.port}->${options.targetPort}`;
    const proxy = new LinkProxy(server, address.port, name, options);
    server.on('connection', (socket) => proxy.accept(socket));
    return proxy;
  }

  get currentMode(): LinkMode {
    return this.mode;
  }

  get currentDelayMs(): number {
    return this.delayMs;
  }

  stats(): LinkProxyStats {
    return { ...this.counters, open: this.conns.size };
  }

  /** Reset every open connection and every new one until `heal()`. */
  cut(): void {
    this.mode = 'cut';
    for (const conn of [...this.conns]) this.reset(conn);
  }

  /** Swallow every byte in both directions until `heal()`; connections stay open meanwhile. */
  drop(): void {
    this.mode = 'drop';
  }

  /** Hold every chunk for `delayMs` (+ up to `jitterMs`) before forwarding it. */
  delay(delayMs: number, jitterMs = 0): void {
    if (delayMs < 0 || jitterMs < 0) throw new Error(`${this.name}: negative delay ${delayMs}/${jitterMs}`);
    this.delayMs = delayMs;
    this.jitterMs = jitterMs;
  }

  /** Pass bytes straight through again; connections that lost bytes while dropped are reset. */
  heal(): void {
    this.mode = 'pass';
    this.delayMs = 0;
    this.jitterMs = 0;
    for (const conn of [...this.conns]) if (conn.lostBytes) this.reset(conn);
  }

  /** Stop listening and reset every connection. */
  async close(): Promise<void> {
    for (const conn of [...this.conns]) this.reset(conn);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.counters.accepted++;
    client.setNoDelay(true);
    client.on('error', () => {});
    if (this.mode === 'cut') {
      this.counters.resets++;
      client.resetAndDestroy();
      return;
    }
    const conn: Conn = {
      client,
      upstream: null,
      toUpstream: null,
      toClient: new DelayedPipe(client),
      lostBytes: false,
    };
    this.conns.add(conn);
    client.on('end', () => conn.toUpstream?.end());
    client.on('close', () => this.discard(conn));
    client.on('data', (chunk: Buffer) => this.forward(conn, chunk, 'up'));
    // A connection accepted into a black hole never reaches the target (as a SYN lost on the way).
    if (this.mode === 'drop') {
      conn.lostBytes = true;
      return;
    }
    this.connectUpstream(conn);
  }

  private connectUpstream(conn: Conn): void {
    const upstream = new Socket();
    upstream.setNoDelay(true);
    upstream.on('error', () => {});
    upstream.on('end', () => conn.toClient.end());
    upstream.on('close', () => this.discard(conn));
    upstream.on('data', (chunk: Buffer) => this.forward(conn, chunk, 'down'));
    conn.upstream = upstream;
    conn.toUpstream = new DelayedPipe(upstream);
    upstream.connect(this.options.targetPort, this.options.targetHost ?? '127.0.0.1');
  }

  private forward(conn: Conn, chunk: Buffer, direction: 'up' | 'down'): void {
    const pipe = direction === 'up' ? conn.toUpstream : conn.toClient;
    if (this.mode !== 'pass' || !pipe) {
      conn.lostBytes = true;
      this.counters.droppedBytes += chunk.length;
      return;
    }
    this.counters.forwardedBytes += chunk.length;
    const random = this.options.random ?? Math.random;
    const jitter = this.jitterMs > 0 ? Math.floor(random() * this.jitterMs) : 0;
    pipe.push(chunk, this.delayMs + jitter);
  }

  /** Our own doing: both sides get an RST, queued bytes are thrown away. */
  private reset(conn: Conn): void {
    if (!this.conns.has(conn)) return;
    this.counters.resets++;
    conn.toClient.stop();
    conn.toUpstream?.stop();
    if (!conn.client.destroyed) conn.client.resetAndDestroy();
    if (conn.upstream && !conn.upstream.destroyed) conn.upstream.resetAndDestroy();
    this.conns.delete(conn);
  }

  /**
   * One side closed by itself: the other side gets its queued bytes and then a FIN (half-close,
   * see the 'end' handlers), and is destroyed if it lingers.
   */
  private discard(conn: Conn): void {
    if (!this.conns.delete(conn)) return;
    conn.toClient.end();
    conn.toUpstream?.end();
    const linger = setTimeout(() => {
      conn.client.destroy();
      conn.upstream?.destroy();
    }, LINGER_MS);
    linger.unref();
  }
}
