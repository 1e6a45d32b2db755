/**
 * Snapshot files: a writer that streams chunks into a temporary file and makes it durable and
 * current atomically (trailer with per-block CRCs, fsync, rename, directory fsync), and a reader
 * that serves byte ranges of the current snapshot's body (for InstallSnapshot and for restoring
 * the state machine). Which snapshot is current, and what happens to the log afterwards, is the
 * storage's business: the writer hands the finished file to its `SnapshotHost`.
 */
import type { SnapshotMeta } from '../raft/types.js';
import {
  crc32,
  encodeSnapshotHeader,
  encodeSnapshotTrailer,
  SNAPSHOT_BLOCK_BYTES,
  snapshotFileName,
  snapshotTempFileName,
} from './codec.js';
import type { Disk, DiskDone } from './disk.js';
import { StorageArgumentError, StorageClosedError, StorageIOError } from './errors.js';
import type { SnapshotFile } from './recovery.js';
import type { Done, SnapshotReader, SnapshotWriter } from './types.js';

/** What a snapshot writer needs from the storage that created it. */
export interface SnapshotHost {
  readonly disk: Disk;
  /** The error that stopped the storage, or null while it works. */
  failure(): Error | null;
  /** Stop the storage: an I/O error leaves the disk in doubt. */
  fail(err: Error): void;
  /** Called before the final file is written: may throw `StorageArgumentError` to refuse the commit. */
  beforeCommit(writer: SnapshotFileWriter): void;
  /** The snapshot is durable under its final name; the host finishes the commit and calls `done`. */
  snapshotDurable(file: SnapshotFile, writer: SnapshotFileWriter, done: Done): void;
}

type WriterState = 'open' | 'committing' | 'done' | 'aborted';

export class SnapshotFileWriter implements SnapshotWriter {
  readonly meta: SnapshotMeta;
  /** Whether committing this snapshot replaces the whole log (see `CreateSnapshotOptions.resetLog`). */
  readonly resetLog: boolean;
  private readonly host: SnapshotHost;
  private readonly tempName: string;
  private readonly header: Uint8Array;
  private state: WriterState = 'open';
  private fd: number | null = null;
  private position = 0;
  private writing = false;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private bodyBytes = 0;
  private readonly blockCrcs: number[] = [];
  private blockCrc = 0;
  private blockFill = 0;
  private commitDone: Done | null = null;

  constructor(host: SnapshotHost, meta: SnapshotMeta, resetLog: boolean, nonce: number) {
    this.host = host;
    this.meta = meta;
    this.resetLog = resetLog;
    this.tempName = snapshotTempFileName(meta.index, meta.term, nonce);
    this.header = encodeSnapshotHeader(meta);
    this.enqueue(this.header);
    host.disk.open(this.tempName, 'create', (err, fd) => {
      if (err) return this.failWith(new StorageIOError('open', this.tempName, err));
      this.fd = fd;
      if (this.state === 'aborted') return this.discard();
      this.flush();
    });
  }

  /** Bytes handed to `write` and not yet written to the file: lets the producer pace itself. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  write(chunk: Uint8Array): void {
    // After a storage failure the bytes have nowhere to go; `commit` reports the failure.
    if (this.host.failure()) return;
    if (this.state !== 'open') throw new StorageArgumentError(`snapshot ${this.meta.index} is ${this.state}`);
    this.checksum(chunk);
    this.bodyBytes += chunk.byteLength;
    this.enqueue(chunk);
    this.flush();
  }

  commit(done: Done): void {
    const failure = this.host.failure();
    if (failure && this.state !== 'aborted') {
      this.state = 'done';
      this.host.disk.defer(() => done(failure));
      return;
    }
    if (this.state !== 'open') throw new StorageArgumentError(`snapshot ${this.meta.index} is ${this.state}`);
    this.host.beforeCommit(this);
    this.state = 'committing';
    this.commitDone = done;
    if (this.blockFill > 0) this.blockCrcs.push(this.blockCrc);
    this.enqueue(encodeSnapshotTrailer(this.bodyBytes, this.blockCrcs));
    this.flush();
  }

  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    this.pending = [];
    this.pendingBytes = 0;
    if (this.fd !== null && !this.writing) this.discard();
  }

  private checksum(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.byteLength) {
      const take = Math.min(SNAPSHOT_BLOCK_BYTES - this.blockFill, chunk.byteLength - at);
      this.blockCrc = crc32(chunk.subarray(at, at + take), this.blockCrc);
      this.blockFill += take;
      at += take;
      if (this.blockFill === SNAPSHOT_BLOCK_BYTES) {
        this.blockCrcs.push(this.blockCrc);
        this.blockCrc = 0;
        this.blockFill = 0;
      }
    }
  }

  private enqueue(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.byteLength;
  }

  /** One write in flight at a time; chunks queued meanwhile go out together in the next writev. */
  private flush(): void {
    if (this.writing || this.fd === null) return;
    if (this.host.failure()) {
      this.failWith(this.host.failure()!);
      return;
    }
    if (this.pending.length === 0) {
      if (this.state === 'committing') this.finish(this.fd);
      return;
    }
    const chunks = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    this.writing = true;
    this.host.disk.writev(this.fd, chunks, this.position, (err) => {
      this.writing = false;
      if (err) return this.failWith(new StorageIOError('write', this.tempName, err));
      this.position += bytes;
      if (this.state === 'aborted') return this.discard();
      this.flush();
    });
  }

