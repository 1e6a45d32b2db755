/**
 * `FileStorage`: the Raft log, hard state and snapshots on a `Disk` (real or simulated).
 *
 * Writes go through one queue, executed one step at a time:
 * - a *group* is every write batch queued while the previous step ran (up to `maxGroupBytes`):
 *   its entries go out in one durable write (group commit: WAL segments are opened `O_DSYNC`, so
 *   the write returns once the data is durable, one thread-pool job instead of a writev and an
 *   fdatasync), its latest hard state is replaced atomically in parallel when term or vote
 *   changed; every `done` of the group then runs, in queue order. A new group is only written once
 *   the previous one is durable, so at most one unsynced write exists at any time: after a crash
 *   only the last record can be torn.
 * - a *reset* (after committing a snapshot with `resetLog`) waits until the snapshot file is
 *   durable, then writes a reset record into a fresh segment and deletes the older segments;
 * - a *compaction* deletes whole segments the durable snapshot covers;
 * - *close* persists the latest commit index and releases the files.
 * The first I/O error stops everything: every pending and later callback gets that error.
 */
import type { Entry, HardState, SnapshotMeta } from '../raft/types.js';
import {
  BlockPool,
  encodeHardState,
  encodeSegmentHeader,
  GroupEncoder,
  HARD_STATE_FILE,
  HARD_STATE_TEMP_FILE,
  SEGMENT_HEADER_BYTES,
  segmentFileName,
} from './codec.js';
import type { Disk, DiskDone } from './disk.js';
import { StorageArgumentError, StorageClosedError, StorageInvariantError, StorageIOError } from './errors.js';
import { EMPTY_HARD_STATE, recoverStorage, type SegmentInfo, type SnapshotFile } from './recovery.js';
import { SnapshotFileReader, SnapshotFileWriter, type SnapshotHost } from './snapshot-files.js';
import type {
  CreateSnapshotOptions,
  Done,
  RaftStorage,
  RecoveredState,
  SnapshotReader,
  SnapshotWriter,
  WriteBatch,
} from './types.js';

/** Figures of one group commit, for metrics (e.g. the fsync latency histogram). */
export interface SyncReport {
  entries: number;
  bytes: number;
  /** From the durable write's call to its completion. */
  durationMs: number;
}

export interface FileStorageOptions {
  disk: Disk;
  /**
   * A new segment is started when the next group would take the active one past this size.
   * Default 64 MiB: big enough that segment creation (one extra directory fsync) is rare, small
   * enough that compaction frees space soon after a snapshot. A single group may exceed it.
   */
  segmentSizeBytes?: number;
  /**
   * Most bytes of entries gathered into one group (one durable write). Default 8 MiB:
   * an fdatasync of a few MiB costs a few ms here, so bigger groups only add latency to the
   * batches that arrive first.
   */
  maxGroupBytes?: number;
  /** Called after every group commit's durable write. */
  onSync?: (report: SyncReport) => void;
  /** Monotonic milliseconds for `onSync` durations. Default `performance.now`. */
  now?: () => number;
}

export const DEFAULT_SEGMENT_SIZE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_GROUP_BYTES = 8 * 1024 * 1024;

/** Write batches gathered for one group commit; their entries are encoded as they arrive. */
interface WriteGroup {
  kind: 'group';
  dones: Done[];
  /** Null until the first batch with entries. */
  encoder: GroupEncoder | null;
  /** The latest hard state among the batches. */
  hardState: HardState | null;
  /** Entry data bytes, for the `maxGroupBytes` limit. */
  dataBytes: number;
  /** The group starts with a reset record (recovery found entries the snapshot supersedes). */
  hasReset: boolean;
  /** Every batch in the group was `soleInFlight`. */
  soleInFlight: boolean;
}
interface ResetOp {
  kind: 'reset';
  meta: SnapshotMeta;
  /** Set once the snapshot file is durable: the reset may not be written before. */
  ready: boolean;
  done: Done;
}
interface CompactOp {
  kind: 'compact';
}
interface CloseOp {
  kind: 'close';
  done: Done;
}
type Op = WriteGroup | ResetOp | CompactOp | CloseOp;

type Status = 'new' | 'open' | 'closing' | 'closed' | 'failed';

export class FileStorage implements RaftStorage {
  readonly disk: Disk;
  private readonly segmentSizeBytes: number;
  private readonly maxGroupBytes: number;
  private readonly onSync: ((report: SyncReport) => void) | undefined;
  private readonly now: () => number;

