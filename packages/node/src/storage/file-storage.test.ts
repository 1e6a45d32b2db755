/**
 * FileStorage on MemDisk, scenario by scenario: what a write acknowledges survives a restart;
 * group commit shares syncs and keeps callback order; conflict truncation, segment rolling,
 * snapshots, compaction and log resets land in the recovered state; bad calls are refused
 * without changing anything; the first I/O error fails every pending and later callback.
 */
import { describe, expect, it } from 'vitest';
import type { HardState } from '../raft/types.js';
import { StorageArgumentError, StorageClosedError, StorageIOError } from './errors.js';
import { FileStorage } from './file-storage.js';
import {
  Completions,
  describeLog,
  entryIsIntact,
  MemWorld,
  makeEntries,
  snapshotBody,
  snapshotMeta,
} from './test-kit.js';

function closeAndReopen(world: MemWorld, storage: FileStorage, options = {}) {
  const done = new Completions();
  storage.close(done.callback('close'));
  world.settle();
  expect(done.errors).toEqual([null]);
  return world.open(options);
}

function writeSnapshot(
  world: MemWorld,
  storage: FileStorage,
  index: number,
  term: number,
  size: number,
  resetLog = false,
) {
  const writer = storage.createSnapshot(snapshotMeta(index, term), { resetLog });
  const body = snapshotBody(index, term, size);
  for (let at = 0; at < size; at += 1000) writer.write(body.subarray(at, Math.min(size, at + 1000)));
  const done = new Completions();
  writer.commit(done.callback('commit'));
  world.settle();
  expect(done.errors).toEqual([null]);
  return body;
}

function readSnapshot(world: MemWorld, storage: FileStorage): Uint8Array {
  const reader = storage.openSnapshot();
  if (!reader) throw new Error('no snapshot');
  const out = new Uint8Array(reader.size);
  let failure: Error | null = null;
  for (let at = 0; at < reader.size; at += 4096) {
    reader.read(at, 4096, (err, chunk) => {
      if (err) failure = err;
      else out.set(chunk!, at);
    });
  }
  world.settle();
  reader.close();
  if (failure) throw failure;
  return out;
}

