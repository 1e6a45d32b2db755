/**
 * Limits of the peer transport, each with the reasoning behind its default. Everything that can
 * grow from a peer's input or from a slow peer is bounded here: frame size, queued bytes per peer,
 * handshakes waiting, bad frames logged.
 */

export interface TransportLimits {
  /**
   * Largest WebSocket message accepted from a peer. Default 16 MiB: an AppendEntries holds at most
   * `maxAppendBytes` (128 KiB) of entries or one entry of up to `maxEntryBytes` (4 MiB), and a
   * snapshot chunk 256 KiB, so 16 MiB leaves room for raised core limits while still refusing a
   * frame that would make a node buffer without end.
   */
  frameMaxBytes: number;
  /**
   * Bytes of frames queued for one peer (not yet handed to its socket). Beyond it Raft messages are
   * dropped (Raft tolerates loss) and the peer is reported unreachable, which makes the leader stop
   * pipelining to it. Default 32 MiB: four times the core's 8 MiB in-flight window per follower plus
   * four snapshot chunks, so a healthy link never drops; only a stalled peer reaches it.
   */
  queuedBytesMax: number;
  /**
   * Bytes of bulk frames (entries, snapshot chunks) handed to a peer's socket and not yet written
   * to the kernel. Bulk waits in our queue beyond it, so a control frame (heartbeat, vote, response)
   * queued now waits behind at most this much plus one frame. Default 256 KiB: two 128 KiB appends,
   * enough to keep a loopback or LAN link busy between write completions.
   */
  bulkInSocketBytesMax: number;
  /**
   * Bytes of control frames handed to the socket and not yet written. Control frames are tiny, so
   * this only matters for a stalled peer; then they wait in our queue and count against
   * `queuedBytesMax`. Default 1 MiB.
   */
  controlInSocketBytesMax: number;
  /** A handshake (HELLO → AUTH → WELCOME) not finished within this time is abandoned. Default 5 s. */
  handshakeTimeoutMs: number;
  /**
   * Inbound connections still authenticating; more are refused at once. Default 64: a cluster has a
   * handful of peers, each with at most one handshake at a time, so this only stops a flood.
   */
  pendingHandshakesMax: number;
  /** First reconnect delay after a link drops or a dial fails; doubles per failure (with jitter). Default 50 ms. */
  reconnectBaseMs: number;
  /** Largest reconnect delay. Default 2 s: a restarted peer is found again within about two seconds. */
  reconnectMaxMs: number;
  /**
   * The dialer pings an idle-looking link this often and drops it when the previous ping got no
   * pong. Default 3 s: well above an event-loop stall under load (no churn), well below TCP's own
   * keepalive (hours), so a peer that vanished without a FIN is noticed.
   */
  pingIntervalMs: number;
  /** Bad frames from one peer logged in full; after that one line per `badFrameLogEvery`. Default 10. */
  badFramesLoggedMax: number;
  badFrameLogEvery: number;
}

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  frameMaxBytes: 16 * 1024 * 1024,
  queuedBytesMax: 32 * 1024 * 1024,
  bulkInSocketBytesMax: 256 * 1024,
  controlInSocketBytesMax: 1024 * 1024,
  handshakeTimeoutMs: 5_000,
  pendingHandshakesMax: 64,
  reconnectBaseMs: 50,
  reconnectMaxMs: 2_000,
  pingIntervalMs: 3_000,
  badFramesLoggedMax: 10,
  badFrameLogEvery: 1_000,
};

export function resolveTransportLimits(overrides: Partial<TransportLimits> | undefined): TransportLimits {
  const limits = { ...DEFAULT_TRANSPORT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`transport limit ${name} must be a positive integer, got ${value}`);
    }
  }
  if (limits.reconnectMaxMs < limits.reconnectBaseMs) {
    throw new RangeError(
      `reconnectMaxMs (${limits.reconnectMaxMs}) is below reconnectBaseMs (${limits.reconnectBaseMs})`,
    );
  }
  return limits;
}