  private status: Status = 'new';
  private failureError: Error | null = null;

  // The log on disk.
  private segments: SegmentInfo[] = [];
  private activeFd: number | null = null;
  private nextSeq = 1;
  /** Recovery found entries the snapshot supersedes: the next group with entries starts with a reset record. */
  private resetPending = false;
  /** Index of the last durable entry (or of the snapshot when the log is empty after it). */
  private durableLastIndex = 0;

  // What callers have queued, for validating the next call.
  private queuedLastIndex = 0;
  /** Entries at or below this index can no longer be replaced (covered by a snapshot). */
  private queuedFloor = 0;
  private queuedHardState: HardState = { ...EMPTY_HARD_STATE };

  // Hard state.
  private durableHardState: HardState = { ...EMPTY_HARD_STATE };
  /** Latest hard state from an executed group; its commit is persisted lazily. */
  private latestHardState: HardState = { ...EMPTY_HARD_STATE };

  // Snapshots.
  private snapshot: SnapshotFile | null = null;
  private compactRequested = 0;
  private compactQueued = false;
  private snapshotNonce = 0;
  private recoveryRepairs: string[] = [];
  private readonly snapshotHost: SnapshotHost;

  // The queue.
  private queue: Op[] = [];
  private head = 0;
  /** The queued group still accepting batches (the queue's last item), if any. */
  private openGroup: WriteGroup | null = null;
  private running: Op | null = null;
  private readonly blockPool = new BlockPool();

  constructor(options: FileStorageOptions) {
    this.disk = options.disk;
    this.segmentSizeBytes = options.segmentSizeBytes ?? DEFAULT_SEGMENT_SIZE_BYTES;
    this.maxGroupBytes = options.maxGroupBytes ?? DEFAULT_MAX_GROUP_BYTES;
    this.onSync = options.onSync;
    this.now = options.now ?? (() => performance.now());
    this.snapshotHost = {
      disk: this.disk,
      failure: () => this.failureError,
      fail: (err) => this.fail(err),
      beforeCommit: (writer) => this.beforeSnapshotCommit(writer),
      snapshotDurable: (file, writer, done) => this.snapshotDurable(file, writer, done),
    };
    if (!(this.segmentSizeBytes > SEGMENT_HEADER_BYTES) || !(this.maxGroupBytes > 0)) {
      throw new StorageArgumentError(
        `bad sizes: segmentSizeBytes ${this.segmentSizeBytes}, maxGroupBytes ${this.maxGroupBytes}`,
      );
    }
  }

  /** Index of the last durable entry (the snapshot's index when no entry follows it). */
  get lastIndex(): number {
    return this.durableLastIndex;
  }

  /** What `recover()` repaired (torn tail cut off, temp files removed...), for the node's log. */
  get repairs(): readonly string[] {
    return this.recoveryRepairs;
  }

  /** Names of the WAL segment files in use, oldest first (for tests and diagnostics). */
  get segmentNames(): string[] {
    return this.segments.map((s) => s.name);
  }

  recover(): RecoveredState {
    if (this.status !== 'new') throw new StorageArgumentError('recover() may only be called once');
    const result = recoverStorage(this.disk);
    this.segments = result.segments;
    this.recoveryRepairs = result.repairs;
    this.nextSeq = result.nextSeq;
    this.resetPending = result.needsReset;
    this.durableLastIndex = result.lastIndex;
    this.queuedLastIndex = result.lastIndex;
    this.snapshot = result.snapshot;
    this.queuedFloor = result.snapshot?.meta.index ?? 0;
    this.durableHardState = { ...result.hardState };
    this.latestHardState = { ...result.hardState };
    this.queuedHardState = { ...result.hardState };
    const active = this.segments.at(-1);
    if (active) this.activeFd = this.disk.openSync(active.name, { dsync: true });
    this.status = 'open';
    return {
      hardState: { ...result.hardState },
      snapshot: result.snapshot ? result.snapshot.meta : null,
      entries: result.entries,
    };
  }

