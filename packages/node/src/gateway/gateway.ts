/**
 * The client gateway: a `ws` WebSocketServer in noServer mode behind the node's HTTP server,
 * which routes upgrades on `/client` to `handleUpgrade`. One `Session` per connection; the gateway
 * owns the set of sessions, enforces the session limit, tells every session when this node stops
 * leading (goingAway naming the new leader, waiting briefly to learn it when it is not known yet;
 * sessions stay open so clients can follow), and runs the client side of a graceful shutdown.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  DEFAULT_LIMITS,
  type ErrorCode,
  encodeError,
  FlotillaError,
  type ProtocolLimits,
  type QueueStats,
} from '@flotilla/shared';
import { type WebSocket, WebSocketServer } from 'ws';
import type { TokenAuthenticator } from '../auth/tokens.js';
import type { QueueRuntime } from '../broker/runtime.js';
import type { NodeStatus } from '../cluster/types.js';
import type { NodeMetrics } from '../metrics/metrics.js';
import { type Logger, silentLogger } from '../runtime/logger.js';
import { type Clock, systemClock, type TimerHandle, type TimerWheel } from '../runtime/timer-wheel.js';
import { clientUrl } from './convert.js';
import { DEFAULT_GATEWAY_SETTINGS, type GatewayCore, type GatewaySettings } from './core.js';
import { CloseCode, Session } from './session.js';

export interface GatewayOptions {
  runtime: QueueRuntime;
  /** The node's timer wheel (hello timeouts; the runtime uses the same one for long polls). */
  timers: TimerWheel;
  /** Limits the decoder enforces and the welcome announces (default: the protocol defaults). */
  limits?: ProtocolLimits;
  /** Bearer tokens; null or absent: no authentication (development only). */
  authenticator?: TokenAuthenticator | null;
  metrics?: NodeMetrics | null;
  logger?: Logger;
  clock?: Clock;
  settings?: Partial<GatewaySettings>;
  /** Adds the node's own figures (publish/ack rates) to the stats `listQueues`/`queueStats` answer. */
  decorateStats?: (stats: QueueStats) => QueueStats;
}

export class Gateway implements GatewayCore {
  readonly runtime: QueueRuntime;
  readonly timers: TimerWheel;
  readonly clock: Clock;
  readonly limits: ProtocolLimits;
  readonly options: GatewaySettings;
  readonly authenticator: TokenAuthenticator | null;
  readonly metrics: NodeMetrics | null;
  readonly logger: Logger;
  readonly decorateStats: (stats: QueueStats) => QueueStats;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<Session>();
  private sessionSeq = 0;
  private accepting = true;
  private readonly stopListening: () => void;
  /** Set while leadership was lost and the new leader's name is awaited: the deadline of the wait. */
  private leaderAnnounceTimer: TimerHandle | null = null;

