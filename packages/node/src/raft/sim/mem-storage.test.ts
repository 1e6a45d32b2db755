/**
 * The simulator's disk model keeps its promises: writes complete in order and only once synced
 * (group commit), a crash loses what was not synced, a received snapshot can replace the whole log,
 * and an older snapshot never replaces a newer one. Also the PRNG and event queue are deterministic.
 */
import { describe, expect, it } from 'vitest';
import { type Entry, EntryType } from '../types.js';
import { EventQueue } from './event-queue.js';
import { MemDisk, MemStorage } from './mem-storage.js';
import { Prng } from './prng.js';

const entry = (index: number, term: number): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new Uint8Array([index]),
});
const conf = { voters: ['n1'], learners: [] };

function setup(seed = 1) {
  const queue = new EventQueue();
  const rng = new Prng(seed);
  const disk = new MemDisk();
  const env = {
    rng,
    schedule: (ms: number, run: () => void) => queue.schedule(ms, run),
    syncDelayMs: [1, 5] as [number, number],
  };
  const drain = () => {
    while (queue.runNext()) {}
  };
  return { queue, disk, env, drain, storage: new MemStorage(disk, env) };
}

describe('MemStorage', () => {
  it('completes writes in order, asynchronously, sharing syncs', () => {
    const { storage, drain } = setup();
    const done: number[] = [];
    storage.write({ entries: [entry(1, 1)] }, () => done.push(1));
    storage.write({ entries: [entry(2, 1)], hardState: { term: 1, vote: 'n1', commit: 1 } }, () =>
      done.push(2),
    );
    storage.write({ entries: [entry(3, 1)] }, () => done.push(3));
    expect(done).toEqual([]);
    drain();
    expect(done).toEqual([1, 2, 3]);
    expect(storage.recover()).toMatchObject({ hardState: { term: 1, vote: 'n1', commit: 1 } });
    expect(storage.recover().entries.map((e) => e.index)).toEqual([1, 2, 3]);
  });

  it('truncates a conflicting suffix and rejects a gap', () => {
    const { storage, disk, drain } = setup();
    storage.write({ entries: [entry(1, 1), entry(2, 1), entry(3, 1)] }, () => {});
    storage.write({ entries: [entry(2, 2)] }, () => {});
    drain();
    expect(storage.recover().entries.map((e) => `${e.index}/${e.term}`)).toEqual(['1/1', '2/2']);
    expect(() => disk.apply({ kind: 'write', batch: { entries: [entry(9, 2)] }, done: () => {} })).toThrow(
      /append at 9/,
    );
  });

  it('loses unsynced writes on a crash; callbacks of the dead process never run', () => {
    const { storage, disk, env, drain } = setup();
    let completed = 0;
    storage.write({ entries: [entry(1, 1)] }, () => completed++);
    drain();
    storage.write({ entries: [entry(2, 1)] }, () => completed++); // being synced
    storage.write({ entries: [entry(3, 1)] }, () => completed++); // queued behind
    storage.crash();
    drain();
    expect(completed).toBe(1);
    const after = new MemStorage(disk, env).recover().entries.map((e) => e.index);
    expect(after[0]).toBe(1);
    expect(after).not.toContain(3); // queued writes never reached the disk
  });

  it('a crash may keep a prefix of what was being synced, never a gap', () => {
    const kept = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const { storage, disk, env, queue } = setup(seed);
      storage.write({ entries: [entry(1, 1)] }, () => {});
      storage.write({ entries: [entry(2, 1)] }, () => {}); // 2 and 3 share the next sync
      storage.write({ entries: [entry(3, 1)] }, () => {});
      queue.runNext(); // the first sync completes, the second starts
      storage.crash();
      const indexes = new MemStorage(disk, env).recover().entries.map((e) => e.index);
      expect([[1], [1, 2], [1, 2, 3]]).toContainEqual(indexes);
      kept.add(indexes.length);
    }
    expect(kept).toEqual(new Set([1, 2, 3]));
  });

  it('a received snapshot with resetLog replaces every entry; otherwise later entries stay', () => {
    const { storage, drain } = setup();
    storage.write({ entries: [entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)] }, () => {});
    const keep = storage.createSnapshot({ index: 2, term: 1, conf });
    keep.write(new Uint8Array([1, 2]));
    keep.commit(() => {});
    drain();
    expect(storage.recover().entries.map((e) => e.index)).toEqual([3, 4]);
    const replace = storage.createSnapshot({ index: 3, term: 2, conf }, { resetLog: true });
    replace.write(new Uint8Array([3]));
    replace.commit(() => {});
    drain();
    expect(storage.recover()).toMatchObject({ snapshot: { index: 3, term: 2 }, entries: [] });
    expect(storage.openSnapshot()?.size).toBe(1);
  });

  it('never replaces a newer snapshot with an older one', () => {
    const { storage, drain } = setup();
    storage.write({ entries: [entry(1, 1), entry(2, 1), entry(3, 1)] }, () => {});
    const newer = storage.createSnapshot({ index: 3, term: 1, conf });
    const older = storage.createSnapshot({ index: 2, term: 1, conf });
    newer.commit(() => {});
    older.commit(() => {});
    drain();
    expect(storage.recover().snapshot?.index).toBe(3);
  });
});

describe('determinism helpers', () => {
  it('the PRNG repeats per seed and differs across seeds', () => {
    const draw = (seed: number) => {
      const rng = new Prng(seed);
      return Array.from({ length: 8 }, () => rng.nextU32());
    };
    expect(draw(5)).toEqual(draw(5));
    expect(draw(5)).not.toEqual(draw(6));
    const rng = new Prng(9);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[rng.int(4)]!++;
    for (const n of counts) expect(n).toBeGreaterThan(850);
  });

  it('the event queue runs by time, then in scheduling order', () => {
    const queue = new EventQueue();
    const order: string[] = [];
    queue.schedule(5, () => order.push('b'));
    queue.schedule(1, () => order.push('a'));
    queue.schedule(5, () => order.push('c'));
    queue.schedule(1, () => queue.schedule(0, () => order.push('a2')));
    while (queue.runNext()) {}
    expect(order).toEqual(['a', 'a2', 'b', 'c']);
    expect(queue.now).toBe(5);
  });
});
