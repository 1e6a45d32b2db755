/**
 * One inbound peer connection (a peer dialed us): challenge the dialer, check its proof, prove the
 * secret back, and from then on hand every valid Raft frame to the transport. Nothing a peer sends
 * can crash the node: before authentication anything but a valid AUTH closes the connection; after
 * it, a frame that does not decode, is not a valid Raft message, claims another sender or names an
 * unknown group is dropped and logged (rate-limited).
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { type Message, type NodeId, validateMessage } from '../../raft/index.js';
import type { Logger } from '../../runtime/logger.js';
import { dialerProof, newNonce, sameProof, serverProof } from './auth.js';
import { decodePeerFrame, encodeHello, encodeWelcome, PEER_PROTOCOL_VERSION } from './codec.js';
import type { TransportLimits } from './limits.js';
import { CloseCode, closeSocket } from './outbound.js';

/** What an inbound connection needs from its transport. */
export interface InboundHost {
  readonly nodeId: NodeId;
  readonly secret: string;
  readonly limits: TransportLimits;
  readonly logger: Logger;
  /** The dialer proved the secret; it may replace an older connection of the same peer. */
  authenticated(connection: InboundConnection): void;
  closed(connection: InboundConnection): void;
  /** A valid Raft message from the authenticated peer; false when its group is unknown. */
  deliver(message: Message): boolean;
}

export interface InboundStats {
  framesReceived: number;
  framesDropped: number;
}

export class InboundConnection {
  /** The authenticated peer (null until then). */
  peer: NodeId | null = null;
  /** The address the peer advertises for its own inbound links. */
  peerAddress: string | null = null;
  readonly stats: InboundStats = { framesReceived: 0, framesDropped: 0 };
  private readonly nonce = newNonce();
  private timer: NodeJS.Timeout | null;
  private readonly remote: string;

  constructor(
    private readonly host: InboundHost,
    readonly ws: WebSocket,
    req: IncomingMessage,
  ) {
    this.remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    this.timer = setTimeout(
      () => this.close(CloseCode.HandshakeTimeout, 'handshake timed out'),
      host.limits.handshakeTimeoutMs,
    );
    this.timer.unref();
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('error', (err) =>
      host.logger.debug({ remote: this.remote, err: err.message }, 'inbound peer link error'),
    );
    ws.on('close', () => {
      this.clearTimer();
      host.closed(this);
    });
    ws.send(encodeHello(host.nodeId, this.nonce));
  }

  close(code: number, reason: string): void {
    this.clearTimer();
    closeSocket(this.ws, code, reason);
  }

  terminate(): void {
    this.clearTimer();
    this.ws.terminate();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private onMessage(data: unknown, isBinary: boolean): void {
    if (!isBinary || !(data instanceof Buffer)) {
      if (this.peer === null) this.close(CloseCode.ProtocolError, 'expected a binary AUTH frame');
      else this.dropped('non-binary frame');
      return;
    }
    if (this.peer === null) this.authenticate(data);
    else this.receive(data);
  }

  private authenticate(data: Buffer): void {
    let frame: ReturnType<typeof decodePeerFrame>;
    try {
      frame = decodePeerFrame(data);
    } catch (err) {
      this.close(CloseCode.ProtocolError, `bad AUTH frame: ${(err as Error).message}`);
      return;
    }
    if (frame.kind !== 'auth' || frame.version !== PEER_PROTOCOL_VERSION) {
      this.close(CloseCode.ProtocolError, `expected AUTH v${PEER_PROTOCOL_VERSION}`);
      return;
    }
    const { secret, nodeId } = this.host;
    const expected = dialerProof(secret, this.nonce, frame.nodeId, nodeId, frame.address);
    if (secret.length === 0 || frame.nodeId === nodeId || !sameProof(expected, frame.proof)) {
      this.host.logger.warn(
        { remote: this.remote, claimedPeer: frame.nodeId },
        'peer failed authentication (wrong cluster secret?); connection refused',
      );
      this.close(CloseCode.AuthenticationFailed, 'authentication failed');
      return;
    }
    this.clearTimer();
    this.peer = frame.nodeId;
    this.peerAddress = frame.address;
    this.ws.send(encodeWelcome(serverProof(secret, frame.nonce, nodeId, frame.nodeId)));
    this.host.logger.info({ peer: this.peer, remote: this.remote }, 'inbound peer link up');
    this.host.authenticated(this);
  }

  private receive(data: Buffer): void {
    this.stats.framesReceived++;
    let frame: ReturnType<typeof decodePeerFrame>;
    try {
      frame = decodePeerFrame(data);
    } catch (err) {
      this.dropped((err as Error).message);
      return;
    }
    if (frame.kind !== 'raft') {
      this.dropped(`unexpected ${frame.kind} frame`);
      return;
    }
    const message = frame.message;
    const invalid = validateMessage(message);
    if (invalid !== null) this.dropped(`invalid ${message.type}: ${invalid}`);
    else if (message.from !== this.peer) this.dropped(`frame from ${message.from} on ${this.peer}'s link`);
    else if (message.to !== this.host.nodeId) this.dropped(`frame for ${message.to}`);
    else if (!this.host.deliver(message)) this.dropped(`unknown group ${message.group}`);
  }

  /** Logs the first few bad frames of a connection, then one in `badFrameLogEvery`. */
  private dropped(reason: string): void {
    const count = ++this.stats.framesDropped;
    const { badFramesLoggedMax, badFrameLogEvery } = this.host.limits;
    if (count <= badFramesLoggedMax || count % badFrameLogEvery === 0) {
      this.host.logger.warn({ peer: this.peer, reason, dropped: count }, 'dropped a bad frame from a peer');
    }
  }
}
