/**
 * `Disk` over `node:fs`. Every hot-path operation is a libuv callback (no promises, no closures
 * beyond the one callback); the synchronous calls are used only by start-up recovery.
 *
 * Descriptors opened with `dsync` carry `O_DSYNC`, so `appendDurable` is a single `writev` that
 * returns once the data is durable: one thread-pool job and one event-loop callback per group
 * commit, where a writev followed by an fdatasync costs two of each (and on a busy machine each
 * callback waits for the main thread, and each job for a pool thread).
 *
 * A small durable write (up to `INLINE_WRITE_MAX_BYTES`) that the caller says may block (nothing else
 * waits for this process meanwhile: one request at a time in flight) is made on the main thread
 * instead, in the event loop's next check phase (`setImmediate`), so whatever the current turn
 * sends (appends to followers, confirms to clients) leaves first. Handing a job to the pool costs
 * a futex wake of a pool thread (which often preempts the main thread on its way), an eventfd
 * write and an event-loop wake for the completion: on a small machine about an eighth of the CPU
 * per confirmed message at one message in flight, more than blocking the loop for a small write
 * costs. With more in flight (a stream of publishes, a consumer's acks) every write goes to the
 * pool: blocking there kept a leader's loop in the disk for most of its time (70 % at 1,000
 * messages/s) while clients and followers waited, and raised end-to-end latency by a third. Large
 * groups always go to the pool, where their longer writes overlap with the main thread's work.
 * A disk that stalls an inline write stalls the node's loop too, so a leader with a stuck disk
 * stops sending heartbeats and is replaced.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import {
  type AppendOptions,
  assertPlainFileName,
  type Disk,
  type DiskDone,
  type OpenMode,
  type OpenOptions,
} from './disk.js';

const OPEN_FLAGS: Record<OpenMode, number> = {
  read: fs.constants.O_RDONLY,
  write: fs.constants.O_RDWR | fs.constants.O_CREAT,
  create: fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC,
};

const FILE_MODE = 0o644;

function openFlags(mode: OpenMode, options: OpenOptions | undefined): number {
  return options?.dsync === true ? OPEN_FLAGS[mode] | fs.constants.O_DSYNC : OPEN_FLAGS[mode];
}

/** Durable writes up to this size may be made on the main thread (see the file comment). */
export const INLINE_WRITE_MAX_BYTES = 64 * 1024;

export class NodeDisk implements Disk {
  readonly dir: string;
  /** Descriptors opened with `dsync` (the only ones `appendDurable` accepts). */
  private readonly dsyncFds = new Set<number>();
  private inlineWriteCount = 0;

  /** Uses `dir` as the storage directory, creating it (and its parents) if needed. */
  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.dir = dir;
  }

  /** Durable appends made on the main thread so far (the others went to the thread pool). */
  get inlineWrites(): number {
    return this.inlineWriteCount;
  }

  private path(name: string): string {
    assertPlainFileName(name);
    return join(this.dir, name);
  }

  open(
    name: string,
    mode: OpenMode,
    done: (err: Error | null, fd: number) => void,
    options?: OpenOptions,
  ): void {
    fs.open(this.path(name), openFlags(mode, options), FILE_MODE, (err, fd) => {
      if (!err && options?.dsync === true) this.dsyncFds.add(fd);
      done(err, fd);
    });
  }

  appendDurable(
    fd: number,
    chunks: readonly Uint8Array[],
    position: number,
    done: DiskDone,
    options?: AppendOptions,
  ): void {
    if (!this.dsyncFds.has(fd)) {
      const err = Object.assign(new Error(`EINVAL: fd ${fd} was not opened with dsync`), { code: 'EINVAL' });
      setImmediate(done, err);
      return;
    }
    let bytes = 0;
    for (const chunk of chunks) bytes += chunk.byteLength;
    if (options?.mayBlock === true && bytes <= INLINE_WRITE_MAX_BYTES) {
      this.inlineWriteCount++;
      setImmediate(() => done(writeInline(fd, chunks, position, bytes)));
    } else this.writev(fd, chunks, position, done);
  }

  writev(fd: number, chunks: readonly Uint8Array[], position: number, done: DiskDone): void {
    let expected = 0;
    for (const chunk of chunks) expected += chunk.byteLength;
    fs.writev(fd, chunks, position, (err, written) => {
      if (err) done(err);
      else if (written !== expected) done(new Error(`short write: ${written} of ${expected} bytes`));
      else done(null);
    });
  }

  read(
    fd: number,
    position: number,
    length: number,
    done: (err: Error | null, bytes: Uint8Array) => void,
  ): void {
    const buffer = Buffer.allocUnsafe(length);
    fs.read(fd, buffer, 0, length, position, (err, bytesRead) => {
      done(err, err ? new Uint8Array(0) : buffer.subarray(0, bytesRead));
    });
  }

  fdatasync(fd: number, done: DiskDone): void {
    fs.fdatasync(fd, done);
  }

  fsync(fd: number, done: DiskDone): void {
    fs.fsync(fd, done);
  }

  close(fd: number, done: DiskDone): void {
    this.dsyncFds.delete(fd);
    fs.close(fd, done);
  }

  rename(from: string, to: string, done: DiskDone): void {
    fs.rename(this.path(from), this.path(to), done);
  }

  unlink(name: string, done: DiskDone): void {
    fs.unlink(this.path(name), done);
  }

  syncDir(done: DiskDone): void {
    fs.open(this.dir, fs.constants.O_RDONLY, (openErr, fd) => {
      if (openErr) {
        done(openErr);
        return;
      }
      fs.fsync(fd, (syncErr) => {
        fs.close(fd, (closeErr) => done(syncErr ?? closeErr ?? null));
      });
    });
  }

  defer(fn: () => void): void {
    setImmediate(fn);
  }

  listSync(): string[] {
    return fs.readdirSync(this.dir);
  }

  readFileSync(name: string): Uint8Array {
    return fs.readFileSync(this.path(name));
  }

  sizeSync(name: string): number {
    return fs.statSync(this.path(name)).size;
  }

  readSync(name: string, position: number, length: number): Uint8Array {
    const fd = fs.openSync(this.path(name), 'r');
    try {
      const buffer = Buffer.allocUnsafe(length);
      const bytesRead = fs.readSync(fd, buffer, 0, length, position);
      return buffer.subarray(0, bytesRead);
    } finally {
      fs.closeSync(fd);
    }
  }

  truncateSync(name: string, length: number): void {
    const fd = fs.openSync(this.path(name), 'r+');
    try {
      fs.ftruncateSync(fd, length);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  unlinkSync(name: string): void {
    fs.unlinkSync(this.path(name));
  }

  syncDirSync(): void {
    const fd = fs.openSync(this.dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  openSync(name: string, options?: OpenOptions): number {
    const fd = fs.openSync(this.path(name), openFlags('write', options), FILE_MODE);
    if (options?.dsync === true) this.dsyncFds.add(fd);
    return fd;
  }
}

/** One durable write on the calling thread; its error (a short write is one), or null. */
function writeInline(
  fd: number,
  chunks: readonly Uint8Array[],
  position: number,
  bytes: number,
): Error | null {
  try {
    const written = fs.writevSync(fd, chunks as Uint8Array[], position);
    return written === bytes ? null : new Error(`short write: ${written} of ${bytes} bytes`);
  } catch (err) {
    return err as Error;
  }
}
