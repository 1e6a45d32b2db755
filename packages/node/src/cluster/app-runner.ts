/**
 * The driver's side of the application: hands committed entries to the `ReplicatedStateMachine` in
 * order, restores it from snapshots (pausing applies until the restore finishes), and takes local
 * snapshots after enough log, pulling the application's chunks a few per event-loop turn so a large
 * state never stalls the loop.
 *
 * Raft's own entries are not the application's: the leader's no-op (an empty entry that is the
 * first of its term) and membership entries are skipped, but their indexes still count as applied.
 */
import {
  type ConfChange,
  decodeConfChange,
  type Entry,
  EntryType,
  type SnapshotMeta,
} from '../raft/index.js';
import type { Logger } from '../runtime/logger.js';
import type { RaftStorage, SnapshotWriter } from '../storage/index.js';
import { encodeSnapshotPreamble, readAppBytes, readSnapshotPreamble } from './snapshot-format.js';
import type { ReplicatedStateMachine, SnapshotSource } from './types.js';

/** Chunks pulled from the application per turn while taking a snapshot, and bytes before yielding. */
const SNAPSHOT_CHUNKS_PER_TURN = 16;
const SNAPSHOT_BYTES_PER_TURN = 4 * 1024 * 1024;
/** The snapshot writer may hold this much unwritten before we stop pulling (it writes as fast as the disk). */
const SNAPSHOT_WRITER_BUFFER_MAX = 16 * 1024 * 1024;

export interface SnapshotEvent {
  kind: 'taken' | 'restored';
  index: number;
  term: number;
  bytes: number;
  durationMs: number;
}

export interface AppRunnerHost {
  readonly storage: RaftStorage;
  readonly app: ReplicatedStateMachine;
  readonly logger: Logger;
  /** Take a local snapshot after this many bytes of applied entries. */
  readonly snapshotLogBytes: number;
  snapshotMetaAt(index: number): SnapshotMeta;
  /** The local snapshot is durable: tell the core and compact. */
  snapshotTaken(meta: SnapshotMeta, sizeBytes: number): void;
  /** Addresses to record in a snapshot of membership `meta.conf`. */
  addressBook(meta: SnapshotMeta): Map<string, string>;
  /** Addresses found in a restored snapshot. */
  learnedAddresses(book: Map<string, string>): void;
  /** A membership entry was applied (the core acted on it when it was appended). */
  confChangeApplied(entry: Entry, change: ConfChange): void;
  /** Entries up to `index` (inclusive) are applied; `entry` is the last one, null after a restore. */
  appliedTo(index: number, entry: Entry | null): void;
  snapshotEvent(event: SnapshotEvent): void;
  /** Something failed that leaves the state in doubt: the node must stop. */
  fail(err: unknown): void;
}

type Task = { kind: 'restore'; meta: SnapshotMeta } | { kind: 'apply'; entries: Entry[] };

interface LocalSnapshot {
  meta: SnapshotMeta;
  source: SnapshotSource;
  writer: SnapshotWriter;
  sizeBytes: number;
  startedMs: number;
}

export class AppRunner {
  /** Last index handed to the application (or skipped as Raft's own). */
  appliedIndex = 0;
  /** Term of the entry at `appliedIndex` (tells a leader's no-op from an empty application entry). */
  private appliedTerm = 0;
  private tasks: Task[] = [];
  private restoring = false;
  private local: LocalSnapshot | null = null;
  private lastSnapshotIndex = 0;
  private bytesSinceSnapshot = 0;
  private stopped = false;

  constructor(private readonly host: AppRunnerHost) {}

  get isRestoring(): boolean {
    return this.restoring;
  }

  /** A restore replaces everything queued before it: the snapshot covers those entries. */
  restore(meta: SnapshotMeta): void {
    this.tasks = [{ kind: 'restore', meta }];
  }

  apply(entries: Entry[]): void {
    if (entries.length > 0) this.tasks.push({ kind: 'apply', entries });
  }

  /** Runs queued work until a restore has to wait for the disk. */
  run(): void {
    while (!this.restoring && !this.stopped && this.tasks.length > 0) {
      const task = this.tasks.shift()!;
      if (task.kind === 'restore') this.startRestore(task.meta);
      else this.applyEntries(task.entries);
    }
    this.maybeSnapshot();
  }

  /** Stops: pending work is dropped and a local snapshot in progress is abandoned. */
  stop(): void {
    this.stopped = true;
    this.tasks = [];
    this.local?.writer.abort();
    this.local = null;
  }

  // ---------------------------------------------------------------------------------------------
  // Applying

