/**
 * In-memory {@link RaftStorage} for the simulator, with a disk model that loses what was not synced.
 *
 * `MemDisk` is the durable image of one node (it outlives crashes). `MemStorage` is one process's
 * view of it: writes and snapshot commits queue up in order, and a sync takes everything queued,
 * completes after a random virtual delay, and only then applies it to the image and calls `done`
 * (group commit: batches queued while a sync runs share the next one). A crash drops the queue,
 * except that a random prefix of the operations being synced may have reached the disk anyway
 * (written but not yet acknowledged), which is what real disks do.
 *
 * The real WAL sits on a pluggable disk; swapping it in means replacing `createSimStorage` below.
 */
import type {
  CreateSnapshotOptions,
  Done,
  RaftStorage,
  RecoveredState,
  SnapshotReader,
  SnapshotWriter,
  WriteBatch,
} from '../../storage/types.js';
import type { Entry, HardState, SnapshotMeta } from '../types.js';
import type { Prng } from './prng.js';

export interface StoredSnapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

type Operation =
  | { kind: 'write'; batch: WriteBatch; done: Done }
  | { kind: 'snapshot'; snapshot: StoredSnapshot; resetLog: boolean; done: Done };

/** The durable state of one node; survives crashes. */
export class MemDisk {
  hardState: HardState = { term: 0, vote: null, commit: 0 };
  snapshot: StoredSnapshot | null = null;
  /** Entries after the snapshot, contiguous. */
  entries: Entry[] = [];
  /** Bumped by every crash; operations of an older process never complete. */
  generation = 0;

  /** Applies one operation to the durable image. Throws on a batch that would leave a gap. */
  apply(op: Operation): void {
    if (op.kind === 'snapshot') {
      this.applySnapshot(op.snapshot, op.resetLog);
      return;
    }
    const { hardState, entries } = op.batch;
    if (hardState !== undefined) this.hardState = { ...hardState };
    const first = entries?.[0];
    if (entries === undefined || first === undefined) return;
    const base = this.snapshot?.meta.index ?? 0;
    const last = this.entries.length === 0 ? base : this.entries[this.entries.length - 1]!.index;
    if (first.index > last + 1 || first.index <= base) {
      throw new Error(`storage: append at ${first.index} but stored log is (${base}, ${last}]`);
    }
    this.entries = this.entries.slice(0, first.index - base - 1).concat(entries);
  }

  private applySnapshot(snapshot: StoredSnapshot, resetLog: boolean): void {
    // An older snapshot never replaces a newer one (a slow local snapshot finishing after an install).
    if (this.snapshot !== null && snapshot.meta.index <= this.snapshot.meta.index) return;
    this.snapshot = snapshot;
    this.entries = resetLog ? [] : this.entries.filter((e) => e.index > snapshot.meta.index);
  }
}

export interface SimStorageEnv {
  rng: Prng;
  schedule(delayMs: number, run: () => void): void;
  /** Sync latency range in virtual ms. */
  syncDelayMs: [number, number];
}

/** What the simulator needs from a node's storage: the contract, plus "the process died now". */
export interface SimStorage extends RaftStorage {
  /** Drops everything not yet durable (a random prefix of what was being synced may survive). */
  crash(): void;
}

export class MemStorage implements SimStorage {
  private queued: Operation[] = [];
  private syncing: Operation[] = [];
  private syncInFlight = false;
  private readonly generation: number;

  constructor(
    private readonly disk: MemDisk,
    private readonly env: SimStorageEnv,
  ) {
    this.generation = disk.generation;
  }

  recover(): RecoveredState {
    return {
      hardState: { ...this.disk.hardState },
      snapshot: this.disk.snapshot?.meta ?? null,
      entries: [...this.disk.entries],
    };
  }

  write(batch: WriteBatch, done: Done): void {
    this.enqueue({ kind: 'write', batch, done });
  }

  createSnapshot(meta: SnapshotMeta, options?: CreateSnapshotOptions): SnapshotWriter {
    const chunks: Uint8Array[] = [];
    let finished = false;
    return {
      write: (chunk) => {
        if (finished) throw new Error('snapshot writer already finished');
        chunks.push(chunk.slice());
      },
      commit: (done) => {
        finished = true;
        const snapshot = { meta, data: Buffer.concat(chunks) };
        this.enqueue({ kind: 'snapshot', snapshot, resetLog: options?.resetLog === true, done });
      },
      abort: () => {
        finished = true;
      },
    };
  }

  openSnapshot(): SnapshotReader | null {
    const snapshot = this.disk.snapshot;
    if (snapshot === null) return null;
    // The reader keeps the bytes it was opened on, like an open file that was since replaced.
    return {
      meta: snapshot.meta,
      size: snapshot.data.length,
      read: (offset, length, done) => {
        this.env.schedule(0, () => done(null, snapshot.data.subarray(offset, offset + length)));
      },
      close: () => {},
    };
  }

  compact(_index: number): void {
    // Entries the snapshot covers were dropped when it was committed; nothing more to free here.
  }

  close(done: Done): void {
    this.enqueue({ kind: 'write', batch: {}, done });
  }

  /**
   * The process dies: a prefix of the operations being synced reached the disk, and the next one
   * may have partly (its entries without its hard state, or the reverse: a batch is not atomic
   * until `done`); queued operations did not.
   */
  crash(): void {
    const reached = this.env.rng.int(this.syncing.length + 1);
    for (const op of this.syncing.slice(0, reached)) this.disk.apply(op);
    const torn = this.syncing[reached];
    if (torn?.kind === 'write' && this.env.rng.chance(0.5)) {
      const { hardState, entries } = torn.batch;
      const part = this.env.rng.chance(0.5) ? { entries } : { hardState };
      this.disk.apply({ ...torn, batch: part });
    }
    this.syncing = [];
    this.queued = [];
    this.disk.generation++;
  }

  private enqueue(op: Operation): void {
    this.queued.push(op);
    if (!this.syncInFlight) this.startSync();
  }

  private startSync(): void {
    this.syncInFlight = true;
    this.syncing = this.queued;
    this.queued = [];
    const [lo, hi] = this.env.syncDelayMs;
    this.env.schedule(this.env.rng.between(lo, hi), () => this.finishSync());
  }

  private finishSync(): void {
    if (this.disk.generation !== this.generation) return;
    const ops = this.syncing;
    this.syncing = [];
    for (const op of ops) this.disk.apply(op);
    // Callbacks may queue more work; it waits for the next sync, started below.
    for (const op of ops) op.done(null);
    this.syncInFlight = false;
    if (this.queued.length > 0 && this.disk.generation === this.generation) this.startSync();
  }
}

/**
 * Opens a node's storage on its durable medium. The one line to change when the simulator moves
 * onto the real WAL over an in-memory disk: return that WAL, with `crash` crashing the disk.
 */
export function createSimStorage(disk: MemDisk, env: SimStorageEnv): SimStorage {
  return new MemStorage(disk, env);
}
