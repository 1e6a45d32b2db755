/**
 * `Disk` over `node:fs`. Every hot-path operation is a libuv callback (no promises, no closures
 * beyond the one callback); the synchronous calls are used only by start-up recovery.
 *
 * Descriptors opened with `dsync` carry `O_DSYNC`, so `appendDurable` is a single `writev` that
 * returns once the data is durable: one thread-pool job and one event-loop callback per group
 * commit, where a writev followed by an fdatasync costs two of each (and on a busy machine each
 * callback waits for the main thread, and each job for a pool thread).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { assertPlainFileName, type Disk, type DiskDone, type OpenMode, type OpenOptions } from './disk.js';

const OPEN_FLAGS: Record<OpenMode, number> = {
  read: fs.constants.O_RDONLY,
  write: fs.constants.O_RDWR | fs.constants.O_CREAT,
  create: fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC,
};

const FILE_MODE = 0o644;

function openFlags(mode: OpenMode, options: OpenOptions | undefined): number {
  return options?.dsync === true ? OPEN_FLAGS[mode] | fs.constants.O_DSYNC : OPEN_FLAGS[mode];
}

export class NodeDisk implements Disk {
  readonly dir: string;
  /** Descriptors opened with `dsync` (the only ones `appendDurable` accepts). */
  private readonly dsyncFds = new Set<number>();

  /** Uses `dir` as the storage directory, creating it (and its parents) if needed. */
  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.dir = dir;
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

  appendDurable(fd: number, chunks: readonly Uint8Array[], position: number, done: DiskDone): void {
    if (!this.dsyncFds.has(fd)) {
      const err = Object.assign(new Error(`EINVAL: fd ${fd} was not opened with dsync`), { code: 'EINVAL' });
      setImmediate(done, err);
      return;
    }
    this.writev(fd, chunks, position, done);
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
