/**
 * An in-memory `Disk` for the deterministic simulator and for crash tests.
 *
 * It models what a crash may leave behind on a journaling file system:
 * - file data: each file keeps the bytes covered by its last completed sync; `crash()` throws the
 *   rest away (or, with `tornWrites`, keeps a random prefix of the unsynced appended bytes, like a
 *   write cut off by power loss). A write on a `dsync` descriptor (`O_DSYNC`) is a write and a
 *   sync issued together: durable once it completes, and until then just as exposed to a crash;
 * - directory entries: creates, renames and unlinks are journaled in issue order and become durable
 *   on a completed `syncDir`; a crash keeps the durable ones plus a random prefix of the rest (the
 *   file system may have committed some metadata on its own, but never out of order);
 * - completions: never synchronous; each is scheduled on the injected event queue after a delay
 *   drawn from the injected random source, so operations may complete out of order, and a crash
 *   drops every completion still pending.
 * Same schedule + same random source + same calls = same run.
 */
import {
  type AppendOptions,
  assertPlainFileName,
  type Disk,
  type DiskDone,
  type OpenMode,
  type OpenOptions,
} from './disk.js';

export type MemDiskOperation =
  | 'open'
  | 'writev'
  | 'appendDurable'
  | 'read'
  | 'fdatasync'
  | 'fsync'
  | 'close'
  | 'rename'
  | 'unlink'
  | 'syncDir';

export interface MemDiskOptions {
  /** Run `fn` after `delayMs` of (virtual) time. Must not run it synchronously. */
  schedule: (delayMs: number, fn: () => void) => void;
  /** Uniform in [0, 1); seeded by the caller for reproducible runs. */
  random: () => number;
  /** Completion delay of data writes, reads, opens and closes is uniform in [0, this). Default 0.2 ms. */
  ioDelayMs?: number;
  /**
   * Completion delay of fdatasync, fsync and syncDir is uniform in [0, this); a durable write
   * (`dsync`) takes an I/O delay plus a sync delay. Default 2 ms.
   */
  syncDelayMs?: number;
  /** On crash keep a random prefix of each file's unsynced appended bytes. Default false. */
  tornWrites?: boolean;
  /** Fault injection: return an error to fail this operation (its effect is not applied). */
  fault?: (operation: MemDiskOperation, name: string) => Error | null;
}

const DEFAULT_IO_DELAY_MS = 0.2;
const DEFAULT_SYNC_DELAY_MS = 2;

