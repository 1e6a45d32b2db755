/**
 * The value the core hands its driver: everything that must happen as a consequence of the inputs
 * since the previous Ready. Fields are listed in the order the driver should act on them; each
 * comment states the ordering rule the driver must keep.
 *
 * Readys are pipelined: the driver may take the next Ready (and keep stepping messages and
 * proposing) while earlier Readys are still being persisted. Persistence of successive Readys must
 * complete in the order the Readys were taken (storage group commit does this: batches become
 * durable in queue order). After Ready `id` is durable the driver sends its `messagesAfterPersist`
 * and calls `persisted(id)`.
 */
import type { Message } from './messages.js';
import type { Entry, HardState, NodeId, SnapshotMeta } from './types.js';

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** Volatile state worth reporting: who leads, and what this node is. Not persisted. */
export interface SoftState {
  role: Role;
  term: number;
  leader: NodeId | null;
}

/** A confirmed ReadIndex request: serve the read once the state machine has applied `index`. */
export interface ReadState {
  index: number;
  /** The caller's `readIndex(ctx)` value, returned as given. */
  ctx: number;
}

/**
 * A chunk of a snapshot arriving by InstallSnapshot, to be written into a snapshot writer.
 * `offset === 0` opens a new writer for `meta` (aborting any partial one) with `resetLog`; `done`
 * means: write it, then commit the writer. The commit must become durable after every earlier
 * Ready's write (storage orders it behind them), and its completion is this Ready's durability.
 */
export interface SnapshotChunkToPersist {
  meta: SnapshotMeta;
  sizeBytes: number;
  offset: number;
  data: Uint8Array;
  done: boolean;
  /**
   * The local log does not hold the snapshot's last entry: on commit, storage must discard every
   * stored entry (including any after the snapshot's index), not only those the snapshot covers.
   * Otherwise entries after the snapshot are kept: they may already count toward a commit.
   */
  resetLog: boolean;
}

export interface Ready {
  /** Sequence number of this Ready; pass it to `persisted(id)` once this Ready is durable. */
  id: number;
  /** Role, term or leader changed since the last Ready (null: unchanged). Informational. */
  softState: SoftState | null;
  /**
   * Messages that may be sent at once, before this Ready is persisted: the leader's AppendEntries,
   * heartbeats, snapshot chunks (the driver fills in `data`), TimeoutNow, and PreVote traffic (which
   * changes no durable state). A leader may send entries before its own fsync; it counts itself
   * toward a commit only after `persisted`.
   */
  messages: Message[];
  /**
   * Hard state to persist (null: unchanged), in the same write as `entries`. Term and vote must be
   * durable before any of `messagesAfterPersist` is sent.
   */
  hardState: HardState | null;
  /**
   * Entries to append. If `entries[0].index` is not one past the last stored index, storage
   * discards every stored entry at or after it first (conflict truncation).
   */
  entries: Entry[];
  /** Snapshot chunks to persist, in order (follower receiving InstallSnapshot). */
  snapshotChunks: SnapshotChunkToPersist[];
  /**
   * Messages that depend on this Ready being durable: vote requests and grants, and every response
   * to the leader (append acknowledgements above all). Send them only after this Ready's (and so
   * every earlier Ready's) persistence completed.
   */
  messagesAfterPersist: Message[];
  /**
   * Replace the state machine with this snapshot (read it from storage) before applying
   * `committedEntries`. Already durable locally.
   */
  restoreSnapshot: SnapshotMeta | null;
  /**
   * Committed entries to apply, in order, right away: they are durable locally already (never
   * beyond this node's persisted index). Membership entries are included (the core already acted on
   * them); the no-op entry a new leader appends has empty data.
   */
  committedEntries: Entry[];
  /** Confirmed ReadIndex requests, in request order. */
  readStates: ReadState[];
}

export function isReadyEmpty(rd: Ready): boolean {
  return (
    rd.softState === null &&
    rd.messages.length === 0 &&
    rd.hardState === null &&
    rd.entries.length === 0 &&
    rd.snapshotChunks.length === 0 &&
    rd.messagesAfterPersist.length === 0 &&
    rd.restoreSnapshot === null &&
    rd.committedEntries.length === 0 &&
    rd.readStates.length === 0
  );
}