  constructor(options: GatewayOptions) {
    this.runtime = options.runtime;
    this.decorateStats = options.decorateStats ?? ((stats) => stats);
    this.timers = options.timers;
    this.clock = options.clock ?? systemClock;
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.options = { ...DEFAULT_GATEWAY_SETTINGS, ...options.settings };
    this.authenticator = options.authenticator ?? null;
    this.metrics = options.metrics ?? null;
    this.logger = options.logger ?? silentLogger;
    this.wss = new WebSocketServer({
      noServer: true,
      // Frames above the protocol's cap are refused by ws itself (close 1009) before being buffered.
      maxPayload: this.limits.maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
    });
    const stopLost = this.runtime.onLeadershipLost((status) => this.leadershipLost(status));
    const stopStatus = this.runtime.onStatusChange((status) => this.statusChanged(status));
    this.stopListening = () => {
      stopLost();
      stopStatus();
    };
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Sessions whose client is not reading (reads and deliveries paused until their buffer drains). */
  get congestedSessions(): number {
    let n = 0;
    for (const session of this.sessions) if (session.congested) n++;
    return n;
  }

  /** Requests received by all sessions and not answered yet. */
  get pendingRequests(): number {
    let n = 0;
    for (const session of this.sessions) n += session.pendingRequests;
    return n;
  }

  /** For the HTTP server's `upgrade` event on path `/client`. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!this.accepting) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    socket.on('error', () => {}); // errors before the upgrade completes end the socket; nothing to do
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, socket, request));
  }

  private accept(ws: WebSocket, socket: Duplex, request: IncomingMessage): void {
    const remote = `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? '?'}`;
    if (this.sessions.size >= this.options.maxSessions || !this.accepting) {
      const error = new FlotillaError(
        'OVERLOADED',
        `this node serves at most ${this.options.maxSessions} clients`,
      );
      this.countError(error.code);
      ws.on('error', () => {});
      ws.send(encodeError(0, error));
      ws.close(CloseCode.tryAgainLater, 'too many sessions');
      return;
    }
    const session = new Session(this, ws, socket, ++this.sessionSeq, remote);
    this.sessions.add(session);
    this.metrics?.sessions.inc();
    this.logger.debug({ session: session.sessionNo, remote }, 'client connected');
  }

  countError(code: ErrorCode): void {
    this.metrics?.rejectedFrames.inc({ code });
  }

  sessionClosed(session: Session): void {
    if (this.sessions.delete(session)) this.metrics?.sessions.dec();
  }

  private leadershipLost(status: NodeStatus): void {
    if (otherLeader(status) !== null) {
      this.announceLeader(status);
      return;
    }
    // Stepped down without knowing the successor (a hand-over or an election is under way): wait
    // a little for its name, so clients go straight to it instead of probing every node.
    this.leaderAnnounceTimer?.cancel();
    this.leaderAnnounceTimer = this.timers.after(this.options.leaderAnnounceWaitMs, () => {
      this.leaderAnnounceTimer = null;
      this.announceLeader(this.runtime.status());
    });
  }

  private statusChanged(status: NodeStatus): void {
    if (this.leaderAnnounceTimer === null) return;
    if (status.role === 'leader')
      this.cancelLeaderAnnounce(); // leading again: nothing to tell
    else if (otherLeader(status) !== null) {
      this.cancelLeaderAnnounce();
      this.announceLeader(status);
    }
  }

  private cancelLeaderAnnounce(): void {
    this.leaderAnnounceTimer?.cancel();
    this.leaderAnnounceTimer = null;
  }

  /** goingAway to every session: leadership moved to the leader `status` names (or none known). */
  private announceLeader(status: NodeStatus): void {
    const leaderId = otherLeader(status);
    const leaderUrl = leaderId === null ? null : clientUrl(status.leaderAddress);
    for (const session of this.sessions) {
      if (session.principal !== null) session.goingAway('leadership moved', leaderId, leaderUrl, false);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Shutdown: stopAccepting → drain (finish in-flight confirms) → [transfer leadership] → closeAll

  /**
   * New connections get 503, new requests UNAVAILABLE and no new deliveries are made; requests in
   * flight are still answered.
   */
  stopAccepting(): void {
    this.accepting = false;
    this.runtime.stopDeliveries();
    for (const session of this.sessions) session.stopTakingRequests();
  }

  /**
   * Resolves once every request received has been answered (publishes confirmed, acks applied), or
   * after `timeoutMs`; resolves to the number still unanswered. Parked receives are not waited for.
   */
  async drain(timeoutMs: number): Promise<number> {
    const deadlineMs = this.clock.now() + timeoutMs;
    while (this.unansweredWrites() > 0 && this.clock.now() < deadlineMs) {
      await new Promise<void>((resolve) => this.timers.after(5, resolve));
    }
    return this.unansweredWrites();
  }

  private unansweredWrites(): number {
    return this.runtime.pendingCommands;
  }

  /** Tells every client to go (naming the new leader when known) and closes the connections (1001). */
  closeAll(reason: string, leaderId: string | null = null, leaderUrl: string | null = null): void {
    this.cancelLeaderAnnounce();
    for (const session of [...this.sessions]) session.goingAway(reason, leaderId, leaderUrl, true);
  }

  /** Closes the WebSocket server and forgets the runtime hook; call after closeAll. */
  close(): void {
    this.accepting = false;
    this.cancelLeaderAnnounce();
    this.stopListening();
    this.wss.close();
  }
}

/** The leader `status` names when it is another node, else null. */
function otherLeader(status: NodeStatus): string | null {
  return status.leaderId === status.nodeId ? null : status.leaderId;
}
