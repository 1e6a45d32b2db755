/**
 * Proves how time enters the state machine: only from entry stamps, never backwards (a new leader
 * with a slower clock changes nothing), all due work done on any apply, in an order that depends
 * only on the state, and `nextDeadline()` telling the leader when a tick is worth proposing.
 */
import { describe, expect, it } from 'vitest';
import { bytes, Driver, T0, text } from './test-support.js';

describe('time', () => {
  it('never runs backwards: an older stamp keeps the current time', () => {
    const d = new Driver();
    d.create('q', { visibilityTimeoutMs: 1_000 });
    d.advance(5_000);
    d.publish('q', 'x');
    d.ok({ op: 'deliver', queue: 'q', consumerId: 'c', max: 1 }, T0);
    expect(d.sm.timeMs).toBe(T0 + 5_000);
    expect(d.sm.nextDeadline()).toBe(T0 + 6_000);
    d.ok({ op: 'tick' }, T0 + 5_999);
    expect(d.stats('q').inFlight).toBe(1);
    d.ok({ op: 'tick' }, Number.NaN);
    expect(d.sm.timeMs).toBe(T0 + 5_999);
  });

  it('does all due work on any command, not only on ticks', () => {
    const d = new Driver();
    d.create('q', { visibilityTimeoutMs: 1_000 });
    d.publish('q', 'x', { body: bytes('later'), delayMs: 500 });
    d.deliver('q');
    const reply = d.ok({ op: 'deliver', queue: 'q', consumerId: 'c2', max: 10 }, T0 + 1_000);
    expect(reply.messages.map((m) => [text(m.body), m.deliveryCount])).toEqual([
      ['x', 2],
      ['later', 1],
    ]);
  });

  it('reports the earliest deadline over all queues and null when nothing waits', () => {
    const d = new Driver();
    d.create('a');
    d.create('b');
    expect(d.sm.nextDeadline()).toBeNull();
    d.publish('a', { body: bytes('x'), delayMs: 300 });
    d.publish('b', { body: bytes('y'), ttlMs: 200 });
    expect(d.sm.nextDeadline()).toBe(T0 + 200);
    d.advance(200);
    expect(d.sm.nextDeadline()).toBe(T0 + 300);
    d.advance(100);
    expect(d.sm.nextDeadline()).toBeNull();
  });

  it('processes queues due at the same time in name order, so DLQ arrivals are ordered by the state alone', () => {
    for (const creationOrder of [
      ['b', 'a'],
      ['a', 'b'],
    ]) {
      const d = new Driver();
      d.create('dlq');
      for (const name of creationOrder) d.create(name, { messageTtlMs: 100, deadLetterQueue: 'dlq' });
      for (const name of [...creationOrder].reverse()) d.publish(name, name);
      d.advance(100);
      expect(d.deliverText('dlq')).toEqual(['a', 'b']);
    }
  });

  it('forgets dedup keys of an idle queue on a tick', () => {
    const d = new Driver();
    d.create('q', { dedupWindowMs: 1_000 });
    d.publish('q', { body: bytes('x'), idempotencyKey: 'k' });
    const [q] = d.sm.queuesByName();
    expect(q?.dedup.size).toBe(1);
    d.advance(999);
    expect(q?.dedup.size).toBe(1);
    d.advance(1);
    expect(q?.dedup.size).toBe(0);
    // Key expiry alone is housekeeping: the leader need not propose ticks for it.
    expect(d.sm.nextDeadline()).toBeNull();
  });

  it('a tick with nothing due changes nothing and has no effects', () => {
    const d = new Driver();
    d.create('q');
    d.publish('q', 'x');
    const before = d.sm.digest();
    expect(d.advance(0)).toEqual([]);
    expect(d.sm.digest()).toBe(before);
  });
});
