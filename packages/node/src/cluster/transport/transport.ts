/**
 * The peer transport: carries Raft messages between broker nodes over authenticated WebSockets.
 *
 * Topology: this node dials every peer for its *outbound* traffic (one `OutboundLink` per peer,
 * where all reconnect logic lives) and accepts the peers' dials for *inbound* traffic (routed here
 * by the HTTP server: `/cluster` upgrades go to `handleUpgrade`). Each direction is authenticated
 * separately by challenge–response with the cluster secret (auth.ts).
 *
 * Messages are routed by group id to the handler registered for it; frames for an unknown group
 * are dropped. Link events (up, unreachable, dial failed, inbound closed) go to every handler.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { GroupId, Message, NodeId } from '../../raft/index.js';
import { type Logger, silentLogger } from '../../runtime/logger.js';
import { encodeMessages } from './codec.js';
import { InboundConnection, type InboundHost } from './inbound.js';
import { resolveTransportLimits, type TransportLimits } from './limits.js';
import { CloseCode, type LinkHost, OutboundLink, type OutboundState } from './outbound.js';

export interface PeerTransportOptions {
  nodeId: NodeId;
  /** `host:port` peers use to reach this node; sent (authenticated) when dialing them. */
  advertise: string;
  /** Shared by every node of the cluster. An empty secret refuses every link in both directions. */
  clusterSecret: string;
  logger?: Logger;
  limits?: Partial<TransportLimits>;
  /**
   * Mask outgoing frames with random keys as RFC 6455 asks of clients, instead of a zero key. The
   * mask defends browsers' proxies against cache poisoning by page scripts; on authenticated
   * server-to-server links it only costs a copy and an XOR of every frame, so the default is the
   * zero key (which `ws` recognises and skips). Default false.
   */
  randomMask?: boolean;
  /** Uniform random in [0, 1) for reconnect jitter. Default Math.random. */
  random?: () => number;
}

/** What a Raft group (the driver) hears from the transport. */
export interface PeerHandler {
  /** A valid message addressed to this node, from the authenticated peer named in `from`. */
  receive(message: Message): void;
  /** The peer may have missed messages (link dropped, send queue full): stop pipelining to it. */
  unreachable(peer: NodeId): void;
  /** The outbound link to `peer` authenticated. */
  connected?(peer: NodeId): void;
  /** Dialing `peer` failed (refused, timed out, or refused authentication). */
  dialFailed?(peer: NodeId): void;
  /** The inbound link from `peer` closed. */
  inboundClosed?(peer: NodeId): void;
}

export interface PeerLinkStatus {
  peer: NodeId;
  address: string;
  outbound: OutboundState;
  inbound: boolean;
  queuedBytes: number;
  framesSent: number;
  bytesSent: number;
  framesDropped: number;
  dialFailures: number;
}

export class PeerTransport {
  readonly nodeId: NodeId;
  private readonly advertise: string;
  private readonly logger: Logger;
  private readonly limits: TransportLimits;
  private readonly wss: WebSocketServer;
  private readonly links = new Map<NodeId, OutboundLink>();
  private readonly inbound = new Map<NodeId, InboundConnection>();
  private readonly pending = new Set<InboundConnection>();
  /** Addresses dialers announced for themselves; used only for peers we have no address for. */
  private readonly announced = new Map<NodeId, string>();
  private readonly handlers = new Map<GroupId, PeerHandler>();
  private readonly linkHost: LinkHost;
  private readonly inboundHost: InboundHost;
  private closed = false;
  /** Frames whose peer has no known address. */
  private unroutable = 0;

