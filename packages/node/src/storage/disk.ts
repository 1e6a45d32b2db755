/**
 * The file operations durable storage needs, behind an interface so the same WAL, snapshot and
 * recovery code runs on the real file system (`NodeDisk`) and on the simulator's in-memory disk
 * (`MemDisk`), which loses whatever a completed sync did not cover when a node "crashes".
 *
 * A disk is one flat directory; names are plain file names (no separators). Asynchronous methods
 * complete through their callback, never synchronously from the call. The `*Sync` methods exist
 * for start-up recovery only, when nothing else is running.
 */

export type DiskDone = (err: Error | null) => void;

/**
 * `read`: an existing file, read only. `write`: read and write, created if absent, contents kept.
 * `create`: read and write, created if absent, truncated to zero bytes.
 */
export type OpenMode = 'read' | 'write' | 'create';

export interface OpenOptions {
  /**
   * Every write through this descriptor completes only once its bytes, and the file size needed to
   * read them back, are durable (`O_DSYNC`): a write and an fdatasync in one operation. Used for
   * WAL segments, so a group commit is one thread-pool job and one callback instead of two of each.
   */
  dsync?: boolean;
}

/** Options of {@link Disk.appendDurable}. */
export interface AppendOptions {
  /**
   * Nothing else is waiting for this process while the write is made (see `WriteBatch.soleInFlight`):
   * a small write may then block the calling thread rather than go through the thread pool.
   */
  mayBlock?: boolean;
}

export interface Disk {
  open(
    name: string,
    mode: OpenMode,
    done: (err: Error | null, fd: number) => void,
    options?: OpenOptions,
  ): void;
  /**
   * Write every chunk, in order, starting at `position`. Fails unless all bytes were written.
   * Durable on completion only on a descriptor opened with `dsync`; otherwise after a sync.
   */
  writev(fd: number, chunks: readonly Uint8Array[], position: number, done: DiskDone): void;
  /**
   * Append every chunk at `position` (the file's current end) on a descriptor opened with `dsync`,
   * completing once the bytes are durable. Fails (changing nothing) on any other descriptor. A
   * crash before completion may keep part of the bytes, exactly as with a write whose fdatasync
   * had not finished: the torn tail recovery cuts off. `MemDisk` keeps a random prefix of them.
   */
  appendDurable(
    fd: number,
    chunks: readonly Uint8Array[],
    position: number,
    done: DiskDone,
    options?: AppendOptions,
  ): void;
  /** Read up to `length` bytes at `position`; fewer only at end of file. */
  read(
    fd: number,
    position: number,
    length: number,
    done: (err: Error | null, bytes: Uint8Array) => void,
  ): void;
  /** Make the file's data (and the size needed to read it back) durable. */
  fdatasync(fd: number, done: DiskDone): void;
  /** Like fdatasync, plus all metadata. Used before renaming a file into place. */
  fsync(fd: number, done: DiskDone): void;
  close(fd: number, done: DiskDone): void;
  /** Atomically replace `to` by `from`. Durable only after `syncDir`. */
  rename(from: string, to: string, done: DiskDone): void;
  /** Durable only after `syncDir`. */
  unlink(name: string, done: DiskDone): void;
  /** Make every create, rename and unlink issued before this call durable. */
  syncDir(done: DiskDone): void;
  /** Run `fn` soon, never synchronously: used to report results that need no disk operation. */
  defer(fn: () => void): void;

  /** Names of every file in the directory. */
  listSync(): string[];
  /** Whole contents of a file. */
  readFileSync(name: string): Uint8Array;
  sizeSync(name: string): number;
  /** Read up to `length` bytes at `position` of a file (opened and closed by the call). */
  readSync(name: string, position: number, length: number): Uint8Array;
  /** Cut a file to `length` bytes and make that durable before returning. */
  truncateSync(name: string, length: number): void;
  unlinkSync(name: string): void;
  syncDirSync(): void;
  /** Open a file for read and write (created if absent) without blocking on later I/O. */
  openSync(name: string, options?: OpenOptions): number;
}

/** Guards against a name escaping the directory (e.g. `../x`), which would be a bug in the caller. */
export function assertPlainFileName(name: string): void {
  if (name.length === 0 || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
    throw new Error(`not a plain file name: ${JSON.stringify(name)}`);
  }
}