  private applyEntries(entries: Entry[]): void {
    for (const entry of entries) {
      if (entry.index !== this.appliedIndex + 1) {
        throw new Error(`entry ${entry.index} to apply does not follow applied index ${this.appliedIndex}`);
      }
      const previousTerm = this.appliedTerm;
      this.appliedIndex = entry.index;
      this.appliedTerm = entry.term;
      if (entry.type === EntryType.ConfChange) {
        const change = decodeConfChange(entry.data);
        if (change === null) throw new Error(`membership entry ${entry.index} does not decode`);
        this.host.confChangeApplied(entry, change);
      } else if (!(entry.data.length === 0 && entry.term > previousTerm)) {
        // Not a new leader's no-op (which is always the first entry of its term).
        this.host.app.apply({ index: entry.index, term: entry.term, data: entry.data });
        this.bytesSinceSnapshot += entry.data.length;
      }
    }
    const last = entries[entries.length - 1]!;
    this.host.appliedTo(last.index, last);
  }

  // ---------------------------------------------------------------------------------------------
  // Restoring

  private startRestore(meta: SnapshotMeta): void {
    const reader = this.host.storage.openSnapshot();
    if (reader === null || reader.meta.index !== meta.index || reader.meta.term !== meta.term) {
      throw new Error(
        `snapshot ${meta.index}/${meta.term} to restore is not the stored one (${reader?.meta.index}/${reader?.meta.term})`,
      );
    }
    this.restoring = true;
    const startedMs = performance.now();
    const restore = async () => {
      const preamble = await readSnapshotPreamble(reader);
      this.host.learnedAddresses(preamble.addresses);
      await this.host.app.restore(readAppBytes(reader, preamble.appOffset), meta.index);
    };
    restore().then(
      () => {
        reader.close();
        if (this.stopped) return;
        this.restoring = false;
        this.appliedIndex = meta.index;
        this.appliedTerm = meta.term;
        this.lastSnapshotIndex = Math.max(this.lastSnapshotIndex, meta.index);
        this.bytesSinceSnapshot = 0;
        const durationMs = performance.now() - startedMs;
        this.host.logger.info(
          { index: meta.index, term: meta.term, bytes: reader.size, durationMs },
          'restored the state machine from a snapshot',
        );
        this.host.snapshotEvent({
          kind: 'restored',
          index: meta.index,
          term: meta.term,
          bytes: reader.size,
          durationMs,
        });
        this.host.appliedTo(meta.index, null);
        this.run();
      },
      (err: unknown) => {
        reader.close();
        if (!this.stopped) this.host.fail(err);
      },
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Local snapshots

  private maybeSnapshot(): void {
    if (this.local !== null || this.restoring || this.stopped || this.tasks.length > 0) return;
    if (this.bytesSinceSnapshot < this.host.snapshotLogBytes || this.appliedIndex <= this.lastSnapshotIndex)
      return;
    const meta = this.host.snapshotMetaAt(this.appliedIndex);
    const source = this.host.app.snapshot();
    if (source.index > meta.index) {
      throw new Error(`application snapshot at ${source.index} is ahead of the applied index ${meta.index}`);
    }
    const writer = this.host.storage.createSnapshot(meta);
    const preamble = encodeSnapshotPreamble(this.host.addressBook(meta));
    writer.write(preamble);
    this.bytesSinceSnapshot = 0;
    this.local = { meta, source, writer, sizeBytes: preamble.length, startedMs: performance.now() };
    this.host.logger.info({ index: meta.index, term: meta.term }, 'taking a snapshot');
    setImmediate(this.pullSnapshot);
  }

  /** Pulls a few chunks from the application, then yields the turn; commits after the last chunk. */
  private readonly pullSnapshot = (): void => {
    const local = this.local;
    if (local === null || this.stopped) return;
    try {
      const buffered = (local.writer as { bufferedBytes?: number }).bufferedBytes ?? 0;
      let bytes = 0;
      for (let n = 0; n < SNAPSHOT_CHUNKS_PER_TURN && bytes < SNAPSHOT_BYTES_PER_TURN; n++) {
        if (buffered + bytes > SNAPSHOT_WRITER_BUFFER_MAX) break;
        const chunk = local.source.next();
        if (chunk === null) {
          this.commitSnapshot(local);
          return;
        }
        local.writer.write(chunk);
        local.sizeBytes += chunk.length;
        bytes += chunk.length;
      }
      setImmediate(this.pullSnapshot);
    } catch (err) {
      this.host.fail(err);
    }
  };

  private commitSnapshot(local: LocalSnapshot): void {
    local.writer.commit((err) => {
      if (this.stopped || this.local !== local) return;
      this.local = null;
      if (err !== null) {
        this.host.fail(err);
        return;
      }
      const { meta, sizeBytes } = local;
      this.lastSnapshotIndex = Math.max(this.lastSnapshotIndex, meta.index);
      const durationMs = performance.now() - local.startedMs;
      this.host.logger.info(
        { index: meta.index, term: meta.term, bytes: sizeBytes, durationMs },
        'snapshot taken',
      );
      this.host.snapshotTaken(meta, sizeBytes);
      this.host.snapshotEvent({
        kind: 'taken',
        index: meta.index,
        term: meta.term,
        bytes: sizeBytes,
        durationMs,
      });
      this.maybeSnapshot();
    });
  }
}
