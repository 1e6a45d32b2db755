/**
 * The simulator on the production write-ahead log: `FileStorage` over the storage package's
 * in-memory `MemDisk`, whose crash keeps only synced bytes (and a random part of unsynced directory
 * changes). Selected with `--storage wal`; the default in-memory model is faster and is what the
 * test suite runs.
 */
import { FileStorage, MemDisk } from '../../storage/index.js';
import type { SimStorage } from './mem-storage.js';
import type { Prng } from './prng.js';

/** A node's disk for the WAL-backed simulation; outlives crashes. */
export function createWalDisk(
  schedule: (delayMs: number, run: () => void) => void,
  rng: Prng,
  syncDelayMs: number,
): MemDisk {
  return new MemDisk({ schedule, random: () => rng.nextU32() / 0x1_0000_0000, syncDelayMs, ioDelayMs: 0.2 });
}

/** Opens the WAL on `disk` for one process life; `crash` cuts the power. */
export function openWalStorage(disk: MemDisk): SimStorage {
  const storage = new FileStorage({ disk }) as FileStorage & SimStorage;
  storage.crash = () => disk.crash();
  return storage;
}
