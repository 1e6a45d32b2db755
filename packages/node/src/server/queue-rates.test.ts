/**
 * Proves the sliding-window rates: zero before any sample, the average over the window while
 * messages flow, back to exactly zero one window after the queue went idle, and a fresh start
 * (no negative rates) when a queue is deleted and created again with the same name.
 */
import { describe, expect, it } from 'vitest';
import { type QueueCounts, QueueRates } from './queue-rates.js';

const counts = (publishedCount: number, ackedCount: number, name = 'jobs'): QueueCounts => ({
  name,
  publishedCount,
  ackedCount,
});

describe('QueueRates', () => {
  it('is zero for a queue never sampled', () => {
    expect(new QueueRates().rates(counts(100, 50), 1_000)).toEqual({ publishRate: 0, ackRate: 0 });
  });

  it('averages the counters over the window, then decays to zero when idle', () => {
    const rates = new QueueRates(10_000);
    // 100 published and 40 acked per second for 5 s, sampled once a second.
    for (let s = 0; s <= 5; s++) rates.sample(s * 1000, [counts(s * 100, s * 40)]);
    expect(rates.rates(counts(500, 200), 5_000)).toEqual({ publishRate: 100, ackRate: 40 });
    // Between samples the current counters count: 50 more in half a second.
    expect(rates.rates(counts(550, 200), 5_500).publishRate).toBe(100);
    // Idle from 5 s on: the rate falls as the busy samples leave the window...
    for (let s = 6; s <= 12; s++) rates.sample(s * 1000, [counts(500, 200)]);
    const falling = rates.rates(counts(500, 200), 12_000);
    expect(falling.publishRate).toBeGreaterThan(0);
    expect(falling.publishRate).toBeLessThan(100);
    // ...and is exactly zero once the window holds no change.
    for (let s = 13; s <= 16; s++) rates.sample(s * 1000, [counts(500, 200)]);
    expect(rates.rates(counts(500, 200), 16_000)).toEqual({ publishRate: 0, ackRate: 0 });
  });

  it('restarts the window of a re-created queue and forgets deleted ones', () => {
    const rates = new QueueRates(10_000);
    rates.sample(0, [counts(0, 0), counts(0, 0, 'other')]);
    rates.sample(1_000, [counts(1000, 1000), counts(10, 0, 'other')]);
    // Deleted and created again: its counters start from zero.
    expect(rates.rates(counts(5, 0), 1_500)).toEqual({ publishRate: 0, ackRate: 0 });
    rates.sample(2_000, [counts(10, 0)]);
    expect(rates.rates(counts(10, 0), 2_000)).toEqual({ publishRate: 0, ackRate: 0 });
    expect(rates.rates(counts(30, 0), 3_000)).toEqual({ publishRate: 20, ackRate: 0 });
    // 'other' was absent from the last sample: forgotten.
    expect(rates.rates(counts(20, 0, 'other'), 3_000)).toEqual({ publishRate: 0, ackRate: 0 });
  });

  it('refuses a window that is not positive', () => {
    expect(() => new QueueRates(0)).toThrow(/windowMs/);
  });
});
