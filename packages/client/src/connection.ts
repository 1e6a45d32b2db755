/**
 * One WebSocket session with one broker node: the hello/welcome handshake, request ids, matching
 * replies to requests, and handing pushes (deliveries, goingAway, subscriptionEnded) up. It knows
 * nothing about leaders or retries; the client decides which connection to use and what to do
 * when a request fails. When the socket closes, every request still outstanding fails with
 * CONNECTION_LOST (its outcome is unknown).
 *
 * Liveness: a node that stops without closing its sockets (a paused process, a vanished host, a
 * half-open TCP connection) would hold requests until their deadlines. So once the node has been
 * silent for `heartbeatIntervalMs`, the connection sends a probe (the cheap, local `cluster` op;
 * browsers have no ping API), and if nothing at all arrives within `heartbeatTimeoutMs` after it,
 * the connection closes itself with CONNECTION_LOST (`details.unresponsive`). A connection that
 * hears frames never probes; an idle one sends one small request per interval.
 */

import {
  decodeServerFrame,
  encodeRequest,
  FlotillaError,
  type OpName,
  PROTOCOL_VERSION,
  type Push,
  type RequestParams,
  type ResultMap,
  type ServerLimitsInfo,
  type Welcome,
  welcomeLimits,
} from '@flotilla/shared';
import { openWebSocket, type Socket, type WebSocketFactory } from './transport.js';
import { afterTurn, deferred } from './util.js';

/** Request ids run 1..2^32-1 and wrap around, skipping ids still outstanding. */
const MAX_REQUEST_ID = 0xffff_ffff;
const CLOSE_NORMAL = 1000;

/** What a connection reports to its owner. */
export interface ConnectionEvents {
  /** A push frame (deliver, goingAway, subscriptionEnded). */
  onPush(connection: Connection, push: Push): void;
  /** The socket closed; `error` is the CONNECTION_LOST that outstanding requests received. */
  onClose(connection: Connection, error: FlotillaError): void;
  /** Something went wrong that no request can report (an unreadable frame from the server). */
  onError(connection: Connection, error: FlotillaError): void;
}

export interface ConnectionOptions {
  url: string;
  token?: string | undefined;
  name?: string | undefined;
  webSocket: WebSocketFactory;
  /** How long the socket open plus hello may take, in ms. */
  helloTimeoutMs: number;
  /** Sequence number of this connection among the client's connections (1, 2, ...). */
  epoch: number;
  /** Silence from the node, in ms, after which a probe is sent. */
  heartbeatIntervalMs: number;
  /** How long after a probe, in ms, silence means the node is gone. */
  heartbeatTimeoutMs: number;
}

interface PendingRequest {
  op: OpName;
  resolve(result: unknown): void;
  reject(error: FlotillaError): void;
  /** Runs synchronously when the result arrives, before any later frame is handled. */
  onResult?: ((result: unknown) => void) | undefined;
}

/** A request in flight: its result, and a way to forget it (the late reply is then ignored). */
export interface RequestHandle<T> {
  promise: Promise<T>;
  cancel(): void;
}

/** One open, welcomed session with a node. Create with `Connection.open`. */
export class Connection {
  /** The node's answer to hello: its id, the leader it knows, its limits. */
  welcome!: Welcome;
  private socket!: Socket;
  private readonly pending = new Map<number, PendingRequest>();
  private lastId = 0;
  private closedError: FlotillaError | null = null;
  private retiring = false;
  /** Set when open() gave up: a socket that opens later is closed at once. */
  private abandoned = false;
  /** When a frame last arrived from the node (ms, monotonic clock). */
  private lastHeardMs = 0;
  private watchdog: ReturnType<typeof setTimeout> | null = null;
  /** The last liveness probe (to forget it when the connection retires), and when it went out while unanswered. */
  private probe: RequestHandle<unknown> | null = null;
  private probeSentMs: number | null = null;

  private constructor(
    readonly url: string,
    readonly epoch: number,
    private readonly events: ConnectionEvents,
  ) {}

