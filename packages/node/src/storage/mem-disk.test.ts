/**
 * MemDisk's crash model: what survives `crash()` is exactly what completed syncs covered (file
 * data by fdatasync/fsync or a completed durable write on a `dsync` descriptor, names by syncDir,
 * in journal order), optionally with a torn prefix of unsynced appends; completions are never
 * synchronous, are dropped by a crash, and a run is fully determined by its seed.
 */
import { describe, expect, it } from 'vitest';
import { MemDisk } from './mem-disk.js';
import { seededRandom, VirtualClock } from './virtual-clock.js';

function makeDisk(seed: number, tornWrites = false) {
  const clock = new VirtualClock();
  const disk = new MemDisk({ schedule: clock.schedule, random: seededRandom(seed), tornWrites });
  return { clock, disk };
}

/** Opens `name` and waits for the fd. */
function openFd(
  disk: MemDisk,
  clock: VirtualClock,
  name: string,
  mode: 'write' | 'create' = 'write',
  dsync = false,
): number {
  let fd = -1;
  disk.open(
    name,
    mode,
    (err, opened) => {
      if (err) throw err;
      fd = opened;
    },
    { dsync },
  );
  clock.runUntilIdle();
  return fd;
}

function call(clock: VirtualClock, op: (done: (err: Error | null) => void) => void): void {
  let result: Error | null | undefined;
  op((err) => {
    result = err;
  });
  clock.runUntilIdle();
  if (result === undefined) throw new Error('operation never completed');
  if (result) throw result;
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array | undefined) => (data ? new TextDecoder().decode(data) : undefined);

