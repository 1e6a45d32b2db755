/**
 * What every session of a gateway shares: the runtime, the timer wheel, the limits and settings,
 * authentication, metrics and the logger. Kept as an interface so sessions and op handlers do
 * not depend on the WebSocket server that owns them.
 */
import type { ErrorCode, ProtocolLimits, QueueStats } from '@flotilla/shared';
import type { TokenAuthenticator } from '../auth/tokens.js';
import type { QueueRuntime } from '../broker/runtime.js';
import type { NodeMetrics } from '../metrics/metrics.js';
import type { Logger } from '../runtime/logger.js';
import type { Clock, TimerWheel } from '../runtime/timer-wheel.js';
import type { Session } from './session.js';

/** Gateway settings, each with its reason. */
export interface GatewaySettings {
  /** Open client connections; beyond it a new one gets OVERLOADED and closes (1013). From `--max-sessions`. */
  maxSessions: number;
  /** Push subscriptions per connection (OVERLOADED beyond). From `--max-subscriptions-per-session`. */
  maxSubscriptionsPerSession: number;
  /**
   * Requests of one connection received and not yet answered (commands in the log, reads, parked
   * receives). Beyond it: OVERLOADED. 4096 leaves room for a pipelining client (a 1,000-message
   * window in 100-message frames is 10 requests) while bounding what one client can pin.
   */
  maxPendingRequests: number;
  /** Frames received and not yet handled (the mailbox bound); a client past it is cut off (1008). */
  maxQueuedFrames: number;
  /**
   * Bytes waiting in a connection's send buffer above which the node stops reading its requests
   * and stops its deliveries until the buffer drains. 8 MiB is two full frames: enough to keep a
   * fast client busy, small enough that 10,000 slow ones cannot exhaust memory.
   */
  sendBufferHighBytes: number;
  /** A connection that has not sent hello by then is closed (1008), so idle sockets do not hold slots. */
  helloTimeoutMs: number;
  /**
   * After this node stops leading without knowing the new leader (a hand-over or an election in
   * progress), how long sessions wait for its name before goingAway goes out without one. A
   * hand-over names the new leader within milliseconds and an election within about one election
   * timeout (1 s by default); a goingAway that names it sends clients straight there instead of
   * probing every node. Requests meanwhile get NOT_LEADER, so no client is held up by the wait.
   */
  leaderAnnounceWaitMs: number;
  /** Reported in the welcome. */
  serverVersion: string;
}

export const DEFAULT_GATEWAY_SETTINGS: Readonly<GatewaySettings> = Object.freeze({
  maxSessions: 10_000,
  maxSubscriptionsPerSession: 256,
  maxPendingRequests: 4096,
  maxQueuedFrames: 65_536,
  sendBufferHighBytes: 8 * 1024 * 1024,
  helloTimeoutMs: 10_000,
  leaderAnnounceWaitMs: 2_000,
  serverVersion: '0.1.0',
});

export interface GatewayCore {
  readonly runtime: QueueRuntime;
  readonly timers: TimerWheel;
  readonly clock: Clock;
  readonly limits: ProtocolLimits;
  readonly options: GatewaySettings;
  /** null: no authentication, every client may do everything. */
  readonly authenticator: TokenAuthenticator | null;
  readonly metrics: NodeMetrics | null;
  readonly logger: Logger;
  /** Adds figures the state machine does not keep (the node's publish/ack rates) to a queue's stats. */
  readonly decorateStats: (stats: QueueStats) => QueueStats;
  /** Counts an error reply by code (metrics). */
  countError(code: ErrorCode): void;
  /** A session ended: forget it. */
  sessionClosed(session: Session): void;
}