  constructor(options: PeerTransportOptions) {
    this.nodeId = options.nodeId;
    this.advertise = options.advertise;
    this.logger = (options.logger ?? silentLogger).child({ component: 'transport' });
    this.limits = resolveTransportLimits(options.limits);
    if (options.clusterSecret.length === 0)
      this.logger.warn('no cluster secret configured: every peer link will be refused');
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: this.limits.frameMaxBytes,
      clientTracking: false,
    });
    const common = {
      nodeId: this.nodeId,
      secret: options.clusterSecret,
      limits: this.limits,
      logger: this.logger,
    };
    this.linkHost = {
      ...common,
      advertise: this.advertise,
      zeroMask: options.randomMask !== true,
      random: options.random ?? Math.random,
      linkUp: (peer) => this.forEachHandler((h) => h.connected?.(peer)),
      linkUnreachable: (peer) => this.forEachHandler((h) => h.unreachable(peer)),
      dialFailed: (peer) => this.forEachHandler((h) => h.dialFailed?.(peer)),
    };
    this.inboundHost = {
      ...common,
      authenticated: (connection) => this.inboundAuthenticated(connection),
      closed: (connection) => this.inboundClosed(connection),
      deliver: (message) => this.deliver(message),
    };
  }

  /** Route `/cluster` WebSocket upgrades of the node's HTTP server here. */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (this.closed || this.pending.size >= this.limits.pendingHandshakesMax) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.closed) {
        ws.terminate();
        return;
      }
      this.pending.add(new InboundConnection(this.inboundHost, ws, req));
    });
  };

  /** Handle messages of `group`; returns a function that unregisters the handler. */
  registerGroup(group: GroupId, handler: PeerHandler): () => void {
    if (this.handlers.has(group)) throw new Error(`group ${group} already has a handler`);
    this.handlers.set(group, handler);
    return () => {
      if (this.handlers.get(group) === handler) this.handlers.delete(group);
    };
  }

  /** Keep an outbound link to `peer` at `address` (dialing now), or move it to a new address. */
  setPeer(peer: NodeId, address: string): void {
    if (this.closed || peer === this.nodeId) return;
    const link = this.links.get(peer);
    if (link === undefined) this.openLink(peer, address).start();
    else link.setAddress(address);
  }

  /**
   * Stop dialing `peer` (it left the cluster). Its inbound link, if any, stays: what it still sends
   * is harmless (the core ignores non-members) and closing would only make it redial.
   */
  removePeer(peer: NodeId): void {
    this.links.get(peer)?.close();
    this.links.delete(peer);
    this.announced.delete(peer);
  }

  /**
   * Sends messages (e.g. one Ready's), each to its `to`. Never blocks and never throws for a peer
   * that cannot be reached: such messages are dropped and the peer reported unreachable.
   */
  send(messages: readonly Message[]): void {
    if (this.closed || messages.length === 0) return;
    for (const frame of encodeMessages(messages)) {
      const to = frame.message.to;
      const link = this.links.get(to) ?? this.linkFromAnnouncement(to);
      if (link === undefined) {
        if (++this.unroutable === 1 || this.unroutable % 1000 === 0)
          this.logger.warn(
            { peer: to, dropped: this.unroutable },
            'no address known for peer; message dropped',
          );
        this.forEachHandler((h) => h.unreachable(to));
        continue;
      }
      link.enqueue(frame);
    }
  }

  isConnected(peer: NodeId): boolean {
    return this.links.get(peer)?.connected === true;
  }

  hasInbound(peer: NodeId): boolean {
    return this.inbound.has(peer);
  }

  /** The address a peer announced when it dialed us, if any. */
  announcedAddress(peer: NodeId): string | null {
    return this.announced.get(peer) ?? null;
  }

  peers(): PeerLinkStatus[] {
    const ids = new Set([...this.links.keys(), ...this.inbound.keys()]);
    return [...ids].sort().map((peer) => {
      const link = this.links.get(peer);
      const stats = link?.stats;
      return {
        peer,
        address: link?.address ?? this.announced.get(peer) ?? '',
        outbound: link?.state ?? 'idle',
        inbound: this.inbound.has(peer),
        queuedBytes: link?.queued ?? 0,
        framesSent: stats?.framesSent ?? 0,
        bytesSent: stats?.bytesSent ?? 0,
        framesDropped: stats?.framesDropped ?? 0,
        dialFailures: stats?.dialFailures ?? 0,
      };
    });
  }

  /** Closes every link (with a closing handshake, bounded by a short wait). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const sockets = [...this.inbound.values(), ...this.pending].map((c) => c.ws);
    for (const link of this.links.values()) link.close();
    for (const connection of [...this.inbound.values(), ...this.pending])
      connection.close(CloseCode.GoingAway, 'node stopping');
    this.links.clear();
    await waitForClose(sockets, 1_000);
    this.wss.close();
  }

  /** Drops every connection at once, as a killed process would (tests). */
  terminate(): void {
    this.closed = true;
    for (const link of this.links.values()) link.terminate();
    for (const connection of [...this.inbound.values(), ...this.pending]) connection.terminate();
    this.links.clear();
    this.wss.close();
  }

  // ---------------------------------------------------------------------------------------------

  private openLink(peer: NodeId, address: string): OutboundLink {
    const link = new OutboundLink(this.linkHost, peer, address);
    this.links.set(peer, link);
    return link;
  }

  /** A peer we know only from its own dial (e.g. the leader contacting a new learner): dial it back. */
  private linkFromAnnouncement(peer: NodeId): OutboundLink | undefined {
    const address = this.announced.get(peer);
    if (address === undefined || this.closed) return undefined;
    const link = this.openLink(peer, address);
    link.start();
    return link;
  }

  private inboundAuthenticated(connection: InboundConnection): void {
    this.pending.delete(connection);
    const peer = connection.peer!;
    const previous = this.inbound.get(peer);
    this.inbound.set(peer, connection);
    if (previous !== undefined) previous.close(CloseCode.Replaced, 'replaced by a newer connection');
    if (connection.peerAddress !== null) this.announced.set(peer, connection.peerAddress);
    this.links.get(peer)?.peerIsBack();
  }

  private inboundClosed(connection: InboundConnection): void {
    this.pending.delete(connection);
    const peer = connection.peer;
    if (peer === null || this.inbound.get(peer) !== connection) return;
    this.inbound.delete(peer);
    if (!this.closed) this.logger.info({ peer }, 'inbound peer link down');
    this.forEachHandler((h) => h.inboundClosed?.(peer));
  }

  private deliver(message: Message): boolean {
    const handler = this.handlers.get(message.group);
    if (handler === undefined || this.closed) return handler !== undefined;
    handler.receive(message);
    return true;
  }

  private forEachHandler(call: (handler: PeerHandler) => void): void {
    if (this.closed) return;
    for (const handler of this.handlers.values()) call(handler);
  }
}

function waitForClose(
  sockets: { readyState: number; once(event: 'close', fn: () => void): unknown; terminate(): void }[],
  timeoutMs: number,
): Promise<void> {
  const open = sockets.filter((ws) => ws.readyState !== 3);
  if (open.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    let remaining = open.length;
    const timer = setTimeout(() => {
      for (const ws of open) ws.terminate();
      resolve();
    }, timeoutMs);
    for (const ws of open) {
      ws.once('close', () => {
        if (--remaining === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  });
}
