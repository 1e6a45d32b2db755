/**
 * The outbound link to one peer: this node dials the peer's `/cluster` endpoint, proves the cluster
 * secret, checks the peer's proof, and then sends it Raft frames (the peer answers on its own
 * outbound link to us). All reconnect logic lives here: jittered exponential backoff after a failed
 * dial, a quick retry after a drop, and a ping to notice a peer that vanished without closing.
 *
 * Frames wait in two queues, control (heartbeats, votes, responses, TimeoutNow) ahead of bulk
 * (entries, snapshot chunks), and are handed to the socket only while little is buffered in it, so
 * a heartbeat never waits behind more than `bulkInSocketBytesMax` of bulk plus one frame. Queued
 * bytes are capped per peer; beyond the cap frames are dropped and the peer reported unreachable.
 *
 * With the zero masking key (the default) every Raft frame is written straight onto the link's TCP
 * socket as one WebSocket frame made of the encoded parts (ws-frame.ts): entry bodies go out as
 * they are, and the socket is corked while a pump hands over its frames, so they leave in one
 * writev. With random masks, `ws` masks each frame (a copy of its joined parts).
 */
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import type { NodeId } from '../../raft/index.js';
import type { Logger } from '../../runtime/logger.js';
import { dialerProof, newNonce, sameProof, serverProof } from './auth.js';
import { decodePeerFrame, type EncodedFrame, encodeAuth, PEER_PROTOCOL_VERSION } from './codec.js';
import type { TransportLimits } from './limits.js';
import { writeZeroMaskFrame } from './ws-frame.js';

/** WebSocket close codes of the peer protocol (4000–4999 are for applications). */
export const CloseCode = {
  AuthenticationFailed: 4001,
  ProtocolError: 4002,
  UnexpectedNode: 4003,
  HandshakeTimeout: 4008,
  Replaced: 4009,
  GoingAway: 1001,
} as const;

export type OutboundState = 'idle' | 'connecting' | 'handshake' | 'up' | 'backoff' | 'closed';

/** What a link needs from its transport. */
export interface LinkHost {
  readonly nodeId: NodeId;
  readonly advertise: string;
  readonly secret: string;
  readonly limits: TransportLimits;
  readonly logger: Logger;
  readonly zeroMask: boolean;
  readonly random: () => number;
  linkUp(peer: NodeId): void;
  /** The peer may have missed frames: the link dropped, or frames were dropped at the cap. */
  linkUnreachable(peer: NodeId, reason: string): void;
  /** A dial attempt failed before the link came up. */
  dialFailed(peer: NodeId, reason: string): void;
}

export interface OutboundStats {
  framesSent: number;
  bytesSent: number;
  framesDropped: number;
  dialFailures: number;
  connects: number;
}

const zeroMask = (mask: Buffer) => mask.fill(0);

/** WebSocket close reasons are limited to 123 bytes of UTF-8; `ws` throws beyond. */
const CLOSE_REASON_BYTES_MAX = 123;

/** Closes `ws` with `code` and `reason` cut to what the protocol allows; never throws. */
export function closeSocket(ws: WebSocket, code: number, reason: string): void {
  let cut = reason;
  while (Buffer.byteLength(cut) > CLOSE_REASON_BYTES_MAX) cut = cut.slice(0, -1);
  try {
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CLOSING) ws.close(code, cut);
    else ws.terminate();
  } catch {
    ws.terminate();
  }
}

export class OutboundLink {
  state: OutboundState = 'idle';
  readonly stats: OutboundStats = {
    framesSent: 0,
    bytesSent: 0,
    framesDropped: 0,
    dialFailures: 0,
    connects: 0,
  };
  private ws: WebSocket | null = null;
  /** The TCP socket under `ws` once up, when frames are written to it directly (zero mask). */
  private socket: Socket | null = null;
  private readonly control: EncodedFrame[] = [];
  private controlHead = 0;
  private readonly bulk: EncodedFrame[] = [];
  private bulkHead = 0;
  /** Bytes in `control` and `bulk`. */
  private queuedBytes = 0;
  /** Frames handed to the socket and not yet written, in order; their write callbacks come in order. */
  private inSocket: EncodedFrame[] = [];
  private inSocketHead = 0;
  private inSocketControlBytes = 0;
  private inSocketBulkBytes = 0;
  private failures = 0;
  private dropReported = false;
  private timer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private pongSeen = true;
  private pumping = false;

  constructor(
    private readonly host: LinkHost,
    readonly peer: NodeId,
    /** `host:port` dialed; changed by `setAddress`. */
    public address: string,
  ) {}

  get connected(): boolean {
    return this.state === 'up';
  }

  get queued(): number {
    return this.queuedBytes;
  }

