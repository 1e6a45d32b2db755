/**
 * Proves the publishing pump: never more than `window` unconfirmed, sends everything once, stops
 * launching at the first failure (and reports it), stops on request after the in-flight settle,
 * and paces to `ratePerSec` (checked on a fake clock, no real waiting).
 */

import { afterEach, describe, expect, it, vi } from 'vitest';
import { startPump } from './pump.js';

/** A send whose confirms the test releases. */
function manualSends() {
  const pending: Array<{ index: number; resolve(): void; reject(error: Error): void }> = [];
  const sent: number[] = [];
  return {
    pending,
    sent,
    send: (index: number) =>
      new Promise<void>((resolve, reject) => {
        sent.push(index);
        pending.push({ index, resolve, reject });
      }),
    confirm(count: number) {
      for (const entry of pending.splice(0, count)) entry.resolve();
    },
  };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.useRealTimers();
});

describe('startPump', () => {
  it('keeps at most window unconfirmed and sends every index once, in order', async () => {
    const sends = manualSends();
    const confirmed: number[] = [];
    const pump = startPump({
      total: 10,
      window: 3,
      ratePerSec: null,
      send: sends.send,
      onConfirmed: (n) => confirmed.push(n),
    });
    expect(sends.sent).toEqual([0, 1, 2]);
    sends.confirm(2);
    await flush();
    expect(sends.sent).toEqual([0, 1, 2, 3, 4]);
    while (sends.pending.length > 0) {
      expect(sends.pending.length).toBeLessThanOrEqual(3);
      sends.confirm(1);
      await flush();
    }
    const result = await pump.result;
    expect(sends.sent).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(result).toMatchObject({ confirmed: 10, sent: 10, error: null });
    expect(confirmed).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('stops launching at the first failure and reports it once the in-flight settle', async () => {
    const sends = manualSends();
    const pump = startPump({ total: 100, window: 4, ratePerSec: null, send: sends.send });
    const failure = new Error('QUEUE_FULL');
    sends.pending.shift()!.reject(failure);
    sends.pending.shift()!.reject(new Error('second'));
    await flush();
    expect(sends.sent).toEqual([0, 1, 2, 3]);
    let settled = false;
    void pump.result.then(() => {
      settled = true;
    });
    await flush();
    expect(settled).toBe(false); // two still in flight
    sends.confirm(2);
    const result = await pump.result;
    expect(result).toMatchObject({ confirmed: 2, sent: 4, error: failure });
  });

  it('stop() ends launching; the result waits for messages in flight', async () => {
    const sends = manualSends();
    const pump = startPump({ total: 1000, window: 2, ratePerSec: null, send: sends.send });
    pump.stop();
    sends.confirm(2);
    const result = await pump.result;
    expect(result).toMatchObject({ confirmed: 2, sent: 2, error: null });
  });

  it('finishes at once when there is nothing to send', async () => {
    const result = await startPump({ total: 0, window: 1, ratePerSec: null, send: async () => {} }).result;
    expect(result).toMatchObject({ confirmed: 0, sent: 0, error: null });
  });

  it('paces launches to the rate', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const sent: number[] = [];
    const pump = startPump({
      total: 50,
      window: 1000,
      ratePerSec: 10, // one every 100 ms
      nowMs: () => Date.now(),
      send: async (index) => {
        sent.push(index);
      },
    });
    expect(sent).toEqual([0]);
    await vi.advanceTimersByTimeAsync(450);
    expect(sent).toHaveLength(5); // 0, 100, 200, 300, 400 ms
    await vi.advanceTimersByTimeAsync(4550);
    expect(sent).toHaveLength(50);
    expect((await pump.result).confirmed).toBe(50);
  });
});
