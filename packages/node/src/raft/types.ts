/**
 * Types shared by the Raft core, the storage layer and the driver that ties them together.
 * They are plain data so that they can be persisted, sent over the wire and compared in tests.
 */

/** A node's id, stable for its whole life (e.g. `n1`). Never reused after the node is removed. */
export type NodeId = string;

/** Raft group id. One group carries every queue for now; every peer frame names its group. */
export type GroupId = number;

export const EntryType = {
  /** Application command (an opaque payload for the state machine). Also the leader's no-op (empty data). */
  Normal: 0,
  /** Membership change; `data` is an encoded {@link ConfChange}. */
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** One log entry. `index` starts at 1; `term` is the term of the leader that created it. */
export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  /** Opaque bytes; encoded once by the proposer and never re-encoded on the way to disk or peers. */
  data: Uint8Array;
}

/** What must survive a crash besides the log: must be durable before any message that depends on it is sent. */
export interface HardState {
  term: number;
  /** Who this node voted for in `term`, or null. */
  vote: NodeId | null;
  /** Highest index known committed. Persisting it is an optimisation (faster replay), not needed for safety. */
  commit: number;
}

/** Cluster membership: voters decide elections and commit; learners only receive the log. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/** Describes a snapshot: it replaces every entry up to and including `index`. */
export interface SnapshotMeta {
  index: number;
  term: number;
  /** Membership as of `index`. */
  conf: ConfState;
}

export const ConfChangeType = {
  AddLearner: 0,
  PromoteLearner: 1,
  RemoveNode: 2,
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

/** A single-server membership change; one may be pending at a time. */
export interface ConfChange {
  type: ConfChangeType;
  node: NodeId;
  /**
   * Where peers reach `node` (`host:port`), replicated with the change so that every member, a
   * restarted one included, learns it from the log. Set on AddLearner; optional (older entries and
   * the simulator have none) and never interpreted by the core.
   */
  address?: string;
}