  /** Starts dialing if the link is idle. */
  start(): void {
    if (this.state === 'idle') this.connect();
  }

  /** A new address: reconnect there (the old connection, if any, is closed). */
  setAddress(address: string): void {
    if (address === this.address) return;
    this.address = address;
    if (this.state === 'closed') return;
    this.host.logger.info({ peer: this.peer, address }, 'peer address changed; reconnecting');
    this.resetConnection('address changed');
    this.connect();
  }

  /**
   * The peer just proved it is alive (its own link to us authenticated): if we are waiting out a
   * reconnect backoff, dial now. After a restart the peer is back long before our backoff (up to
   * `reconnectMaxMs`) ends, and until we dial, votes and heartbeats to it are dropped.
   */
  peerIsBack(): void {
    if (this.state !== 'backoff') return;
    this.clearTimer();
    this.failures = 0;
    this.connect();
  }

  enqueue(frame: EncodedFrame): void {
    if (this.state === 'closed') return;
    if (this.state === 'backoff') {
      this.drop(frame, 'link down');
      return;
    }
    // Control frames may use a reserve above the cap, so a full bulk queue cannot starve heartbeats.
    const cap = this.host.limits.queuedBytesMax + (frame.bulk ? 0 : this.host.limits.controlInSocketBytesMax);
    if (this.queuedBytes + frame.bytes > cap) {
      this.drop(frame, `send queue full (${this.queuedBytes} bytes queued)`);
      return;
    }
    (frame.bulk ? this.bulk : this.control).push(frame);
    this.queuedBytes += frame.bytes;
    if (this.state === 'idle') this.connect();
    else if (this.state === 'up') this.pump();
  }

  close(): void {
    if (this.state === 'closed') return;
    this.resetConnection(null);
    this.state = 'closed';
  }

  /** Closes the socket at once, without a closing handshake (tests: an abrupt process death). */
  terminate(): void {
    this.ws?.terminate();
    this.close();
  }

  // ---------------------------------------------------------------------------------------------
  // Connecting and authenticating

  private connect(): void {
    this.clearTimer();
    this.state = 'connecting';
    let ws: WebSocket;
    try {
      ws = new WebSocket(`ws://${this.address}/cluster`, {
        perMessageDeflate: false,
        maxPayload: this.host.limits.frameMaxBytes,
        handshakeTimeout: this.host.limits.handshakeTimeoutMs,
        ...(this.host.zeroMask ? { generateMask: zeroMask } : {}),
      });
    } catch (err) {
      // An address that is not even a URL (it came from configuration or the log): keep retrying,
      // in case it is replaced, but never let it take the node down.
      this.host.logger.warn(
        { peer: this.peer, address: this.address, err: (err as Error).message },
        'bad peer address',
      );
      this.failures++;
      this.stats.dialFailures++;
      this.scheduleReconnect(this.backoffMs());
      return;
    }
    this.ws = ws;
    const nonce = newNonce();
    let expecting: 'hello' | 'welcome' = 'hello';
    let socket: Socket | null = null;
    // The socket `ws` will write to; frames are written to it directly once the link is up.
    ws.on('upgrade', (response) => {
      if (this.host.zeroMask) socket = response.socket;
    });
    ws.on('open', () => {
      if (this.ws !== ws) return;
      this.state = 'handshake';
      this.timer = setTimeout(
        () => this.abandon(ws, 'handshake timed out'),
        this.host.limits.handshakeTimeoutMs,
      );
    });
    ws.on('message', (data, isBinary) => {
      if (this.ws !== ws) return;
      if (!isBinary || !(data instanceof Buffer)) return this.abandon(ws, 'non-binary frame from server');
      if (expecting === 'hello') {
        if (this.answerHello(ws, data, nonce)) expecting = 'welcome';
      } else if (this.state === 'handshake') {
        this.checkWelcome(ws, data, nonce, socket);
      } else {
        this.host.logger.warn(
          { peer: this.peer },
          'unexpected frame from a peer on our outbound link; ignored',
        );
      }
    });
    ws.on('pong', () => {
      this.pongSeen = true;
    });
    ws.on('error', (err) => {
      if (this.ws === ws) this.host.logger.debug({ peer: this.peer, err: err.message }, 'peer link error');
    });
    ws.on('close', (code, reason) => this.onClosed(ws, code, reason.toString()));
  }