function fsError(code: string, message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

/** A sync in flight: the file length at the call, and a copy of the bytes if they change before it completes. */
interface PendingSync {
  seq: number;
  length: number;
  copy: Uint8Array | null;
}

/** One file's contents, with what of them is durable. */
class Inode {
  bytes = new Uint8Array(64);
  length = 0;
  /** Bytes [0, syncedLength) are durable, unless `syncedCopy` holds the durable contents. */
  syncedLength = 0;
  /** Set once bytes below `syncedLength` change (overwrite, truncate) until the next sync. */
  syncedCopy: Uint8Array | null = null;
  private syncSeq = 0;
  private appliedSyncSeq = 0;
  private pendingSyncs: PendingSync[] = [];

  contents(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }

  write(position: number, chunks: readonly Uint8Array[]): void {
    let size = 0;
    for (const chunk of chunks) size += chunk.byteLength;
    this.beforeChange(position);
    this.ensureCapacity(position + size);
    if (position > this.length) this.bytes.fill(0, this.length, position);
    let at = position;
    for (const chunk of chunks) {
      this.bytes.set(chunk, at);
      at += chunk.byteLength;
    }
    this.length = Math.max(this.length, at);
  }

  truncate(length: number): void {
    this.beforeChange(length);
    this.ensureCapacity(length);
    if (length > this.length) this.bytes.fill(0, this.length, length);
    this.length = length;
  }

  startSync(): PendingSync {
    const sync: PendingSync = { seq: ++this.syncSeq, length: this.length, copy: null };
    this.pendingSyncs.push(sync);
    return sync;
  }

  completeSync(sync: PendingSync): void {
    this.pendingSyncs = this.pendingSyncs.filter((s) => s !== sync);
    // A later sync that already completed covers everything this one did.
    if (sync.seq <= this.appliedSyncSeq) return;
    this.appliedSyncSeq = sync.seq;
    this.syncedLength = sync.length;
    this.syncedCopy = sync.copy;
  }

  /** Makes the current contents durable at once (recovery's synchronous repairs). */
  syncNow(): void {
    this.completeSync(this.startSync());
  }

  /** Reverts to the durable contents, optionally keeping a random prefix of unsynced appends. */
  crash(random: () => number, tornWrites: boolean): void {
    if (this.syncedCopy) {
      const copy = this.syncedCopy;
      this.bytes = new Uint8Array(Math.max(64, copy.length));
      this.bytes.set(copy);
      this.length = copy.length;
    } else {
      const unsynced = this.length - this.syncedLength;
      const kept = tornWrites && unsynced > 0 ? Math.floor(random() * (unsynced + 1)) : 0;
      this.length = this.syncedLength + kept;
    }
    this.syncedLength = this.length;
    this.syncedCopy = null;
    this.pendingSyncs = [];
  }

  /** Bytes below `position` are about to change: keep the durable version (and in-flight syncs' views). */
  private beforeChange(position: number): void {
    if (position < this.syncedLength && !this.syncedCopy) {
      this.syncedCopy = this.bytes.slice(0, this.syncedLength);
    }
    for (const sync of this.pendingSyncs) {
      if (position < sync.length && !sync.copy) sync.copy = this.bytes.slice(0, sync.length);
    }
  }

  private ensureCapacity(size: number): void {
    if (size <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(size, this.bytes.length * 2));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }
}

type DirectoryChange = (names: Map<string, Inode>) => void;

interface OpenFile {
  name: string;
  inode: Inode;
  readOnly: boolean;
  /** Opened with `dsync`: every write is durable when it completes. */
  dsync: boolean;
}

export class MemDisk implements Disk {
  private readonly options: MemDiskOptions;
  private readonly ioDelayMs: number;
  private readonly syncDelayMs: number;
  /** The directory as processes see it now. */
  private names = new Map<string, Inode>();
  /** The directory as it would be after a crash, before replaying any of `journal`. */
  private durableNames = new Map<string, Inode>();
  /** Directory changes not yet covered by a completed `syncDir`, in issue order. */
  private journal: { seq: number; apply: DirectoryChange }[] = [];
  private journalSeq = 0;
  private files = new Map<number, OpenFile>();
  private nextFd = 3;
  /** Bumped by `crash()`; completions scheduled before it are dropped. */
  private generation = 0;
  /** Counts of completed operations, for tests and benchmarks of the simulator. */
  readonly stats = {
    writes: 0,
    bytesWritten: 0,
    syncs: 0,
    durableWrites: 0,
    /** Durable appends the caller allowed to block (`mayBlock`). */
    mayBlockWrites: 0,
    dirSyncs: 0,
    crashes: 0,
  };

  constructor(options: MemDiskOptions) {
    this.options = options;
    this.ioDelayMs = options.ioDelayMs ?? DEFAULT_IO_DELAY_MS;
    this.syncDelayMs = options.syncDelayMs ?? DEFAULT_SYNC_DELAY_MS;
  }

  /** Simulates power loss: unsynced data and directory changes are lost, pending completions never run. */
  crash(): void {
    this.generation++;
    this.stats.crashes++;
    const replayed = Math.floor(this.options.random() * (this.journal.length + 1));
    for (const change of this.journal.slice(0, replayed)) change.apply(this.durableNames);
    this.journal = [];
    this.names = new Map(this.durableNames);
    const tornWrites = this.options.tornWrites ?? false;
    for (const inode of new Set(this.names.values())) inode.crash(this.options.random, tornWrites);
    this.files.clear();
  }

  /** Current contents of a file, for tests (e.g. to flip a byte). */
  peek(name: string): Uint8Array | undefined {
    return this.names.get(name)?.contents();
  }

  /** Replaces a file's contents durably, for corruption tests. */
  poke(name: string, bytes: Uint8Array): void {
    const inode = this.names.get(name);
    if (!inode) throw fsError('ENOENT', name);
    inode.truncate(0);
    inode.write(0, [bytes]);
    inode.syncNow();
  }

  // ---- asynchronous operations ----

  open(
    name: string,
    mode: OpenMode,
    done: (err: Error | null, fd: number) => void,
    options?: OpenOptions,
  ): void {
    assertPlainFileName(name);
    const failure = this.fault('open', name);
    this.complete(this.ioDelay(), () => {
      if (failure) return done(failure, -1);
      const inode = this.openInode(name, mode);
      if (!inode) return done(fsError('ENOENT', `open ${name}`), -1);
      const fd = this.nextFd++;
      this.files.set(fd, { name, inode, readOnly: mode === 'read', dsync: options?.dsync === true });
      done(null, fd);
    });
  }

  writev(fd: number, chunks: readonly Uint8Array[], position: number, done: DiskDone): void {
    const file = this.files.get(fd);
    if (file?.dsync) {
      this.writeDurable(file, 'writev', chunks, position, done);
      return;
    }
    const failure = file ? this.fault('writev', file.name) : fsError('EBADF', `writev fd ${fd}`);
    if (!failure && file) {
      if (file.readOnly) {
        this.fail(done, fsError('EBADF', `writev ${file.name} is read only`));
        return;
      }
      // Data reaches the page cache at the call; only a sync makes it durable.
      this.writeData(file, chunks, position);
    }
    this.complete(this.ioDelay(), () => done(failure));
  }

  appendDurable(
    fd: number,
    chunks: readonly Uint8Array[],
    position: number,
    done: DiskDone,
    options?: AppendOptions,
  ): void {
    if (options?.mayBlock === true) this.stats.mayBlockWrites++;
    const file = this.files.get(fd);
    if (!file) {
      this.fail(done, fsError('EBADF', `appendDurable fd ${fd}`));
    } else if (!file.dsync) {
      this.fail(done, fsError('EINVAL', `appendDurable ${file.name} without dsync`));
    } else if (position !== file.inode.length) {
      // Only an append has the crash behaviour modelled here (a prefix of the new bytes survives).
      const end = file.inode.length;
      this.fail(done, fsError('EINVAL', `appendDurable ${file.name} at ${position}, its end is ${end}`));
    } else {
      this.writeDurable(file, 'appendDurable', chunks, position, done);
    }
  }

  read(
    fd: number,
    position: number,
    length: number,
    done: (err: Error | null, bytes: Uint8Array) => void,
  ): void {
    const file = this.files.get(fd);
    const failure = file ? this.fault('read', file.name) : fsError('EBADF', `read fd ${fd}`);
    this.complete(this.ioDelay(), () => {
      if (failure || !file) return done(failure, new Uint8Array(0));
      const end = Math.min(file.inode.length, position + length);
      done(null, file.inode.bytes.slice(Math.min(position, end), end));
    });
  }

  fdatasync(fd: number, done: DiskDone): void {
    this.sync('fdatasync', fd, done);
  }

  fsync(fd: number, done: DiskDone): void {
    this.sync('fsync', fd, done);
  }

  close(fd: number, done: DiskDone): void {
    const file = this.files.get(fd);
    const failure = file ? this.fault('close', file.name) : fsError('EBADF', `close fd ${fd}`);
    this.files.delete(fd);
    this.complete(this.ioDelay(), () => done(failure));
  }

  rename(from: string, to: string, done: DiskDone): void {
    assertPlainFileName(from);
    assertPlainFileName(to);
    const inode = this.names.get(from);
    const failure = inode ? this.fault('rename', from) : fsError('ENOENT', `rename ${from}`);
    if (!failure && inode) {
      this.names.set(to, inode);
      this.names.delete(from);
      this.journalChange((names) => {
        const moved = names.get(from);
        if (!moved) return;
        names.set(to, moved);
        names.delete(from);
      });
    }
    this.complete(this.ioDelay(), () => done(failure));
  }

  unlink(name: string, done: DiskDone): void {
    assertPlainFileName(name);
    const failure = this.names.has(name) ? this.fault('unlink', name) : fsError('ENOENT', `unlink ${name}`);
    if (!failure) this.removeName(name);
    this.complete(this.ioDelay(), () => done(failure));
  }

  syncDir(done: DiskDone): void {
    const failure = this.fault('syncDir', '.');
    const upTo = this.journalSeq;
    this.complete(this.syncDelay(), () => {
      if (!failure) {
        this.makeDirectoryDurable(upTo);
        this.stats.dirSyncs++;
      }
      done(failure);
    });
  }

  defer(fn: () => void): void {
    this.complete(0, fn);
  }

  // ---- synchronous operations (start-up recovery) ----

  listSync(): string[] {
    return [...this.names.keys()].sort();
  }

  readFileSync(name: string): Uint8Array {
    return this.existing(name).contents();
  }

  sizeSync(name: string): number {
    return this.existing(name).length;
  }

  readSync(name: string, position: number, length: number): Uint8Array {
    const inode = this.existing(name);
    const end = Math.min(inode.length, position + length);
    return inode.bytes.slice(Math.min(position, end), end);
  }

  truncateSync(name: string, length: number): void {
    const inode = this.existing(name);
    inode.truncate(length);
    inode.syncNow();
  }

  unlinkSync(name: string): void {
    this.existing(name);
    this.removeName(name);
  }

  syncDirSync(): void {
    this.makeDirectoryDurable(this.journalSeq);
  }

  openSync(name: string, options?: OpenOptions): number {
    assertPlainFileName(name);
    const inode = this.openInode(name, 'write');
    if (!inode) throw fsError('ENOENT', name);
    const fd = this.nextFd++;
    this.files.set(fd, { name, inode, readOnly: false, dsync: options?.dsync === true });
    return fd;
  }

  // ---- internals ----

  /**
   * A write on a `dsync` descriptor: the bytes reach the page cache at the call and a sync of them
   * starts with it; the completion reports both. A crash first keeps what `crash()` keeps of any
   * unsynced write (nothing, or with `tornWrites` a random prefix).
   */
  private writeDurable(
    file: OpenFile,
    operation: 'writev' | 'appendDurable',
    chunks: readonly Uint8Array[],
    position: number,
    done: DiskDone,
  ): void {
    const failure = file.readOnly
      ? fsError('EBADF', `${operation} ${file.name} is read only`)
      : this.fault(operation, file.name);
    if (failure) {
      this.fail(done, failure);
      return;
    }
    this.writeData(file, chunks, position);
    const pending = file.inode.startSync();
    this.complete(this.ioDelay() + this.syncDelay(), () => {
      file.inode.completeSync(pending);
      this.stats.durableWrites++;
      done(null);
    });
  }

  private writeData(file: OpenFile, chunks: readonly Uint8Array[], position: number): void {
    file.inode.write(position, chunks);
    this.stats.writes++;
    for (const chunk of chunks) this.stats.bytesWritten += chunk.byteLength;
  }

  private sync(operation: 'fdatasync' | 'fsync', fd: number, done: DiskDone): void {
    const file = this.files.get(fd);
    const failure = file ? this.fault(operation, file.name) : fsError('EBADF', `${operation} fd ${fd}`);
    const pending = file && !failure ? file.inode.startSync() : null;
    this.complete(this.syncDelay(), () => {
      if (pending && file) {
        file.inode.completeSync(pending);
        this.stats.syncs++;
      }
      done(failure);
    });
  }

  private openInode(name: string, mode: OpenMode): Inode | null {
    let inode = this.names.get(name);
    if (!inode) {
      if (mode === 'read') return null;
      const created = new Inode();
      inode = created;
      this.names.set(name, created);
      this.journalChange((names) => names.set(name, created));
    } else if (mode === 'create') {
      inode.truncate(0);
    }
    return inode;
  }

  private removeName(name: string): void {
    this.names.delete(name);
    this.journalChange((names) => names.delete(name));
  }

  private journalChange(apply: DirectoryChange): void {
    this.journal.push({ seq: ++this.journalSeq, apply });
  }

  private makeDirectoryDurable(upTo: number): void {
    while (this.journal.length > 0 && this.journal[0]!.seq <= upTo) {
      this.journal.shift()!.apply(this.durableNames);
    }
  }

  private existing(name: string): Inode {
    const inode = this.names.get(name);
    if (!inode) throw fsError('ENOENT', name);
    return inode;
  }

  private fault(operation: MemDiskOperation, name: string): Error | null {
    return this.options.fault?.(operation, name) ?? null;
  }

  private fail(done: DiskDone, err: Error): void {
    this.complete(this.ioDelay(), () => done(err));
  }

  private complete(delayMs: number, fn: () => void): void {
    const generation = this.generation;
    this.options.schedule(delayMs, () => {
      if (generation === this.generation) fn();
    });
  }

  private ioDelay(): number {
    return this.options.random() * this.ioDelayMs;
  }

  private syncDelay(): number {
    return this.options.random() * this.syncDelayMs;
  }
}
