/**
 * Helpers shared by the storage tests (and usable by the simulator's tests): deterministic entry
 * contents that can be checked after a crash, a MemDisk-backed storage on a virtual clock, and
 * small wrappers that turn callbacks into awaited results. Not used by production code.
 */
import type { Entry, EntryType, SnapshotMeta } from '../raft/types.js';
import { FileStorage, type FileStorageOptions } from './file-storage.js';
import { MemDisk, type MemDiskOptions } from './mem-disk.js';
import type { RecoveredState } from './types.js';
import { seededRandom, VirtualClock } from './virtual-clock.js';

/** Contents of entry (index, term): recognisable, varied in length (0..199 bytes), cheap to check. */
export function entryData(index: number, term: number, length = (index * 31 + term * 17) % 200): Uint8Array {
  const data = new Uint8Array(length);
  let x = (index * 2654435761 + term * 40503) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return data;
}

export function makeEntry(index: number, term: number, length?: number): Entry {
  const type: EntryType = index % 11 === 0 ? 1 : 0;
  return { index, term, type, data: entryData(index, term, length) };
}

export function makeEntries(first: number, count: number, term: number, length?: number): Entry[] {
  return Array.from({ length: count }, (_, i) => makeEntry(first + i, term, length));
}

/** True when the entry holds exactly what `makeEntry` would have written for its index and term. */
export function entryIsIntact(entry: Entry): boolean {
  const expected = makeEntry(entry.index, entry.term, entry.data.byteLength);
  return entry.type === expected.type && Buffer.from(entry.data).equals(Buffer.from(expected.data));
}

/** Compact description of a log for readable test failures: `index:term` per entry. */
export function describeLog(entries: readonly Entry[]): string[] {
  return entries.map((e) => `${e.index}:${e.term}`);
}

export function snapshotMeta(index: number, term: number): SnapshotMeta {
  return { index, term, conf: { voters: ['n1', 'n2', 'n3'], learners: [] } };
}

/** Bytes of a snapshot body: recognisable and length-checked. */
export function snapshotBody(index: number, term: number, length: number): Uint8Array {
  return entryData(index * 7 + 3, term, length);
}

/** A MemDisk on a virtual clock, and storages opened on it. */
export class MemWorld {
  readonly clock = new VirtualClock();
  readonly random: () => number;
  readonly disk: MemDisk;

  constructor(seed: number, diskOptions: Partial<MemDiskOptions> = {}) {
    this.random = seededRandom(seed);
    this.disk = new MemDisk({ schedule: this.clock.schedule, random: this.random, ...diskOptions });
  }

  open(options: Partial<FileStorageOptions> = {}): { storage: FileStorage; recovered: RecoveredState } {
    const storage = new FileStorage({ disk: this.disk, ...options });
    const recovered = storage.recover();
    return { storage, recovered };
  }

  /** Runs the virtual clock until nothing is pending. */
  settle(): void {
    this.clock.runUntilIdle();
  }
}

/** Collects callback outcomes in call order, for asserting completion order and errors. */
export class Completions {
  readonly results: { label: string; err: Error | null }[] = [];
  pending = 0;

  callback(label: string): (err: Error | null) => void {
    this.pending++;
    let called = false;
    return (err) => {
      if (called) throw new Error(`callback ${label} called twice`);
      called = true;
      this.pending--;
      this.results.push({ label, err });
    };
  }

  get labels(): string[] {
    return this.results.map((r) => r.label);
  }

  get errors(): (Error | null)[] {
    return this.results.map((r) => r.err);
  }
}