  /** Answers the server's challenge; false (closing) when the server is not the peer we meant. */
  private answerHello(ws: WebSocket, data: Buffer, nonce: Uint8Array): boolean {
    const frame = this.decode(ws, data);
    if (frame === null) return false;
    if (frame.kind !== 'hello' || frame.version !== PEER_PROTOCOL_VERSION) {
      this.abandon(
        ws,
        `expected HELLO v${PEER_PROTOCOL_VERSION}, got ${frame.kind}`,
        CloseCode.ProtocolError,
      );
      return false;
    }
    if (frame.nodeId !== this.peer) {
      this.host.logger.warn(
        { peer: this.peer, address: this.address, found: frame.nodeId },
        'a different node answers at this peer address',
      );
      this.abandon(ws, `node ${frame.nodeId} answered`, CloseCode.UnexpectedNode);
      return false;
    }
    const { nodeId, advertise, secret } = this.host;
    const proof = dialerProof(secret, frame.nonce, nodeId, this.peer, advertise);
    ws.send(encodeAuth(nodeId, advertise, nonce, proof));
    return true;
  }

  private checkWelcome(ws: WebSocket, data: Buffer, nonce: Uint8Array, socket: Socket | null): void {
    const frame = this.decode(ws, data);
    if (frame === null) return;
    if (frame.kind !== 'welcome') {
      this.abandon(ws, `expected WELCOME, got ${frame.kind}`, CloseCode.ProtocolError);
      return;
    }
    if (!sameProof(serverProof(this.host.secret, nonce, this.peer, this.host.nodeId), frame.proof)) {
      this.host.logger.warn(
        { peer: this.peer, address: this.address },
        'peer failed to prove the cluster secret; link refused (is its cluster secret different?)',
      );
      this.abandon(ws, 'peer failed authentication', CloseCode.AuthenticationFailed);
      return;
    }
    this.becomeUp(ws, socket);
  }

  private decode(ws: WebSocket, data: Buffer) {
    try {
      return decodePeerFrame(data);
    } catch (err) {
      this.abandon(ws, `bad handshake frame: ${(err as Error).message}`, CloseCode.ProtocolError);
      return null;
    }
  }

  private becomeUp(ws: WebSocket, socket: Socket | null): void {
    this.clearTimer();
    this.state = 'up';
    this.socket = socket;
    this.failures = 0;
    this.dropReported = false;
    this.stats.connects++;
    this.pongSeen = true;
    this.written = this.writtenOn(ws);
    this.pingTimer = setInterval(() => this.checkAlive(ws), this.host.limits.pingIntervalMs);
    this.pingTimer.unref();
    this.host.logger.info({ peer: this.peer, address: this.address }, 'peer link up');
    this.host.linkUp(this.peer);
    this.pump();
  }

  /**
   * No pong since the last ping: the peer is gone (or its process is stopped). Checked after the
   * poll phase (setImmediate), so a pong that arrived while our own event loop was busy counts.
   */
  private checkAlive(ws: WebSocket): void {
    setImmediate(() => {
      if (this.ws !== ws || this.state !== 'up') return;
      if (!this.pongSeen) {
        this.host.logger.warn({ peer: this.peer }, 'peer did not answer a ping; dropping the link');
        ws.terminate();
        return;
      }
      this.pongSeen = false;
      ws.ping();
    });
  }

  /** Gives up on this connection attempt or link; the close handler decides what comes next. */
  private abandon(ws: WebSocket, reason: string, code: number = CloseCode.ProtocolError): void {
    if (this.ws !== ws) return;
    this.host.logger.debug({ peer: this.peer, reason }, 'closing peer link');
    closeSocket(ws, code, reason);
  }

  private onClosed(ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return;
    const wasUp = this.state === 'up';
    this.resetConnection(null);
    if (this.state === 'closed') return;
    const why = reason === '' ? `closed (${code})` : `${reason} (${code})`;
    if (code === CloseCode.AuthenticationFailed) {
      this.host.logger.warn(
        { peer: this.peer, address: this.address, reason },
        'peer refused our authentication (is the cluster secret the same on every node?)',
      );
    }
    if (wasUp) {
      this.host.logger.info({ peer: this.peer, reason: why }, 'peer link down');
      this.host.linkUnreachable(this.peer, `link down: ${why}`);
      this.scheduleReconnect(this.host.random() * this.host.limits.reconnectBaseMs);
      return;
    }
    this.stats.dialFailures++;
    this.failures++;
    this.host.logger.debug({ peer: this.peer, address: this.address, reason: why }, 'dialing peer failed');
    this.host.dialFailed(this.peer, why);
    this.host.linkUnreachable(this.peer, `dial failed: ${why}`);
    this.scheduleReconnect(this.backoffMs());
  }

  /** Full backoff doubles per consecutive failure up to the maximum; the delay is drawn from its upper half. */
  private backoffMs(): number {
    const { reconnectBaseMs, reconnectMaxMs } = this.host.limits;
    const ceiling = Math.min(reconnectMaxMs, reconnectBaseMs * 2 ** Math.min(this.failures - 1, 20));
    return ceiling / 2 + (this.host.random() * ceiling) / 2;
  }