  write(batch: WriteBatch, done: Done): void {
    if (this.status !== 'open') {
      this.refuse(done);
      return;
    }
    const entries = batch.entries && batch.entries.length > 0 ? batch.entries : null;
    const hardState = batch.hardState ?? null;
    if (entries) this.checkEntries(entries);
    if (hardState) this.checkHardState(hardState);
    let bytes = 0;
    if (entries) {
      for (const entry of entries) bytes += entry.data.byteLength;
      this.queuedLastIndex = entries[entries.length - 1]!.index;
    }
    if (hardState) this.queuedHardState = { ...hardState };
    const group = this.groupFor(bytes);
    if (entries) this.encodeInto(group, entries, bytes);
    if (hardState) group.hardState = { ...hardState };
    group.soleInFlight &&= batch.soleInFlight === true;
    group.dones.push(done);
    this.pump();
  }

  createSnapshot(meta: SnapshotMeta, options?: CreateSnapshotOptions): SnapshotWriter {
    if (this.status === 'new') throw new StorageArgumentError('recover() must be called first');
    if (this.status === 'closing' || this.status === 'closed') throw new StorageClosedError();
    checkSnapshotMeta(meta);
    const copy: SnapshotMeta = {
      index: meta.index,
      term: meta.term,
      conf: { voters: [...meta.conf.voters], learners: [...meta.conf.learners] },
    };
    return new SnapshotFileWriter(this.snapshotHost, copy, options?.resetLog ?? false, ++this.snapshotNonce);
  }

  openSnapshot(): SnapshotReader | null {
    return this.snapshot ? new SnapshotFileReader(this.disk, this.snapshot) : null;
  }

