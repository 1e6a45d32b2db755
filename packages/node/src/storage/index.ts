/**
 * Durable storage for the Raft log: the public surface used by the Raft driver and the simulator.
 * Build one with `new FileStorage({ disk })` on a `NodeDisk` (production) or a `MemDisk`
 * (simulation), call `recover()` once, then `write`, `createSnapshot`, `compact`, `close`.
 */
export type { Disk, DiskDone, OpenMode } from './disk.js';
export {
  CorruptionError,
  StorageArgumentError,
  StorageClosedError,
  StorageError,
  type StorageErrorCode,
  StorageInvariantError,
  StorageIOError,
} from './errors.js';
export {
  DEFAULT_MAX_GROUP_BYTES,
  DEFAULT_SEGMENT_SIZE_BYTES,
  FileStorage,
  type FileStorageOptions,
  type SyncReport,
} from './file-storage.js';
export { MemDisk, type MemDiskOperation, type MemDiskOptions } from './mem-disk.js';
export { NodeDisk } from './node-disk.js';
export type {
  CreateSnapshotOptions,
  Done,
  RaftStorage,
  RecoveredState,
  SnapshotReader,
  SnapshotWriter,
  WriteBatch,
} from './types.js';
export { seededRandom, VirtualClock } from './virtual-clock.js';