  /**
   * Opens a socket to `options.url`, sends hello and waits for the welcome. Rejects with the
   * server's error (UNAUTHORIZED, UNSUPPORTED_VERSION...), CONNECTION_LOST, or TIMEOUT.
   */
  static async open(options: ConnectionOptions, events: ConnectionEvents): Promise<Connection> {
    const connection = new Connection(options.url, options.epoch, events);
    const timedOut = deferred<never>();
    const timer = setTimeout(() => {
      timedOut.reject(
        new FlotillaError('TIMEOUT', `no welcome from ${options.url} within ${options.helloTimeoutMs} ms`, {
          url: options.url,
        }),
      );
    }, options.helloTimeoutMs);
    timedOut.promise.catch(() => {});
    try {
      await Promise.race([connection.handshake(options), timedOut.promise]);
      connection.watch(options.heartbeatIntervalMs, options.heartbeatTimeoutMs);
      return connection;
    } catch (error) {
      connection.abandoned = true;
      connection.socket?.close(CLOSE_NORMAL, 'handshake failed');
      connection.failPending(error as FlotillaError);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private async handshake(options: ConnectionOptions): Promise<void> {
    this.socket = await openWebSocket(options.webSocket, options.url, {
      onFrame: (frame) => this.handleFrame(frame),
      onClose: (code, reason) => this.handleClose(code, reason),
    });
    if (this.abandoned) {
      this.socket.close(CLOSE_NORMAL, 'handshake timed out');
      return;
    }
    const welcome = await this.request('hello', {
      version: PROTOCOL_VERSION,
      token: options.token ?? null,
      name: options.name ?? null,
    }).promise;
    // Servers may omit or add limits; what they omit keeps the protocol default.
    this.welcome = { ...welcome, limits: { ...welcomeLimits(), ...welcome.limits } };
  }

  /** The node this connection talks to. */
  get nodeId(): string {
    return this.welcome.nodeId;
  }

  /** The limits the node announced (protocol defaults for those it did not). */
  get limits(): ServerLimitsInfo {
    return this.welcome.limits;
  }

  /** Whether the socket has closed. */
  get isClosed(): boolean {
    return this.closedError !== null;
  }

  /** Requests sent and not yet answered. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Sends one request. The promise settles with the result or a FlotillaError: the server's
   * error, FRAME_TOO_LARGE or INVALID_ARGUMENT found before sending, or CONNECTION_LOST.
   */
  request<K extends OpName>(
    op: K,
    params: RequestParams[K],
    onResult?: (result: ResultMap[K]) => void,
  ): RequestHandle<ResultMap[K]> {
    if (this.closedError !== null) return rejected(this.closedError);
    const id = this.nextId();
    let frame: Uint8Array;
    try {
      frame = encodeRequest(id, op, params);
    } catch (cause) {
      return rejected(
        new FlotillaError('INVALID_ARGUMENT', `cannot encode ${op}: ${String(cause)}`, {}, { cause }),
      );
    }
    const maxFrameBytes = this.welcome?.limits.maxFrameBytes;
    if (maxFrameBytes !== undefined && frame.byteLength > maxFrameBytes) {
      return rejected(
        new FlotillaError(
          'FRAME_TOO_LARGE',
          `${op} frame of ${frame.byteLength} bytes exceeds ${maxFrameBytes}`,
          {
            frameBytes: frame.byteLength,
            maxFrameBytes,
          },
        ),
      );
    }
    const result = deferred<ResultMap[K]>();
    this.pending.set(id, {
      op,
      resolve: result.resolve as (value: unknown) => void,
      reject: result.reject,
      onResult: onResult as ((value: unknown) => void) | undefined,
    });
    this.socket.send(frame);
    return { promise: result.promise, cancel: () => this.forget(id) };
  }

  /**
   * Stops using this connection: it closes as soon as no request is outstanding. Used when the
   * client moves to another node while answers (usually NOT_LEADER) are still on their way.
   */
  retire(): void {
    this.retiring = true;
    this.probe?.cancel();
    if (this.pending.size === 0) this.close(CLOSE_NORMAL, 'client moved to another node');
  }

  /** Closes the socket; outstanding requests fail with CONNECTION_LOST (or `error` if given). */
  close(code = CLOSE_NORMAL, reason = 'client closed the connection', error?: FlotillaError): void {
    if (this.closedError !== null) return;
    this.socket.close(code, reason);
    this.handleClose(code, reason, error);
  }

  /**
   * Starts the liveness check: wakes up when `intervalMs` of silence would have passed since the
   * last frame, probes, and gives up `timeoutMs` after the probe if nothing was heard since. One
   * timer per connection, re-armed only when it fires (a frame costs a clock read, no timer).
   */
  private watch(intervalMs: number, timeoutMs: number): void {
    this.lastHeardMs = monotonicMs();
    const check = () => {
      this.watchdog = null;
      if (this.closedError !== null) return;
      const now = monotonicMs();
      if (this.probeSentMs !== null && this.lastHeardMs >= this.probeSentMs) this.probeSentMs = null;
      if (this.probeSentMs !== null && now - this.probeSentMs >= timeoutMs) {
        // If this process itself was busy, the answer may be waiting unread: let pending input be
        // read first (the timer can run before the event loop polls the socket), then judge.
        afterTurn(() => {
          if (this.closedError !== null) return;
          if (this.probeSentMs !== null && this.lastHeardMs < this.probeSentMs) {
            this.giveUp(monotonicMs() - this.lastHeardMs);
          } else {
            check();
          }
        });
        return;
      }
      if (this.probeSentMs === null && now - this.lastHeardMs >= intervalMs) this.sendProbe(now);
      const wakeAtMs =
        this.probeSentMs === null ? this.lastHeardMs + intervalMs : this.probeSentMs + timeoutMs;
      this.watchdog = backgroundTimer(check, Math.max(1, wakeAtMs - now));
    };
    this.watchdog = backgroundTimer(check, intervalMs);
  }

  private sendProbe(now: number): void {
    this.probeSentMs = now;
    const probe = this.request('cluster', {});
    this.probe = probe;
    // Its answer matters only as a sign of life (handleFrame notes it); errors too.
    probe.promise.then(
      () => {},
      () => {},
    );
  }

  /** The node has been silent too long: close, failing what is outstanding with CONNECTION_LOST. */
  private giveUp(silentMs: number): void {
    const error = new FlotillaError(
      'CONNECTION_LOST',
      `${this.url} sent nothing for ${Math.round(silentMs)} ms, not even an answer to a probe: the node is unresponsive`,
      { url: this.url, unresponsive: true, silentMs: Math.round(silentMs) },
    );
    this.close(4000, 'node unresponsive', error);
  }

  private nextId(): number {
    do {
      this.lastId = this.lastId >= MAX_REQUEST_ID ? 1 : this.lastId + 1;
    } while (this.pending.has(this.lastId));
    return this.lastId;
  }

  private forget(id: number): void {
    this.pending.delete(id);
    if (this.retiring && this.pending.size === 0) this.close(CLOSE_NORMAL, 'client moved to another node');
  }

  private handleFrame(frame: Uint8Array): void {
    this.lastHeardMs = monotonicMs();
    const decoded = decodeServerFrame(frame);
    if (!decoded.ok) {
      // We cannot tell which request this answered: close so every outstanding one fails (and is retried).
      const error = new FlotillaError(
        'PROTOCOL_ERROR',
        `unreadable frame from ${this.url}: ${decoded.error.message}`,
        {
          url: this.url,
        },
      );
      this.events.onError(this, error);
      this.close(1002, 'unreadable frame');
      return;
    }
    const value = decoded.value;
    if (value.kind === 'result' || value.kind === 'error') this.handleReply(value);
    else if (this.welcome !== undefined) this.events.onPush(this, value);
  }

  private handleReply(
    reply:
      | { kind: 'result'; id: number; op: OpName; result: unknown }
      | { kind: 'error'; id: number; error: FlotillaError },
  ): void {
    const pending = this.pending.get(reply.id);
    if (pending === undefined) {
      // A late answer to a request we gave up on, or an error about a frame the server could not read.
      if (reply.kind === 'error' && reply.id === 0) this.events.onError(this, reply.error);
      return;
    }
    this.forget(reply.id);
    if (reply.kind === 'error') {
      pending.reject(reply.error);
      return;
    }
    if (reply.op !== pending.op) {
      pending.reject(
        new FlotillaError(
          'PROTOCOL_ERROR',
          `reply to ${pending.op} request ${reply.id} carries op ${reply.op}`,
        ),
      );
      return;
    }
    pending.onResult?.(reply.result);
    pending.resolve(reply.result);
  }

  private handleClose(code: number, reason: string, error?: FlotillaError): void {
    if (this.closedError !== null) return;
    if (this.watchdog !== null) clearTimeout(this.watchdog);
    this.watchdog = null;
    this.closedError =
      error ??
      new FlotillaError(
        'CONNECTION_LOST',
        `connection to ${this.url} closed (${code}${reason ? ` ${reason}` : ''})`,
        {
          url: this.url,
          closeCode: code,
        },
      );
    this.failPending(this.closedError);
    if (this.welcome !== undefined) this.events.onClose(this, this.closedError);
  }

  private failPending(error: FlotillaError): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const request of pending) request.reject(error);
  }
}

/** A clock that never goes backwards (wall-clock steps must not fake or hide silence). */
function monotonicMs(): number {
  return globalThis.performance.now();
}

/** A timer that does not keep a Node process alive by itself (the socket does while it is open). */
function backgroundTimer(run: () => void, ms: number): ReturnType<typeof setTimeout> {
  const timer = setTimeout(run, ms);
  (timer as { unref?: () => void }).unref?.();
  return timer;
}

function rejected<T>(error: FlotillaError): RequestHandle<T> {
  return { promise: Promise.reject(error), cancel: () => {} };
}
