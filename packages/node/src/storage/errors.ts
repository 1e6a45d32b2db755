/**
 * Typed errors of the storage layer. Codes are contract (the driver and operators match on them);
 * messages may change. Every error that concerns a file names it, and corruption names the byte
 * offset, so an operator can inspect the damage instead of guessing.
 */

export type StorageErrorCode =
  | 'STORAGE_CORRUPT'
  | 'STORAGE_IO'
  | 'STORAGE_CLOSED'
  | 'STORAGE_INVALID_ARGUMENT'
  | 'STORAGE_INVARIANT';

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}

/**
 * Durable data failed a check at start-up (bad checksum, bad length, gap between segments). The
 * node must stop: skipping the damage could silently lose acknowledged entries.
 */
export class CorruptionError extends StorageError {
  readonly file: string;
  readonly offset: number;
  constructor(file: string, offset: number, detail: string) {
    super('STORAGE_CORRUPT', `corrupt storage file ${file} at byte offset ${offset}: ${detail}`);
    this.name = 'CorruptionError';
    this.file = file;
    this.offset = offset;
  }
}

/** A disk operation failed. Storage stops accepting work after the first one: state on disk is in doubt. */
export class StorageIOError extends StorageError {
  readonly operation: string;
  readonly file: string;
  constructor(operation: string, file: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super('STORAGE_IO', `${operation} ${file} failed: ${reason}`, { cause });
    this.name = 'StorageIOError';
    this.operation = operation;
    this.file = file;
  }
}

/** Work queued after `close()`. */
export class StorageClosedError extends StorageError {
  constructor() {
    super('STORAGE_CLOSED', 'storage is closed');
    this.name = 'StorageClosedError';
  }
}

/** The caller broke the contract (e.g. a gap in the log). Thrown synchronously; nothing changed. */
export class StorageArgumentError extends StorageError {
  constructor(message: string) {
    super('STORAGE_INVALID_ARGUMENT', message);
    this.name = 'StorageArgumentError';
  }
}

/** An internal invariant failed; the values involved are in the message. */
export class StorageInvariantError extends StorageError {
  constructor(message: string) {
    super('STORAGE_INVARIANT', message);
    this.name = 'StorageInvariantError';
  }
}

export function invariant(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new StorageInvariantError(message());
}
