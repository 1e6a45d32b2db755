/** Proves the actor mailbox (order, batching, bound) and the timer wheel (order, cancel) behave as documented. */
import { describe, expect, it, vi } from 'vitest';
import { Actor, MailboxFullError } from './actor.js';
import { TimerWheel } from './timer-wheel.js';

class Recorder extends Actor<number> {
  seen: number[] = [];
  flushes: number[][] = [];
  private batch: number[] = [];
  constructor(max: number) {
    super('recorder', max);
  }
  protected handle(m: number): void {
    this.seen.push(m);
    this.batch.push(m);
  }
  protected override flush(): void {
    this.flushes.push(this.batch);
    this.batch = [];
  }
}

describe('Actor', () => {
  it('handles messages in order and flushes once per drained batch', async () => {
    const a = new Recorder(10);
    a.send(1);
    a.send(2);
    a.send(3);
    expect(a.seen).toEqual([]);
    await Promise.resolve();
    expect(a.seen).toEqual([1, 2, 3]);
    expect(a.flushes).toEqual([[1, 2, 3]]);
    a.send(4);
    await Promise.resolve();
    expect(a.flushes).toEqual([[1, 2, 3], [4]]);
  });

  it('refuses messages beyond its mailbox bound', () => {
    const a = new Recorder(2);
    expect(a.trySend(1)).toBe(true);
    expect(a.trySend(2)).toBe(true);
    expect(a.trySend(3)).toBe(false);
    expect(() => a.send(3)).toThrow(MailboxFullError);
    expect(a.pending).toBe(2);
  });
});

describe('TimerWheel', () => {
  it('fires in deadline order and skips cancelled timers', () => {
    vi.useFakeTimers();
    try {
      let now = 1000;
      const wheel = new TimerWheel({ now: () => now });
      const fired: string[] = [];
      wheel.at(1300, () => fired.push('c'));
      wheel.at(1100, () => fired.push('a'));
      const b = wheel.at(1200, () => fired.push('b'));
      wheel.at(1100, () => fired.push('a2'));
      b.cancel();
      now = 1150;
      vi.advanceTimersByTime(150);
      expect(fired).toEqual(['a', 'a2']);
      now = 1400;
      vi.advanceTimersByTime(250);
      expect(fired).toEqual(['a', 'a2', 'c']);
      wheel.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('re-arms for an earlier deadline added later', () => {
    vi.useFakeTimers();
    try {
      let now = 0;
      const wheel = new TimerWheel({ now: () => now });
      const fired: number[] = [];
      wheel.at(500, () => fired.push(500));
      wheel.at(100, () => fired.push(100));
      now = 100;
      vi.advanceTimersByTime(100);
      expect(fired).toEqual([100]);
      wheel.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
