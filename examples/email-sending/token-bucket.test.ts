/**
 * The token bucket on a virtual clock: a full bucket admits `capacity` at once, then one take per
 * 1/rate seconds, in arrival order; an idle spell refills up to capacity and no further; and the
 * window counter used to check the bound counts what it should.
 */

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { maxInWindow, TokenBucket } from './token-bucket.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Starts `count` takes and records the virtual time at which each resolves, in resolution order. */
function takeAll(bucket: TokenBucket, count: number): Array<{ index: number; atMs: number }> {
  const granted: Array<{ index: number; atMs: number }> = [];
  for (let index = 0; index < count; index++) {
    void bucket.take().then(() => granted.push({ index, atMs: Date.now() }));
  }
  return granted;
}

describe('TokenBucket', () => {
  it('reports the time of every token taken, which is when the take resolves', async () => {
    const grants: number[] = [];
    const bucket = new TokenBucket({
      ratePerSec: 100,
      capacity: 2,
      nowMs: () => Date.now(),
      onGrant: (atMs) => grants.push(atMs),
    });
    const granted = takeAll(bucket, 4);
    await vi.advanceTimersByTimeAsync(20);
    expect(grants).toEqual([0, 0, 10, 20]);
    expect(granted.map((g) => g.atMs)).toEqual(grants);
  });

  it('admits the capacity at once, then one take per 1/rate seconds in arrival order', async () => {
    const bucket = new TokenBucket({ ratePerSec: 100, capacity: 5, nowMs: () => Date.now() });
    const granted = takeAll(bucket, 8);

    await vi.advanceTimersByTimeAsync(0);
    expect(granted.map((g) => g.atMs)).toEqual([0, 0, 0, 0, 0]);
    expect(bucket.waiting).toBe(3);

    await vi.advanceTimersByTimeAsync(30);
    expect(granted.map((g) => g.atMs)).toEqual([0, 0, 0, 0, 0, 10, 20, 30]);
    expect(granted.map((g) => g.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(bucket.waiting).toBe(0);
  });

  it('refills during an idle spell, but never beyond its capacity', async () => {
    const bucket = new TokenBucket({ ratePerSec: 10, capacity: 3, nowMs: () => Date.now() });
    takeAll(bucket, 3);
    await vi.advanceTimersByTimeAsync(10_000);

    const granted = takeAll(bucket, 5);
    await vi.advanceTimersByTimeAsync(0);
    expect(granted).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(200);
    expect(granted.map((g) => g.atMs)).toEqual([10_000, 10_000, 10_000, 10_100, 10_200]);
  });

  it('never admits more than capacity + rate × window in any window', async () => {
    const bucket = new TokenBucket({ ratePerSec: 50, capacity: 10, nowMs: () => Date.now() });
    const granted = takeAll(bucket, 400);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(granted).toHaveLength(400);
    const times = granted.map((g) => g.atMs);
    expect(maxInWindow(times, 1_000)).toBeLessThanOrEqual(10 + 50 + 1);
    expect(maxInWindow(times, 100)).toBeLessThanOrEqual(10 + 5 + 1);
  });

  it('refuses a rate or capacity that cannot work', () => {
    expect(() => new TokenBucket({ ratePerSec: 0, capacity: 1 })).toThrow(RangeError);
    expect(() => new TokenBucket({ ratePerSec: Number.NaN, capacity: 1 })).toThrow(/ratePerSec/);
    expect(() => new TokenBucket({ ratePerSec: 1, capacity: 0.5 })).toThrow(/capacity/);
  });
});

describe('maxInWindow', () => {
  it('counts the most timestamps within any window, both ends included', () => {
    expect(maxInWindow([], 100)).toBe(0);
    expect(maxInWindow([0, 50, 100, 101, 250], 100)).toBe(3);
    expect(maxInWindow([0, 1, 2, 500, 501], 10)).toBe(3);
  });
});