describe('MemDisk', () => {
  it('never completes synchronously', () => {
    const { clock, disk } = makeDisk(1);
    let completed = false;
    disk.open('a', 'write', () => {
      completed = true;
    });
    expect(completed).toBe(false);
    clock.runUntilIdle();
    expect(completed).toBe(true);
    let deferred = false;
    disk.defer(() => {
      deferred = true;
    });
    expect(deferred).toBe(false);
  });

  it('is deterministic for a seed, and completions can come out of order', () => {
    const order = (seed: number) => {
      const { clock, disk } = makeDisk(seed);
      const fd = openFd(disk, clock, 'a');
      const seen: number[] = [];
      for (let i = 0; i < 20; i++) disk.writev(fd, [bytes(`${i}`)], i * 2, () => seen.push(i));
      clock.runUntilIdle();
      return seen;
    };
    expect(order(7)).toEqual(order(7));
    const sorted = Array.from({ length: 20 }, (_, i) => i);
    expect(order(7)).not.toEqual(sorted);
    expect([...order(7)].sort((a, b) => a - b)).toEqual(sorted);
  });

  it('keeps synced data and names, loses the rest', () => {
    const { clock, disk } = makeDisk(2);
    const fd = openFd(disk, clock, 'log');
    call(clock, (done) => disk.writev(fd, [bytes('durable;')], 0, done));
    call(clock, (done) => disk.fdatasync(fd, done));
    call(clock, (done) => disk.syncDir(done));
    call(clock, (done) => disk.writev(fd, [bytes('lost')], 8, done));
    expect(text(disk.peek('log'))).toBe('durable;lost');
    disk.crash();
    expect(text(disk.peek('log'))).toBe('durable;');
  });

  it('a sync covers only what was written before it was called', () => {
    const { clock, disk } = makeDisk(3);
    const fd = openFd(disk, clock, 'log');
    call(clock, (done) => disk.syncDir(done));
    disk.writev(fd, [bytes('before')], 0, () => {});
    let synced = false;
    disk.fdatasync(fd, () => {
      synced = true;
    });
    disk.writev(fd, [bytes('after')], 6, () => {});
    clock.runUntilIdle();
    expect(synced).toBe(true);
    disk.crash();
    expect(text(disk.peek('log'))).toBe('before');
  });

  it('restores the synced contents after an unsynced overwrite or truncation', () => {
    const { clock, disk } = makeDisk(4, true);
    const fd = openFd(disk, clock, 'f');
    call(clock, (done) => disk.writev(fd, [bytes('0123456789')], 0, done));
    call(clock, (done) => disk.fdatasync(fd, done));
    call(clock, (done) => disk.syncDir(done));
    call(clock, (done) => disk.writev(fd, [bytes('XX')], 3, done));
    disk.truncateSync('f', 10);
    expect(text(disk.peek('f'))).toBe('012XX56789');
    const fd2 = openFd(disk, clock, 'f', 'create');
    expect(disk.peek('f')).toHaveLength(0);
    expect(fd2).toBeGreaterThan(fd);
    disk.crash();
    expect(text(disk.peek('f'))).toBe('012XX56789'); // truncateSync is durable at once
  });

  it('unsynced creates, renames and unlinks survive a crash only as a prefix of their order', () => {
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 60; seed++) {
      const { clock, disk } = makeDisk(seed);
      for (const name of ['target', 'old']) {
        const fd = openFd(disk, clock, name);
        call(clock, (done) => disk.writev(fd, [bytes(name)], 0, done));
        call(clock, (done) => disk.fsync(fd, done));
      }
      call(clock, (done) => disk.syncDir(done));
      const tmp = openFd(disk, clock, 'tmp');
      call(clock, (done) => disk.writev(tmp, [bytes('new')], 0, done));
      call(clock, (done) => disk.fsync(tmp, done));
      call(clock, (done) => disk.rename('tmp', 'target', done)); // journal: create tmp, rename
      call(clock, (done) => disk.unlink('old', done)); // journal: unlink old
      disk.crash();
      const state = disk
        .listSync()
        .map((n) => `${n}=${text(disk.peek(n))}`)
        .join(',');
      outcomes.add(state);
    }
    // Never the unlink without the rename, never a half-written target.
    expect([...outcomes].sort()).toEqual(
      ['old=old,target=new', 'old=old,target=target', 'old=old,target=target,tmp=new', 'target=new'].sort(),
    );
  });

  it('with torn writes keeps a random prefix of unsynced appends', () => {
    const lengths = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const { clock, disk } = makeDisk(seed, true);
      const fd = openFd(disk, clock, 'log');
      call(clock, (done) => disk.writev(fd, [bytes('synced|')], 0, done));
      call(clock, (done) => disk.fdatasync(fd, done));
      call(clock, (done) => disk.syncDir(done));
      call(clock, (done) => disk.writev(fd, [bytes('abcdefghij')], 7, done));
      disk.crash();
      const after = text(disk.peek('log'))!;
      expect('synced|abcdefghij'.startsWith(after)).toBe(true);
      expect(after.length).toBeGreaterThanOrEqual(7);
      lengths.add(after.length);
    }
    expect(lengths.size).toBeGreaterThan(5);
  });

  it('a durable append is one operation: durable once it completes, a torn prefix or nothing before', () => {
    const kept = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const { clock, disk } = makeDisk(seed, true);
      const fd = openFd(disk, clock, 'log', 'create', true);
      call(clock, (done) => disk.syncDir(done));
      call(clock, (done) => disk.appendDurable(fd, [bytes('acked|')], 0, done));
      expect(disk.stats).toMatchObject({ durableWrites: 1, syncs: 0 });
      let completed = false;
      disk.appendDurable(fd, [bytes('in-flight')], 6, (err) => {
        if (err) throw err;
        completed = true;
      });
      disk.crash();
      clock.runUntilIdle();
      expect(completed).toBe(false);
      const after = text(disk.peek('log'))!;
      expect('acked|in-flight'.startsWith(after)).toBe(true);
      expect(after.length).toBeGreaterThanOrEqual(6);
      kept.add(after.length);
    }
    // Every outcome from none of the unfinished write to all of it shows up.
    expect(kept.has(6)).toBe(true);
    expect(kept.size).toBeGreaterThan(5);
  });

  it('a plain writev on a dsync descriptor is durable too, as O_DSYNC makes it', () => {
    const { clock, disk } = makeDisk(8);
    const fd = openFd(disk, clock, 'log', 'create', true);
    call(clock, (done) => disk.syncDir(done));
    call(clock, (done) => disk.writev(fd, [bytes('kept')], 0, done));
    disk.crash();
    expect(text(disk.peek('log'))).toBe('kept');
  });

  it('refuses a durable append on a plain descriptor or away from the end, changing nothing', () => {
    const { clock, disk } = makeDisk(9);
    const plain = openFd(disk, clock, 'plain');
    expect(() => call(clock, (done) => disk.appendDurable(plain, [bytes('x')], 0, done))).toThrow(/EINVAL/);
    expect(disk.peek('plain')).toHaveLength(0);
    const log = openFd(disk, clock, 'log', 'create', true);
    call(clock, (done) => disk.appendDurable(log, [bytes('abc')], 0, done));
    expect(() => call(clock, (done) => disk.appendDurable(log, [bytes('x')], 1, done))).toThrow(
      /EINVAL.*its end is 3/,
    );
    expect(() => call(clock, (done) => disk.appendDurable(99, [bytes('x')], 0, done))).toThrow(/EBADF/);
    expect(text(disk.peek('log'))).toBe('abc');
  });

  it('drops completions pending at a crash and refuses old file descriptors', () => {
    const { clock, disk } = makeDisk(5);
    const fd = openFd(disk, clock, 'log');
    let called = false;
    disk.writev(fd, [bytes('x')], 0, () => {
      called = true;
    });
    disk.crash();
    clock.runUntilIdle();
    expect(called).toBe(false);
    let error: Error | null = null;
    disk.fdatasync(fd, (err) => {
      error = err;
    });
    clock.runUntilIdle();
    expect((error as Error | null)?.message).toMatch(/EBADF/);
  });

  it('injects faults without applying the failed operation', () => {
    const clock = new VirtualClock();
    const disk = new MemDisk({
      schedule: clock.schedule,
      random: seededRandom(6),
      fault: (op, name) => (op === 'writev' && name === 'bad' ? new Error('EIO: injected') : null),
    });
    const fd = openFd(disk, clock, 'bad');
    expect(() => call(clock, (done) => disk.writev(fd, [bytes('data')], 0, done))).toThrow(/EIO/);
    expect(disk.peek('bad')).toHaveLength(0);
  });
});