  /** fsync, close, rename into place, fsync the directory: then the snapshot survives any crash. */
  private finish(fd: number): void {
    this.state = 'done';
    const disk = this.host.disk;
    const finalName = snapshotFileName(this.meta.index, this.meta.term);
    const step = (operation: string, file: string, next: () => void): DiskDone => {
      return (err) => {
        if (err) return this.failWith(new StorageIOError(operation, file, err));
        if (this.host.failure()) return this.failWith(this.host.failure()!);
        next();
      };
    };
    disk.fsync(
      fd,
      step('fsync', this.tempName, () => {
        this.fd = null;
        disk.close(
          fd,
          step('close', this.tempName, () => {
            disk.rename(
              this.tempName,
              finalName,
              step('rename', this.tempName, () => {
                disk.syncDir(step('fsync directory for', finalName, () => this.durable(finalName)));
              }),
            );
          }),
        );
      }),
    );
  }

  private durable(finalName: string): void {
    const file: SnapshotFile = {
      name: finalName,
      meta: this.meta,
      bodyOffset: this.header.byteLength,
      bodyBytes: this.bodyBytes,
    };
    const done = this.commitDone!;
    this.commitDone = null;
    this.host.snapshotDurable(file, this, done);
  }

  /** Close and delete the temporary file of an aborted snapshot. Failures only leave a temp file that recovery removes. */
  private discard(): void {
    const fd = this.fd;
    if (fd === null) return;
    this.fd = null;
    this.host.disk.close(fd, () => this.host.disk.unlink(this.tempName, () => {}));
  }

  private failWith(err: Error): void {
    if (this.state === 'aborted') return;
    this.state = 'done';
    this.host.fail(err);
    const done = this.commitDone;
    this.commitDone = null;
    done?.(this.host.failure() ?? err);
  }
}

/** Reads byte ranges of a snapshot's body; opens the file on first use. */
export class SnapshotFileReader implements SnapshotReader {
  readonly meta: SnapshotMeta;
  readonly size: number;
  private readonly disk: Disk;
  private readonly file: SnapshotFile;
  private fd: number | null = null;
  private opening: ((err: Error | null, fd: number) => void)[] | null = null;
  private closed = false;

  constructor(disk: Disk, file: SnapshotFile) {
    this.disk = disk;
    this.file = file;
    this.meta = file.meta;
    this.size = file.bodyBytes;
  }

  read(offset: number, length: number, done: (err: Error | null, chunk?: Uint8Array) => void): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new StorageArgumentError(`bad snapshot read range: offset ${offset}, length ${length}`);
    }
    if (offset > this.size) {
      throw new StorageArgumentError(`snapshot read at ${offset} is past its end (${this.size} bytes)`);
    }
    if (this.closed) {
      this.disk.defer(() => done(new StorageClosedError()));
      return;
    }
    const wanted = Math.min(length, this.size - offset);
    if (wanted === 0) {
      this.disk.defer(() => done(null, new Uint8Array(0)));
      return;
    }
    this.withFd((err, fd) => {
      if (err) return done(err);
      this.disk.read(fd, this.file.bodyOffset + offset, wanted, (readErr, bytes) => {
        if (readErr) return done(new StorageIOError('read', this.file.name, readErr));
        if (bytes.byteLength !== wanted) {
          return done(new StorageIOError('read', this.file.name, new Error(`short read at ${offset}`)));
        }
        done(null, bytes);
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fd !== null) this.disk.close(this.fd, () => {});
    this.fd = null;
  }

  /** Runs `use` with the open file: at once if open, else when the (single) open completes. */
  private withFd(use: (err: Error | null, fd: number) => void): void {
    if (this.fd !== null) {
      use(null, this.fd);
      return;
    }
    if (this.opening) {
      this.opening.push(use);
      return;
    }
    this.opening = [use];
    this.disk.open(this.file.name, 'read', (err, fd) => {
      const waiters = this.opening ?? [];
      this.opening = null;
      let failure: Error | null = err ? new StorageIOError('open', this.file.name, err) : null;
      if (!failure && this.closed) {
        this.disk.close(fd, () => {});
        failure = new StorageClosedError();
      }
      if (!failure) this.fd = fd;
      for (const waiter of waiters) waiter(failure, fd);
    });
  }
}