  compact(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0)
      throw new StorageArgumentError(`bad compaction index ${index}`);
    if (this.status !== 'open' || index <= this.compactRequested) return;
    this.compactRequested = index;
    this.queueCompaction();
  }

  close(done: Done): void {
    if (this.status === 'failed') {
      this.releaseActiveFd();
      const failure = this.failureError!;
      this.disk.defer(() => done(failure));
      return;
    }
    if (this.status !== 'open') {
      this.refuse(done);
      return;
    }
    this.status = 'closing';
    this.enqueue({ kind: 'close', done });
    this.pump();
  }

  // ---- validation (synchronous; a refused call changes nothing) ----

  private checkEntries(entries: Entry[]): void {
    const first = entries[0]!.index;
    if (!Number.isSafeInteger(first) || first <= this.queuedFloor || first > this.queuedLastIndex + 1) {
      throw new StorageArgumentError(
        `entries start at ${first}; expected an index in (${this.queuedFloor}, ${this.queuedLastIndex + 1}]`,
      );
    }
    let previousTerm = 0;
    entries.forEach((entry, i) => {
      if (entry.index !== first + i) {
        throw new StorageArgumentError(
          `entries are not contiguous: index ${entry.index} at position ${i} after ${first}`,
        );
      }
      if (!Number.isSafeInteger(entry.term) || entry.term < previousTerm) {
        throw new StorageArgumentError(
          `entry ${entry.index} has term ${entry.term} after term ${previousTerm}`,
        );
      }
      if ((entry.type !== 0 && entry.type !== 1) || !(entry.data instanceof Uint8Array)) {
        throw new StorageArgumentError(`entry ${entry.index} has type ${entry.type} or non-byte data`);
      }
      previousTerm = entry.term;
    });
  }

  private checkHardState(state: HardState): void {
    const queued = this.queuedHardState;
    const validVote = state.vote === null || (typeof state.vote === 'string' && state.vote.length > 0);
    if (
      !Number.isSafeInteger(state.term) ||
      !Number.isSafeInteger(state.commit) ||
      state.commit < 0 ||
      !validVote
    ) {
      throw new StorageArgumentError(`malformed hard state ${JSON.stringify(state)}`);
    }
    if (state.term < queued.term) {
      throw new StorageArgumentError(`hard state term ${state.term} is behind term ${queued.term}`);
    }
    if (state.term === queued.term && queued.vote !== null && state.vote !== queued.vote) {
      throw new StorageArgumentError(
        `vote in term ${state.term} changed from ${queued.vote} to ${String(state.vote)}`,
      );
    }
  }

  // ---- the queue ----

  /** The open group if the batch fits, else a new one at the end of the queue. */
  private groupFor(bytes: number): WriteGroup {
    const open = this.openGroup;
    if (open && (open.dataBytes === 0 || open.dataBytes + bytes <= this.maxGroupBytes)) return open;
    const group: WriteGroup = {
      kind: 'group',
      dones: [],
      encoder: null,
      hardState: null,
      dataBytes: 0,
      hasReset: false,
      soleInFlight: true,
    };
    this.enqueue(group);
    this.openGroup = group;
    return group;
  }

  private encodeInto(group: WriteGroup, entries: Entry[], bytes: number): void {
    if (!group.encoder) {
      group.encoder = new GroupEncoder(this.blockPool);
      if (this.resetPending) {
        const meta = this.snapshot!.meta;
        group.encoder.addReset(meta.index, meta.term);
        group.hasReset = true;
        this.resetPending = false;
      }
    }
    group.encoder.addEntries(entries);
    group.dataBytes += bytes;
  }

  /** Queues a step; anything after a barrier needs a new group. */
  private enqueue(op: Op): void {
    this.queue.push(op);
    if (op.kind !== 'group') this.openGroup = null;
  }

  private pump(): void {
    if (this.running || this.status === 'failed') return;
    const op = this.queue[this.head];
    if (!op) {
      this.queue = [];
      this.head = 0;
      this.openGroup = null;
      return;
    }
    switch (op.kind) {
      case 'group':
        this.runGroup(this.take(op));
        return;
      case 'reset':
        if (!op.ready) return; // the snapshot writer calls pump() once its file is durable
        this.runReset(this.take(op));
        return;
      case 'compact':
        this.runCompaction(this.take(op));
        return;
      case 'close':
        this.runClose(this.take(op));
        return;
    }
  }

  private take<T extends Op>(op: T): T {
    this.head++;
    this.running = op;
    if (op === this.openGroup) this.openGroup = null;
    return op;
  }

  /**
   * The running step finished: start the next step, then report success in order. Starting the
   * next write first lets its I/O overlap with whatever the callbacks do (typically queueing the
   * next batches), which is most of the throughput of group commit on a busy event loop.
   */
  private finishStep(): void {
    if (this.status === 'failed') return;
    const finished = this.running;
    this.running = null;
    this.pump();
    // A callback may fail the storage (its bad call threw past us): the later ones hear of it.
    for (const done of donesOf(finished)) done(this.failureError);
  }

  private runGroup(group: WriteGroup): void {
    const hardState = group.hardState;
    if (hardState) this.latestHardState = hardState;
    const durable = this.durableHardState;
    const forceHardState =
      hardState !== null && (hardState.term !== durable.term || hardState.vote !== durable.vote);
    const encoder = group.encoder;
    let parts = (encoder ? 1 : 0) + (forceHardState ? 1 : 0);
    const partDone = () => {
      if (--parts === 0) this.finishStep();
    };
    if (encoder) this.append(encoder, group.hasReset, group.soleInFlight, partDone);
    if (forceHardState && hardState) this.writeHardState(hardState, partDone);
    if (parts === 0) {
      parts = 1;
      this.disk.defer(partDone);
    }
  }

  private runReset(op: ResetOp): void {
    const encoder = new GroupEncoder();
    encoder.addReset(op.meta.index, op.meta.term);
    this.append(encoder, true, false, () => this.finishStep());
  }

  private runCompaction(_op: CompactOp): void {
    this.compactQueued = false;
    const limit = Math.min(this.compactRequested, this.snapshot?.meta.index ?? 0);
    let removable = 0;
    // Whole segments only, oldest first, never the active one.
    while (removable < this.segments.length - 1 && this.segments[removable]!.maxIndex <= limit) removable++;
    const doomed = this.segments.slice(0, removable);
    this.segments = this.segments.slice(removable);
    // Unsynced unlinks may come back after a crash; recovery then skips them as covered by the snapshot.
    this.unlinkAll(
      doomed.map((s) => s.name),
      () => this.finishStep(),
    );
  }

  private runClose(_op: CloseOp): void {
    const finish = () => {
      this.releaseActiveFd();
      this.status = 'closed';
      this.finishStep();
    };
    const latest = this.latestHardState;
    const durable = this.durableHardState;
    if (latest.term !== durable.term || latest.vote !== durable.vote || latest.commit !== durable.commit) {
      this.writeHardState(latest, finish);
    } else {
      this.disk.defer(finish);
    }
  }

  // ---- WAL appends ----

  /** Writes an encoded group durably (rolling to a new segment first when needed), then calls `done`. */
  private append(encoder: GroupEncoder, hasReset: boolean, mayBlock: boolean, done: () => void): void {
    const bytes = encoder.byteLength;
    const active = this.segments.at(-1);
    const roll =
      !active ||
      this.activeFd === null ||
      hasReset ||
      (active.size > SEGMENT_HEADER_BYTES && active.size + bytes > this.segmentSizeBytes);
    if (roll) {
      this.openSegment(encoder.firstIndex, (segment) =>
        this.writeEncoded(segment, encoder, hasReset, mayBlock, done),
      );
    } else {
      this.writeEncoded(active, encoder, false, mayBlock, done);
    }
  }

  private openSegment(firstIndex: number, then: (segment: SegmentInfo) => void): void {
    const seq = this.nextSeq++;
    const name = segmentFileName(seq, firstIndex);
    this.disk.open(
      name,
      'create',
      (err, fd) => {
        if (this.status === 'failed') return;
        if (err) return this.fail(new StorageIOError('create', name, err));
        this.releaseActiveFd();
        this.activeFd = fd;
        const segment: SegmentInfo = { seq, name, firstIndex, size: 0, maxIndex: 0 };
        this.segments.push(segment);
        then(segment);
      },
      { dsync: true },
    );
  }

  private writeEncoded(
    segment: SegmentInfo,
    encoder: GroupEncoder,
    hasReset: boolean,
    mayBlock: boolean,
    done: () => void,
  ): void {
    const fd = this.activeFd!;
    const isNew = segment.size === 0;
    const chunks = encoder.seal();
    if (isNew) chunks.unshift(encodeSegmentHeader(segment.seq, segment.firstIndex));
    const bytes = (isNew ? SEGMENT_HEADER_BYTES : 0) + encoder.byteLength;
    const position = segment.size;
    segment.size += bytes;
    const started = this.onSync ? this.now() : 0;
    this.disk.appendDurable(
      fd,
      chunks,
      position,
      this.guard('durable write', segment.name, () => {
        this.onSync?.({ entries: encoder.entryCount, bytes, durationMs: this.now() - started });
        // A new segment's directory entry must be durable before anything in it is acknowledged.
        const afterDir = () => this.afterAppend(segment, encoder, hasReset, done);
        if (isNew) this.disk.syncDir(this.guard('fsync directory for', segment.name, afterDir));
        else afterDir();
      }),
      { mayBlock },
    );
  }

  private afterAppend(
    segment: SegmentInfo,
    encoder: GroupEncoder,
    hasReset: boolean,
    done: () => void,
  ): void {
    encoder.release();
    segment.maxIndex = Math.max(segment.maxIndex, encoder.maxIndex);
    this.durableLastIndex = encoder.lastIndex;
    if (!hasReset) {
      done();
      return;
    }
    // The reset record is durable: every older segment is void.
    const older = this.segments.slice(0, -1).map((s) => s.name);
    this.segments = this.segments.slice(-1);
    this.unlinkAll(older, done);
  }

  private unlinkAll(names: string[], done: () => void): void {
    if (names.length === 0) {
      this.disk.defer(done);
      return;
    }
    let remaining = names.length;
    for (const name of names) {
      this.disk.unlink(
        name,
        this.guard('delete', name, () => {
          if (--remaining === 0) done();
        }),
      );
    }
  }

  // ---- hard state ----

  /**
   * Replaces the hard state file atomically: temp file, fsync, rename, directory fsync. The
   * commit index written is capped at the durable log's end, so a restart never finds a commit
   * index pointing past its own log (the group's entries may not be durable yet).
   */
  private writeHardState(state: HardState, done: () => void): void {
    const persisted: HardState = { ...state, commit: Math.min(state.commit, this.durableLastIndex) };
    const bytes = encodeHardState(persisted);
    const tmp = HARD_STATE_TEMP_FILE;
    this.disk.open(tmp, 'create', (err, fd) => {
      if (this.status === 'failed') return;
      if (err) return this.fail(new StorageIOError('create', tmp, err));
      this.disk.writev(
        fd,
        [bytes],
        0,
        this.guard('write', tmp, () => {
          this.disk.fsync(
            fd,
            this.guard('fsync', tmp, () => {
              this.disk.close(
                fd,
                this.guard('close', tmp, () => {
                  this.disk.rename(
                    tmp,
                    HARD_STATE_FILE,
                    this.guard('rename', tmp, () => {
                      this.disk.syncDir(
                        this.guard('fsync directory for', HARD_STATE_FILE, () => {
                          this.durableHardState = persisted;
                          done();
                        }),
                      );
                    }),
                  );
                }),
              );
            }),
          );
        }),
      );
    });
  }

  // ---- snapshots ----

  private readonly resetOps = new Map<SnapshotFileWriter, ResetOp>();

  private beforeSnapshotCommit(writer: SnapshotFileWriter): void {
    if (this.status !== 'open') throw new StorageClosedError();
    if (!writer.resetLog) return;
    const index = writer.meta.index;
    const current = Math.max(this.queuedFloor, this.snapshot?.meta.index ?? 0);
    if (index < current) {
      throw new StorageArgumentError(`snapshot at ${index} cannot replace the log: it is behind ${current}`);
    }
    // Queue the reset now so that later writes are checked against, and wait for, the new log start.
    const op: ResetOp = { kind: 'reset', meta: writer.meta, ready: false, done: () => {} };
    this.resetOps.set(writer, op);
    this.enqueue(op);
    this.queuedLastIndex = index;
    this.queuedFloor = index;
  }

  private snapshotDurable(file: SnapshotFile, writer: SnapshotFileWriter, done: Done): void {
    if (this.failureError) {
      done(this.failureError);
      return;
    }
    const resetOp = this.resetOps.get(writer);
    this.resetOps.delete(writer);
    const current = this.snapshot;
    if (current && current.meta.index > file.meta.index) {
      if (resetOp) {
        const err = new StorageInvariantError(
          `snapshot ${file.meta.index} replacing the log became durable after newer snapshot ${current.meta.index}`,
        );
        this.fail(err);
        done(err);
        return;
      }
      // A slower local snapshot finished after a newer one: it is of no use.
      this.disk.unlink(
        file.name,
        this.guard('delete', file.name, () => done(null)),
      );
      return;
    }
    this.snapshot = file;
    this.queuedFloor = Math.max(this.queuedFloor, file.meta.index);
    // The older snapshot goes before `done`, so a restart right after finds one snapshot file.
    const older = current && current.name !== file.name ? [current.name] : [];
    this.unlinkAll(older, () => {
      if (resetOp) {
        resetOp.done = done;
        resetOp.ready = true;
        this.pump();
        return;
      }
      this.queueCompaction();
      done(null);
    });
  }

  private queueCompaction(): void {
    if (this.compactQueued || this.compactRequested === 0 || !this.snapshot) return;
    if (this.status !== 'open') return;
    this.compactQueued = true;
    this.enqueue({ kind: 'compact' });
    this.pump();
  }

  // ---- failure and helpers ----

  /** Wraps a disk callback: ignore it after a failure, turn an error into one, else continue. */
  private guard(operation: string, file: string, next: () => void): DiskDone {
    return (err) => {
      if (this.status === 'failed') return;
      if (err) return this.fail(new StorageIOError(operation, file, err));
      next();
    };
  }

  /** Stops the storage: every running and queued callback gets `err`, and so will every later call. */
  private fail(err: Error): void {
    if (this.status === 'failed') return;
    this.status = 'failed';
    this.failureError = err;
    const pending = [this.running, ...this.queue.slice(this.head)];
    this.running = null;
    this.queue = [];
    this.head = 0;
    this.openGroup = null;
    for (const op of pending) for (const done of donesOf(op)) done(err);
  }

  private refuse(done: Done): void {
    if (this.status === 'new') throw new StorageArgumentError('recover() must be called first');
    const err = this.status === 'failed' ? this.failureError! : new StorageClosedError();
    this.disk.defer(() => done(err));
  }

  private releaseActiveFd(): void {
    const fd = this.activeFd;
    if (fd === null) return;
    this.activeFd = null;
    this.disk.close(
      fd,
      this.guard('close', this.segments.at(-1)?.name ?? '(segment)', () => {}),
    );
  }
}

function donesOf(op: Op | null | undefined): Done[] {
  if (!op) return [];
  if (op.kind === 'group') return op.dones;
  return op.kind === 'compact' ? [] : [op.done];
}

function checkSnapshotMeta(meta: SnapshotMeta): void {
  const isIdList = (list: unknown) => Array.isArray(list) && list.every((id) => typeof id === 'string');
  if (
    !Number.isSafeInteger(meta.index) ||
    meta.index < 1 ||
    !Number.isSafeInteger(meta.term) ||
    meta.term < 0 ||
    !isIdList(meta.conf?.voters) ||
    !isIdList(meta.conf?.learners)
  ) {
    throw new StorageArgumentError(`malformed snapshot meta ${JSON.stringify(meta)}`);
  }
}
