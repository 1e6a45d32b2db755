/**
 * The contract between the replicated log (the Raft driver: core + storage + peer transport) and
 * the application on top of it (the queue runtime and the client gateway).
 *
 * The driver owns ordering and durability; the application owns meaning. The application never
 * sees Raft messages, and the driver never looks inside an entry's bytes.
 */
import type { NodeId } from '../raft/types.js';

export type Role = 'leader' | 'follower' | 'candidate' | 'pre-candidate' | 'learner';

export interface MemberStatus {
  id: NodeId;
  /** Advertised `host:port`. */
  address: string;
  voter: boolean;
  /** Leader's view of this member's replication (null on followers). */
  matchIndex: number | null;
  /** True when the link to this member is up (from this node's point of view). */
  connected: boolean;
}

export interface NodeStatus {
  nodeId: NodeId;
  role: Role;
  term: number;
  leaderId: NodeId | null;
  /** Advertised `host:port` of the leader, when known. */
  leaderAddress: string | null;
  commitIndex: number;
  appliedIndex: number;
  /** Highest index durable in this node's log. */
  lastIndex: number;
  snapshotIndex: number;
  members: MemberStatus[];
}

/** One committed entry handed to the application, in log order. */
export interface AppliedEntry {
  index: number;
  term: number;
  data: Uint8Array;
}

/** A snapshot being read out of the application: chunks pulled one at a time. */
export interface SnapshotSource {
  /** Index of the last entry the snapshot includes. */
  readonly index: number;
  /** Next chunk, or null when done. May be called across event-loop turns while applies go on. */
  next(): Uint8Array | null;
}

/** The application driven by the replicated log. Must be deterministic: same entries, same state. */
export interface ReplicatedStateMachine {
  /** Apply one committed application entry (the driver skips Raft's own no-op and membership entries). */
  apply(entry: AppliedEntry): void;
  /** Start a snapshot of the state as of the last applied entry. */
  snapshot(): SnapshotSource;
  /** Replace the whole state with a snapshot's contents (at start-up or after InstallSnapshot). */
  restore(chunks: AsyncIterable<Uint8Array>, index: number): Promise<void>;
}

/**
 * Why the log did not take a proposal: this node does not lead, a leadership transfer is under
 * way, too many bytes are proposed and not yet committed (back off and retry here), or the entry
 * is larger than `maxEntryBytes` (the application must never propose such an entry).
 */
export type ProposeRefusal = 'not-leader' | 'transferring' | 'overloaded' | 'too-large';

/** Answer to a proposal: where the entry went, or why it was refused. */
export type ProposeOutcome =
  | { ok: true; index: number; term: number }
  | {
      ok: false;
      reason: ProposeRefusal;
      /**
       * Where proposals should go instead, when known: the leader (`not-leader`) or the node
       * leadership is being handed to (`transferring`); null otherwise.
       */
      leaderId: NodeId | null;
      /** Advertised `host:port` of `leaderId`, when known. */
      leaderAddress: string | null;
    };

/** What the application can ask of the replicated log. */
export interface ReplicatedLog {
  readonly nodeId: NodeId;
  /** Largest entry the log accepts, in bytes; the application keeps every proposal at most this big. */
  readonly maxEntryBytes: number;
  /**
   * Append `data` as a new entry if this node is the leader and accepts proposals, else say why
   * not. The entry is durable and committed once the state machine sees it applied at the
   * returned index with the returned term; if a different term shows up at that index, the
   * proposal was lost.
   */
  tryPropose(data: Uint8Array): ProposeOutcome;
  /**
   * The proposals made so far leave now (written and sent) instead of on the next event-loop
   * turn. For a caller that proposes from a `setImmediate` callback, as the broker's end-of-turn
   * flush does: work scheduled from there would wait a whole loop iteration.
   */
  sendProposals?(): void;
  status(): NodeStatus;
  /** Called after every change of role, term or leader. Returns an unsubscribe function. */
  onStatusChange(listener: (status: NodeStatus) => void): () => void;
  /** Resolves once this node has applied everything committed before the call (linearizable read point). */
  readBarrier(): Promise<void>;
  /** Hand leadership to the most caught-up voter; resolves when it moved or rejects when it could not. */
  transferLeadership(to?: NodeId): Promise<void>;
  /** Membership changes, one at a time; resolve when committed. */
  addLearner(id: NodeId, address: string): Promise<void>;
  promoteLearner(id: NodeId): Promise<void>;
  removeMember(id: NodeId): Promise<void>;
}
