/**
 * Per-follower replication tracking: the in-flight window bounds pipelining, probe sends one
 * message at a time, and stale rejections do not move `next`.
 */
import { describe, expect, it } from 'vitest';
import { RaftInvariantError } from './errors.js';
import { Inflights } from './inflights.js';
import { Progress, ReplicationState } from './progress.js';

describe('Inflights', () => {
  it('fills up by count and by bytes, and frees up to an acknowledged index', () => {
    const byCount = new Inflights(3, 0);
    byCount.add(5, 10);
    byCount.add(9, 10);
    byCount.add(12, 10);
    expect(byCount.full()).toBe(true);
    expect(() => byCount.add(15, 1)).toThrow(RaftInvariantError);
    byCount.freeUpTo(9);
    expect(byCount.count).toBe(1);
    expect(byCount.full()).toBe(false);
    byCount.add(15, 1); // wraps around the ring
    byCount.add(20, 1);
    byCount.freeUpTo(19);
    expect(byCount.count).toBe(1);
    expect(byCount.bytes).toBe(1);

    const byBytes = new Inflights(100, 25);
    byBytes.add(1, 10);
    byBytes.add(2, 10);
    expect(byBytes.full()).toBe(false);
    byBytes.add(3, 10);
    expect(byBytes.full()).toBe(true);
    byBytes.freeOldest();
    expect(byBytes.full()).toBe(false);
  });

  it('rejects indexes that do not increase', () => {
    const inflights = new Inflights(4, 0);
    inflights.add(5, 1);
    expect(() => inflights.add(5, 1)).toThrow(RaftInvariantError);
  });
});

describe('Progress', () => {
  it('probe sends one message, then waits', () => {
    const pr = new Progress(11, 4, 0);
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(3, 13, 30);
    expect(pr.isPaused()).toBe(true);
    expect(pr.next).toBe(11); // probe does not move next optimistically
  });

  it('replicate pipelines up to the window and advances next optimistically', () => {
    const pr = new Progress(11, 2, 0);
    pr.maybeUpdate(10);
    pr.becomeReplicate();
    pr.sentEntries(2, 12, 20);
    expect(pr.next).toBe(13);
    pr.sentEntries(2, 14, 20);
    expect(pr.isPaused()).toBe(true);
    pr.maybeUpdate(12);
    pr.inflights.freeUpTo(12);
    expect(pr.isPaused()).toBe(false);
    expect(pr.state).toBe(ReplicationState.Replicate);
  });

  it('ignores stale rejections and uses the hint on fresh ones', () => {
    const pr = new Progress(21, 4, 0);
    expect(pr.maybeDecreaseTo(15, 3)).toBe(false); // not an answer to the current probe (prev 20)
    expect(pr.maybeDecreaseTo(20, 7)).toBe(true);
    expect(pr.next).toBe(8);
    pr.maybeUpdate(5);
    expect(pr.maybeDecreaseTo(7, 2)).toBe(true);
    expect(pr.next).toBe(6); // never below match + 1
  });

  it('in replicate, a rejection above match falls back to match + 1', () => {
    const pr = new Progress(1, 4, 0);
    pr.maybeUpdate(10);
    pr.becomeReplicate();
    pr.sentEntries(5, 15, 5);
    expect(pr.maybeDecreaseTo(9, 0)).toBe(false);
    expect(pr.maybeDecreaseTo(12, 0)).toBe(true);
    expect(pr.next).toBe(11);
  });
});
