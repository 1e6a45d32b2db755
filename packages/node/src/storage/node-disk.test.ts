/**
 * NodeDisk on real files: a `dsync` descriptor really carries O_DSYNC (read back from the kernel's
 * own view in /proc/self/fdinfo), a durable append lands at its position (a small one on the main
 * thread after the caller's turn, a large one on the thread pool), a failed one reports its error,
 * and a durable append on any other descriptor is refused without writing.
 */
import * as fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { OpenOptions } from './disk.js';
import { INLINE_WRITE_MAX_BYTES, NodeDisk } from './node-disk.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-node-disk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The open flags of `fd` as the kernel reports them (octal in fdinfo). */
function kernelFlags(fd: number): number {
  const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const match = /^flags:\s+([0-7]+)$/m.exec(info);
  if (!match) throw new Error(`no flags in fdinfo of ${fd}: ${info}`);
  return Number.parseInt(match[1]!, 8);
}

function open(disk: NodeDisk, name: string, options?: OpenOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    disk.open(name, 'create', (err, fd) => (err ? reject(err) : resolve(fd)), options);
  });
}

function run(op: (done: (err: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => op((err) => (err ? reject(err) : resolve())));
}

describe('NodeDisk', () => {
  const disk = new NodeDisk(dir);
  const { O_DSYNC } = fs.constants;

  it('opens dsync descriptors with O_DSYNC, and only those', async () => {
    const durable = await open(disk, 'durable', { dsync: true });
    const plain = await open(disk, 'plain');
    const recovered = disk.openSync('recovered', { dsync: true });
    expect(kernelFlags(durable) & O_DSYNC).toBe(O_DSYNC);
    expect(kernelFlags(recovered) & O_DSYNC).toBe(O_DSYNC);
    expect(kernelFlags(plain) & O_DSYNC).toBe(0);
    for (const fd of [durable, plain, recovered]) await run((done) => disk.close(fd, done));
  });

  it('appends durably at the given position', async () => {
    const fd = await open(disk, 'log', { dsync: true });
    await run((done) => disk.appendDurable(fd, [Buffer.from('head|'), Buffer.from('one')], 0, done));
    await run((done) => disk.appendDurable(fd, [Buffer.from('|two')], 8, done));
    expect(Buffer.from(disk.readFileSync('log')).toString()).toBe('head|one|two');
    await run((done) => disk.close(fd, done));
  });

  it('makes a small durable append that may block on the main thread once the turn is over, others on the pool', async () => {
    const fd = await open(disk, 'inline', { dsync: true });
    const inlineBefore = disk.inlineWrites;
    const order: string[] = [];
    const written = new Promise<void>((resolve, reject) => {
      const done = (err: Error | null) => {
        order.push(`done ${disk.sizeSync('inline')}`);
        if (err) reject(err);
        else resolve();
      };
      disk.appendDurable(fd, [Buffer.from('small')], 0, done, { mayBlock: true });
    });
    // What the caller does in the same turn comes first: nothing is written yet.
    queueMicrotask(() => order.push(`same turn ${disk.sizeSync('inline')}`));
    setImmediate(() => order.push('next check phase'));
    await written;
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['same turn 0', 'done 5', 'next check phase']);
    expect(disk.inlineWrites).toBe(inlineBefore + 1);

    // More in flight (no mayBlock), or too large: the pool.
    await run((done) => disk.appendDurable(fd, [Buffer.from('|more')], 5, done));
    const large = Buffer.alloc(INLINE_WRITE_MAX_BYTES + 1, 7);
    await run((done) => disk.appendDurable(fd, [large], 10, done, { mayBlock: true }));
    expect(disk.sizeSync('inline')).toBe(10 + large.length);
    expect(disk.inlineWrites).toBe(inlineBefore + 1);
    await run((done) => disk.close(fd, done));
  });

  it('reports a failed inline write to its callback', async () => {
    const fd = await open(disk, 'read-only-source', { dsync: true });
    await run((done) => disk.close(fd, done));
    const readOnly = await new Promise<number>((resolve, reject) =>
      disk.open('read-only-source', 'read', (err, opened) => (err ? reject(err) : resolve(opened)), {
        dsync: true,
      }),
    );
    const inlineBefore = disk.inlineWrites;
    await expect(
      run((done) => disk.appendDurable(readOnly, [Buffer.from('x')], 0, done, { mayBlock: true })),
    ).rejects.toThrow(/EBADF/);
    expect(disk.inlineWrites).toBe(inlineBefore + 1);
    await run((done) => disk.close(readOnly, done));
  });

  it('refuses a durable append on a descriptor opened without dsync, writing nothing', async () => {
    const fd = await open(disk, 'not-durable');
    await expect(run((done) => disk.appendDurable(fd, [Buffer.from('x')], 0, done))).rejects.toThrow(
      /EINVAL.*not opened with dsync/,
    );
    expect(disk.sizeSync('not-durable')).toBe(0);
    await run((done) => disk.close(fd, done));
    // A closed dsync descriptor's number, reused by a plain open, is not taken for a dsync one.
    const durable = await open(disk, 'again', { dsync: true });
    await run((done) => disk.close(durable, done));
    const reused = await open(disk, 'reused');
    await expect(run((done) => disk.appendDurable(reused, [Buffer.from('x')], 0, done))).rejects.toThrow(
      /EINVAL/,
    );
    await run((done) => disk.close(reused, done));
  });
});
