/**
 * The contract between the Raft driver (or the simulator) and durable storage.
 *
 * One implementation sits on a `Disk`: the real file system in production, an in-memory disk in
 * the simulator that loses every write not yet covered by a completed sync when a node "crashes".
 * Everything above the disk (WAL format, group commit, recovery) is the same code in both.
 *
 * Completion callbacks are never invoked synchronously from the call that queued the work: the
 * real disk completes from libuv callbacks, the simulated disk from the simulator's event queue.
 */
import type { Entry, HardState, SnapshotMeta } from '../raft/types.js';

/** What survived the last run, read once at start-up. */
export interface RecoveredState {
  hardState: HardState;
  /** Newest valid snapshot, or null. Its bytes are read through {@link RaftStorage.openSnapshot}. */
  snapshot: SnapshotMeta | null;
  /** Entries after `snapshot.index` (or from index 1), contiguous and in order. */
  entries: Entry[];
}

/** A batch to make durable. Either field may be absent. */
export interface WriteBatch {
  hardState?: HardState;
  /**
   * Entries to append. If `entries[0].index` is not one past the last stored index, every stored
   * entry with index >= entries[0].index is discarded first (Raft conflict truncation).
   */
  entries?: Entry[];
  /**
   * These entries are the only ones not yet known to be committed: one request at a time is in
   * flight (a publisher awaiting each confirm), so nothing else needs this process's main thread
   * while the write is made, and storage may make a small one on that thread. Left out (or false)
   * while more is in flight, so the loop keeps serving clients and peers during the write.
   */
  soleInFlight?: boolean;
}

export type Done = (err: Error | null) => void;

/** Options of {@link RaftStorage.createSnapshot}. */
export interface CreateSnapshotOptions {
  /**
   * The snapshot replaces the whole log (a snapshot installed from the leader whose index/term the
   * local log does not contain). On `commit`, once the snapshot file is durable, every stored entry
   * is discarded and the log continues at `meta.index + 1`; `commit`'s `done` runs once that reset
   * is durable too. Writes queued after `commit` is called must start at `meta.index + 1`; they
   * wait for the reset. Default false: the log is kept (a local snapshot, or an installed one
   * whose index and term the log already has), and only `compact` removes entries.
   */
  resetLog?: boolean;
}

export interface SnapshotWriter {
  /** Append the next chunk of the snapshot's bytes. The chunk must not change until written. */
  write(chunk: Uint8Array): void;
  /**
   * Make the snapshot durable and current (checksummed, atomically renamed into place), then
   * discard log entries the snapshot covers that the caller no longer needs (see `compact`).
   */
  commit(done: Done): void;
  /** Throw away a partial snapshot (e.g. an InstallSnapshot that was superseded). */
  abort(): void;
}

export interface SnapshotReader {
  readonly meta: SnapshotMeta;
  /** Total size in bytes. */
  readonly size: number;
  /** Read up to `length` bytes at `offset`. */
  read(offset: number, length: number, done: (err: Error | null, chunk?: Uint8Array) => void): void;
  close(): void;
}

export interface RaftStorage {
  /** Load what survived. Throws (with file and offset) on corruption that is not a torn tail. */
  recover(): RecoveredState;
  /**
   * Queue a batch. `done` runs once it is durable. Batches become durable in the order they were
   * queued; batches queued while a sync is in flight share the next sync (group commit).
   */
  write(batch: WriteBatch, done: Done): void;
  /**
   * Start writing a snapshot described by `meta` (a local one, or one arriving by InstallSnapshot).
   * `options` was added later; omitting it keeps the original behaviour (the log is kept).
   */
  createSnapshot(meta: SnapshotMeta, options?: CreateSnapshotOptions): SnapshotWriter;
  /** The current snapshot, or null if there is none. */
  openSnapshot(): SnapshotReader | null;
  /** Allow entries with index <= `index` to be deleted (whole segments only). Only below a durable snapshot. */
  compact(index: number): void;
  /** Finish queued writes, then release files. */
  close(done: Done): void;
}