  private scheduleReconnect(delayMs: number): void {
    this.state = 'backoff';
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.state === 'backoff') this.connect();
    }, delayMs);
    this.timer.unref();
  }

  /** Forgets the current socket and every queued frame (a new connection starts clean). */
  private resetConnection(closeReason: string | null): void {
    this.clearTimer();
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
    const ws = this.ws;
    this.ws = null;
    this.socket = null;
    if (ws !== null && ws.readyState !== WebSocket.CLOSED)
      closeSocket(ws, CloseCode.GoingAway, closeReason ?? 'closing');
    const dropped = this.control.length - this.controlHead + (this.bulk.length - this.bulkHead);
    this.stats.framesDropped += dropped;
    this.control.length = 0;
    this.controlHead = 0;
    this.bulk.length = 0;
    this.bulkHead = 0;
    this.queuedBytes = 0;
    this.inSocket = [];
    this.inSocketHead = 0;
    this.inSocketControlBytes = 0;
    this.inSocketBulkBytes = 0;
    if (this.state !== 'closed') this.state = 'idle';
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  private drop(frame: EncodedFrame, reason: string): void {
    this.stats.framesDropped++;
    if (this.dropReported) return;
    // One report per episode: the leader stops pipelining to this peer until it answers again.
    this.dropReported = true;
    this.host.logger.debug({ peer: this.peer, type: frame.message.type, reason }, 'dropping frames for peer');
    this.host.linkUnreachable(this.peer, reason);
  }

  /**
   * Hands frames to the socket: control first, bulk only while the socket holds little. The socket
   * is corked meanwhile, so everything handed over in one pump leaves in one writev.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    const socket = this.socket;
    socket?.cork();
    try {
      this.handOver();
    } finally {
      socket?.uncork();
      this.compactQueues();
      this.pumping = false;
    }
  }

  private handOver(): void {
    const { controlInSocketBytesMax, bulkInSocketBytesMax } = this.host.limits;
    while (this.state === 'up') {
      if (this.controlHead < this.control.length) {
        if (this.inSocketControlBytes >= controlInSocketBytesMax) break;
        this.write(this.control[this.controlHead]!);
        this.control[this.controlHead++] = undefined as unknown as EncodedFrame;
      } else if (this.bulkHead < this.bulk.length && this.inSocketBulkBytes < bulkInSocketBytesMax) {
        this.write(this.bulk[this.bulkHead]!);
        this.bulk[this.bulkHead++] = undefined as unknown as EncodedFrame;
      } else {
        break;
      }
    }
  }

  private compactQueues(): void {
    if (this.controlHead === this.control.length) {
      this.control.length = 0;
      this.controlHead = 0;
    }
    if (this.bulkHead === this.bulk.length) {
      this.bulk.length = 0;
      this.bulkHead = 0;
    }
    if (this.queuedBytes < this.host.limits.queuedBytesMax / 2) this.dropReported = false;
  }

  private write(frame: EncodedFrame): void {
    const ws = this.ws!;
    this.queuedBytes -= frame.bytes;
    if (frame.bulk) this.inSocketBulkBytes += frame.bytes;
    else this.inSocketControlBytes += frame.bytes;
    this.inSocket.push(frame);
    this.stats.framesSent++;
    this.stats.bytesSent += frame.bytes;
    const { parts } = frame;
    if (this.socket === null) {
      // Random masks: ws masks the frame, which takes a copy of it anyway.
      ws.send(parts.length === 1 ? parts[0]! : Buffer.concat(parts), { binary: true }, this.written);
    } else if (ws.readyState === WebSocket.OPEN) {
      writeZeroMaskFrame(this.socket, parts, frame.bytes, this.written);
    }
    // Otherwise the link is closing (ws would refuse the send too); its close resets the queues.
  }

  /** Write completion of the current connection's frames (one callback per connection, not per frame). */
  private written: (err?: Error | null) => void = () => {};

  /** Write callbacks arrive in order, one per frame; those of an older connection are ignored. */
  private writtenOn(ws: WebSocket): (err?: Error | null) => void {
    return (err) => {
      if (this.ws === ws && err == null) this.frameWritten();
    };
  }

  private frameWritten(): void {
    if (this.inSocketHead >= this.inSocket.length) return;
    const frame = this.inSocket[this.inSocketHead]!;
    this.inSocket[this.inSocketHead++] = undefined as unknown as EncodedFrame;
    if (this.inSocketHead === this.inSocket.length) {
      this.inSocket.length = 0;
      this.inSocketHead = 0;
    }
    if (frame.bulk) this.inSocketBulkBytes -= frame.bytes;
    else this.inSocketControlBytes -= frame.bytes;
    if (this.controlHead < this.control.length || this.bulkHead < this.bulk.length) this.pump();
  }
}