describe('FileStorage on MemDisk', () => {
  it('starts empty', () => {
    const world = new MemWorld(1);
    const { recovered } = world.open();
    expect(recovered).toEqual({ hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] });
  });

  it('acknowledges asynchronously, in order, and recovers exactly what was written', () => {
    const world = new MemWorld(2);
    const { storage } = world.open();
    const done = new Completions();
    const hardState: HardState = { term: 3, vote: 'n2', commit: 4 };
    storage.write({ entries: makeEntries(1, 5, 1) }, done.callback('a'));
    storage.write({ hardState, entries: makeEntries(6, 5, 3) }, done.callback('b'));
    storage.write({ hardState: { ...hardState, commit: 10 } }, done.callback('c'));
    expect(done.results).toEqual([]);
    world.settle();
    expect(done.labels).toEqual(['a', 'b', 'c']);
    expect(done.errors).toEqual([null, null, null]);
    expect(storage.lastIndex).toBe(10);

    const { recovered } = closeAndReopen(world, storage);
    expect(recovered.hardState).toEqual({ term: 3, vote: 'n2', commit: 10 });
    expect(describeLog(recovered.entries)).toEqual(
      describeLog([...makeEntries(1, 5, 1), ...makeEntries(6, 5, 3)]),
    );
    expect(recovered.entries.every(entryIsIntact)).toBe(true);
  });

  it('group commit: batches queued during a sync share the next one', () => {
    const world = new MemWorld(3);
    const { storage } = world.open();
    const done = new Completions();
    storage.write({ entries: makeEntries(1, 1, 1) }, done.callback('0'));
    for (let i = 1; i < 200; i++)
      storage.write({ entries: makeEntries(i + 1, 1, 1) }, done.callback(String(i)));
    world.settle();
    expect(done.labels).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
    // The first batch is written alone; the other 199 were queued meanwhile and go out together,
    // each group as one durable (O_DSYNC) write: no separate fdatasync.
    expect(world.disk.stats.durableWrites).toBe(2);
    expect(world.disk.stats.writes).toBe(2);
    expect(world.disk.stats.syncs).toBe(0);
  });

  it('lets a write block only when every batch in it holds the only entries in flight', () => {
    const world = new MemWorld(3);
    const { storage } = world.open();
    const done = new Completions();
    storage.write({ entries: makeEntries(1, 1, 1), soleInFlight: true }, done.callback('alone'));
    world.settle();
    expect(world.disk.stats).toMatchObject({ durableWrites: 1, mayBlockWrites: 1 });
    // 2 is written alone; 3 and 4 queue meanwhile and share one write, which 4 keeps off the thread.
    storage.write({ entries: makeEntries(2, 1, 1), soleInFlight: true }, done.callback('2'));
    storage.write({ entries: makeEntries(3, 1, 1), soleInFlight: true }, done.callback('3'));
    storage.write({ entries: makeEntries(4, 1, 1) }, done.callback('4'));
    world.settle();
    expect(world.disk.stats).toMatchObject({ durableWrites: 3, mayBlockWrites: 2 });
    storage.write({ entries: makeEntries(5, 1, 1), soleInFlight: false }, done.callback('5'));
    world.settle();
    expect(world.disk.stats).toMatchObject({ durableWrites: 4, mayBlockWrites: 2 });
    expect(done.labels).toEqual(['alone', '2', '3', '4', '5']);
    expect(done.errors).toEqual([null, null, null, null, null]);
  });

  it('truncates the tail on a conflict, also across segments', () => {
    const world = new MemWorld(4);
    const { storage } = world.open({ segmentSizeBytes: 600 });
    const done = new Completions();
    for (let i = 0; i < 10; i++) {
      storage.write({ entries: makeEntries(i * 3 + 1, 3, 1) }, done.callback(`w${i}`));
      world.settle();
    }
    expect(storage.segmentNames.length).toBeGreaterThan(3);
    storage.write({ entries: makeEntries(5, 2, 2) }, done.callback('conflict'));
    storage.write({ entries: makeEntries(7, 1, 2) }, done.callback('after'));
    world.settle();
    expect(done.errors.every((e) => e === null)).toBe(true);
    expect(storage.lastIndex).toBe(7);
    const { recovered } = closeAndReopen(world, storage, { segmentSizeBytes: 600 });
    expect(describeLog(recovered.entries)).toEqual(
      describeLog([...makeEntries(1, 4, 1), ...makeEntries(5, 3, 2)]),
    );
  });

  it('rolls segments at the configured size and reads them all back', () => {
    const world = new MemWorld(5);
    const { storage } = world.open({ segmentSizeBytes: 4096 });
    const done = new Completions();
    for (let i = 0; i < 100; i++) {
      storage.write({ entries: makeEntries(i * 4 + 1, 4, 1 + Math.floor(i / 10)) }, done.callback(`w${i}`));
      if (i % 7 === 0) world.settle();
    }
    world.settle();
    expect(storage.segmentNames.length).toBeGreaterThan(10);
    for (const name of storage.segmentNames) expect(world.disk.peek(name)!.length).toBeLessThan(4096 + 1024);
    const { recovered } = closeAndReopen(world, storage, { segmentSizeBytes: 4096 });
    expect(recovered.entries.map((e) => e.index)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    expect(recovered.entries.every(entryIsIntact)).toBe(true);
  });

  it('writes, reads back and recovers a snapshot, then compacts whole segments below it', () => {
    const world = new MemWorld(6);
    const { storage } = world.open({ segmentSizeBytes: 2048 });
    const done = new Completions();
    for (let i = 0; i < 40; i++)
      storage.write({ entries: makeEntries(i * 5 + 1, 5, 2) }, done.callback(`w${i}`));
    world.settle();
    const segmentsBefore = storage.segmentNames.length;
    const body = writeSnapshot(world, storage, 150, 2, 200_000);
    expect(Buffer.from(readSnapshot(world, storage)).equals(Buffer.from(body))).toBe(true);
    storage.compact(150);
    world.settle();
    expect(storage.segmentNames.length).toBeLessThan(segmentsBefore);
    const { storage: reopened, recovered } = closeAndReopen(world, storage, { segmentSizeBytes: 2048 });
    expect(recovered.snapshot).toEqual(snapshotMeta(150, 2));
    expect(recovered.entries.map((e) => e.index)).toEqual(Array.from({ length: 50 }, (_, i) => i + 151));
    expect(Buffer.from(readSnapshot(world, reopened)).equals(Buffer.from(body))).toBe(true);
  });

  it('keeps only the newest snapshot file', () => {
    const world = new MemWorld(7);
    const { storage } = world.open();
    const done = new Completions();
    storage.write({ entries: makeEntries(1, 30, 1) }, done.callback('w'));
    world.settle();
    writeSnapshot(world, storage, 10, 1, 100);
    writeSnapshot(world, storage, 20, 1, 100);
    expect(world.disk.listSync().filter((n) => n.startsWith('snap-'))).toHaveLength(1);
    expect(storage.openSnapshot()?.meta.index).toBe(20);
  });

  it('discards a local snapshot that finishes after a newer one', () => {
    const world = new MemWorld(8);
    const { storage } = world.open();
    const done = new Completions();
    storage.write({ entries: makeEntries(1, 30, 1) }, done.callback('w'));
    world.settle();
    const slow = storage.createSnapshot(snapshotMeta(10, 1));
    slow.write(new Uint8Array(10));
    writeSnapshot(world, storage, 20, 1, 100);
    slow.commit(done.callback('slow'));
    world.settle();
    expect(done.errors).toEqual([null, null]);
    expect(storage.openSnapshot()?.meta.index).toBe(20);
    expect(world.disk.listSync().filter((n) => n.startsWith('snap-'))).toEqual([
      'snap-00000000000000000020-00000000000000000001.snap',
    ]);
  });

  it('replaces the whole log with an installed snapshot (resetLog)', () => {
    const world = new MemWorld(9);
    const { storage } = world.open({ segmentSizeBytes: 1024 });
    const done = new Completions();
    storage.write(
      { hardState: { term: 1, vote: 'n1', commit: 0 }, entries: makeEntries(1, 40, 1) },
      done.callback('old'),
    );
    world.settle();
    const writer = storage.createSnapshot(snapshotMeta(100, 4), { resetLog: true });
    writer.write(snapshotBody(100, 4, 5000));
    writer.commit(done.callback('install'));
    // Queued before the install is durable: must wait for it and continue at 101.
    storage.write({ entries: makeEntries(101, 3, 4) }, done.callback('next'));
    world.settle();
    expect(done.labels).toEqual(['old', 'install', 'next']);
    expect(done.errors).toEqual([null, null, null]);
    expect(storage.segmentNames).toHaveLength(1);
    const { recovered } = closeAndReopen(world, storage);
    expect(recovered.snapshot?.index).toBe(100);
    expect(describeLog(recovered.entries)).toEqual(['101:4', '102:4', '103:4']);
  });

  it('drops log entries that disagree with the snapshot, and writes a reset before the next entries', () => {
    const world = new MemWorld(10);
    const { storage } = world.open();
    const done = new Completions();
    storage.write({ entries: makeEntries(1, 10, 1) }, done.callback('w'));
    world.settle();
    // A snapshot whose term at index 8 disagrees with the log, committed without resetLog (as
    // after a crash that kept the snapshot but lost the reset).
    writeSnapshot(world, storage, 8, 2, 10);
    const first = closeAndReopen(world, storage);
    expect(first.recovered.entries).toEqual([]);
    expect(first.storage.lastIndex).toBe(8);
    first.storage.write({ entries: makeEntries(9, 2, 2) }, done.callback('after'));
    world.settle();
    const second = closeAndReopen(world, first.storage);
    expect(describeLog(second.recovered.entries)).toEqual(['9:2', '10:2']);
  });

  it('persists the commit index lazily, never beyond the durable log', () => {
    const world = new MemWorld(11);
    const { storage } = world.open();
    const done = new Completions();
    storage.write(
      { hardState: { term: 1, vote: null, commit: 0 }, entries: makeEntries(1, 3, 1) },
      done.callback('a'),
    );
    storage.write({ hardState: { term: 1, vote: null, commit: 3 } }, done.callback('b'));
    world.settle();
    world.disk.crash();
    // Commit-only changes wait for the next term/vote change or close: after a crash it is older.
    expect(world.open().recovered.hardState).toEqual({ term: 1, vote: null, commit: 0 });

    const { storage: again } = world.open();
    again.write(
      { entries: makeEntries(4, 2, 2), hardState: { term: 2, vote: 'n1', commit: 5 } },
      done.callback('c'),
    );
    world.settle();
    // Written alongside entries 4..5, so capped at the log durable before them.
    const { recovered } = closeAndReopen(world, again);
    expect(recovered.hardState).toEqual({ term: 2, vote: 'n1', commit: 5 });
  });

  it('refuses bad calls synchronously and changes nothing', () => {
    const world = new MemWorld(12);
    const { storage } = world.open();
    const done = new Completions();
    storage.write(
      { hardState: { term: 5, vote: 'n1', commit: 0 }, entries: makeEntries(1, 3, 5) },
      done.callback('ok'),
    );
    const bad: [string, () => void][] = [
      ['gap', () => storage.write({ entries: makeEntries(5, 1, 5) }, done.callback('x'))],
      [
        'not contiguous',
        () =>
          storage.write({ entries: [...makeEntries(4, 1, 5), ...makeEntries(6, 1, 5)] }, done.callback('x')),
      ],
      [
        'term going down in a batch',
        () =>
          storage.write({ entries: [...makeEntries(4, 1, 5), ...makeEntries(5, 1, 4)] }, done.callback('x')),
      ],
      ['index 0', () => storage.write({ entries: makeEntries(0, 1, 5) }, done.callback('x'))],
      [
        'term going back',
        () => storage.write({ hardState: { term: 4, vote: null, commit: 0 } }, done.callback('x')),
      ],
      [
        'second vote in a term',
        () => storage.write({ hardState: { term: 5, vote: 'n2', commit: 0 } }, done.callback('x')),
      ],
      [
        'negative commit',
        () => storage.write({ hardState: { term: 5, vote: 'n1', commit: -1 } }, done.callback('x')),
      ],
      [
        'bad snapshot meta',
        () => storage.createSnapshot({ index: 0, term: 1, conf: { voters: [], learners: [] } }),
      ],
      ['bad compaction index', () => storage.compact(-1)],
    ];
    for (const [what, call] of bad) expect(call, what).toThrow(StorageArgumentError);
    world.settle();
    expect(done.labels).toEqual(['ok']);
    storage.write({ entries: makeEntries(4, 1, 5) }, done.callback('next'));
    world.settle();
    const { recovered } = closeAndReopen(world, storage);
    expect(describeLog(recovered.entries)).toEqual(['1:5', '2:5', '3:5', '4:5']);
    expect(recovered.hardState).toEqual({ term: 5, vote: 'n1', commit: 0 });
  });

  it('refuses writes before recover() and after close()', () => {
    const world = new MemWorld(13);
    const { storage } = world.open();
    const done = new Completions();
    storage.close(done.callback('close'));
    storage.write({ entries: makeEntries(1, 1, 1) }, done.callback('late'));
    world.settle();
    expect(done.labels).toEqual(['close', 'late']);
    expect(done.errors[1]).toBeInstanceOf(StorageClosedError);
    const unrecovered = new FileStorage({ disk: world.disk });
    expect(() => unrecovered.write({ entries: makeEntries(1, 1, 1) }, done.callback('early'))).toThrow(
      StorageArgumentError,
    );
  });

  it('fails every pending and later callback after an I/O error', () => {
    let failSync = false;
    const world = new MemWorld(14, {
      fault: (op) => (failSync && op === 'appendDurable' ? new Error('EIO: injected') : null),
    });
    const { storage } = world.open();
    const done = new Completions();
    storage.write({ entries: makeEntries(1, 2, 1) }, done.callback('durable'));
    world.settle();
    failSync = true;
    storage.write({ entries: makeEntries(3, 2, 1) }, done.callback('failed-sync'));
    storage.write({ entries: makeEntries(5, 2, 1) }, done.callback('queued'));
    world.settle();
    storage.write({ entries: makeEntries(7, 2, 1) }, done.callback('later'));
    const writer = storage.createSnapshot(snapshotMeta(2, 1));
    writer.write(new Uint8Array(3));
    writer.commit(done.callback('snapshot'));
    storage.close(done.callback('close'));
    world.settle();
    expect(done.labels).toEqual(['durable', 'failed-sync', 'queued', 'later', 'snapshot', 'close']);
    expect(done.errors[0]).toBeNull();
    for (const err of done.errors.slice(1)) {
      expect(err).toBeInstanceOf(StorageIOError);
      expect(err?.message).toContain('durable write wal-');
    }
    expect(done.pending).toBe(0);
  });

  it('a crash loses only what was not acknowledged', () => {
    const world = new MemWorld(15);
    const { storage } = world.open();
    const done = new Completions();
    storage.write({ entries: makeEntries(1, 5, 1) }, done.callback('acked'));
    world.settle();
    storage.write({ entries: makeEntries(6, 5, 1) }, done.callback('in flight'));
    // The group's durable write is issued (its bytes are in the page cache) but has not completed.
    expect(world.disk.stats.writes).toBe(2);
    world.disk.crash();
    world.settle();
    expect(done.labels).toEqual(['acked']);
    const { recovered } = world.open();
    expect(recovered.entries.length === 5 || recovered.entries.length === 10).toBe(true);
    expect(recovered.entries.every(entryIsIntact)).toBe(true);
  });
});
