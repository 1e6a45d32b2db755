/**
 * Configuration of one Raft node: identity, the state recovered from storage, injected randomness,
 * and every limit, each with the reasoning behind its default.
 *
 * Times are in ticks: the driver calls `tick()` at a fixed interval (100 ms in production), so an
 * election timeout of 10 ticks is about one second, which is the failover promise in DESIGN.md.
 */
import type { RecoveredState } from '../storage/types.js';
import { invariantFailed } from './errors.js';
import type { GroupId, NodeId } from './types.js';

/** Minimal structured logger (pino's shape) so the core stays free of any logging backend. */
export interface RaftLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RaftConfig {
  id: NodeId;
  group: GroupId;
  /**
   * Voters the cluster was first started with (`--peers`). Used only while no snapshot exists:
   * membership is this set plus the membership entries in the log. Every node, including one that
   * joins later, must be given the same set.
   */
  initialVoters: NodeId[];
  /** What storage recovered at start-up (hard state, newest snapshot meta, entries after it). */
  recovered: RecoveredState;
  /** Size in bytes of the recovered snapshot (0 when there is none); needed to cut it into chunks. */
  snapshotSizeBytes?: number;
  /**
   * Index the state machine already reflects. Usually omitted (0): the state machine is in memory,
   * so the first Ready asks it to restore the recovered snapshot and then re-apply the log.
   */
  applied?: number;
  /** Seeded random source: returns an integer in [0, bound). The only randomness the core uses. */
  randomInt: (bound: number) => number;
  logger?: RaftLogger;
  /** PreVote (thesis §9.6): campaign only after a pre-election a real one could win. Default true. */
  preVote?: boolean;
  /** CheckQuorum with leader lease (thesis §6.2, §4.2.3). Default true. */
  checkQuorum?: boolean;
  /** Overrides for {@link RaftLimits}. */
  limits?: Partial<RaftLimits>;
}

export interface RaftLimits {
  /**
   * A follower that hears nothing from a leader for a random time in [T, 2T) ticks starts an
   * election; a leader that has not heard from a quorum for T ticks steps down (CheckQuorum).
   * Default 10 (≈1 s at 100 ms ticks): long against a LAN round trip and an fsync, short enough for
   * the ~1 s failover promise.
   */
  electionTimeoutTicks: number;
  /** Leader heartbeat period. Default 1: several heartbeats fit in an election timeout even with loss. */
  heartbeatIntervalTicks: number;
  /**
   * After `forgetLeader()` (the driver saw both links to the leader close and a redial refused: its
   * process is gone) a follower campaigns after 1 + random(S) ticks instead of a whole randomized
   * election timeout. Two survivors collide only when they start within one vote round trip of each
   * other: with ticks of different processes out of phase that takes the same draw and close
   * phases, so a few ticks separate them nearly always, and a collision costs one short round
   * (elections stay on short timeouts, T/4 to T/2, for two election timeouts after forgetLeader).
   * Default 3 (50–150 ms at the driver's 50 ms tick).
   */
  leaderGoneSpreadTicks: number;
  /**
   * Bytes of entry data per AppendEntries message (at least one entry is always sent). Default
   * 128 KiB: about a hundred 1 KiB messages, the frame size that beat larger frames in the
   * data-path experiment (speed-of-light.md), while keeping several batches in flight.
   */
  maxAppendBytes: number;
  /**
   * AppendEntries messages in flight per follower in the replicate state. Default 64: 64 × 128 KiB
   * = 8 MiB, which covers an ack round trip of ~8 ms (network plus the follower's fsync) at 1 GB/s
   * loopback bandwidth; more would only queue in socket buffers.
   */
  maxInflightAppends: number;
  /** Entry bytes in flight per follower. Default 8 MiB, the same bandwidth × round-trip product. */
  maxInflightBytes: number;
  /**
   * Bytes a leader accepts from proposals that are not yet committed; beyond this proposals are
   * refused with `overloaded`. Default 64 MiB: bounds leader memory when followers stall, while
   * being far above what one second of the ~100 MB/s target throughput keeps uncommitted.
   */
  maxUncommittedBytes: number;
  /** Largest single proposal. Default 4 MiB, above any frame the gateway accepts. */
  maxEntryBytes: number;
  /**
   * Bytes of committed entries handed to the application per Ready (at least one entry). Default
   * 4 MiB: keeps one apply pass short enough not to stall the event loop for long.
   */
  maxApplyBytesPerReady: number;
  /** ReadIndex requests waiting for confirmation. Default 4096; beyond it reads are refused (`overloaded`). */
  maxPendingReads: number;
  /**
   * Entries kept in memory below a new snapshot, so a follower that is slightly behind still gets
   * entries instead of a whole snapshot. Default 1024 (≈1 MiB of 1 KiB messages).
   */
  compactionKeepEntries: number;
  /**
   * InstallSnapshot chunk size. Default 256 KiB: big enough that per-chunk overhead is noise, small
   * enough that one chunk never holds up heartbeats on the same link for long.
   */
  snapshotChunkBytes: number;
  /** Snapshot chunks in flight per follower. Default 4 (1 MiB), enough to hide one round trip. */
  snapshotChunksInflight: number;
  /**
   * A learner may be promoted only when its log is at most this many entries behind the leader's
   * last index, so that the new voter does not stall commits while it catches up. Default 64.
   */
  learnerPromotionLagEntriesMax: number;
}

export const DEFAULT_LIMITS: RaftLimits = {
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 1,
  leaderGoneSpreadTicks: 3,
  maxAppendBytes: 128 * 1024,
  maxInflightAppends: 64,
  maxInflightBytes: 8 * 1024 * 1024,
  maxUncommittedBytes: 64 * 1024 * 1024,
  maxEntryBytes: 4 * 1024 * 1024,
  maxApplyBytesPerReady: 4 * 1024 * 1024,
  maxPendingReads: 4096,
  compactionKeepEntries: 1024,
  snapshotChunkBytes: 256 * 1024,
  snapshotChunksInflight: 4,
  learnerPromotionLagEntriesMax: 64,
};

/** Merges overrides over the defaults and rejects combinations the core cannot work with. */
export function resolveLimits(overrides: Partial<RaftLimits> | undefined): RaftLimits {
  const limits = { ...DEFAULT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 0)
      invariantFailed(`limit ${name} must be a non-negative integer, got ${value}`);
  }
  if (limits.heartbeatIntervalTicks < 1 || limits.heartbeatIntervalTicks >= limits.electionTimeoutTicks) {
    invariantFailed(
      `need 1 <= heartbeatIntervalTicks (${limits.heartbeatIntervalTicks}) < electionTimeoutTicks (${limits.electionTimeoutTicks})`,
    );
  }
  if (limits.leaderGoneSpreadTicks < 1) {
    invariantFailed(`leaderGoneSpreadTicks must be at least 1, got ${limits.leaderGoneSpreadTicks}`);
  }
  if (limits.maxInflightAppends < 1 || limits.snapshotChunksInflight < 1 || limits.snapshotChunkBytes < 1) {
    invariantFailed('maxInflightAppends, snapshotChunksInflight and snapshotChunkBytes must be at least 1');
  }
  return limits;
}
