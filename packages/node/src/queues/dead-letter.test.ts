/**
 * Proves dead-lettering across queues and redrive: the DLQ's own limits apply to arrivals, a
 * deleted DLQ drops and counts, evictions caused by arrivals do not cascade (even in a DLQ
 * cycle), a consumer's rejection (nack with deadLetter) moves a message at once with reason
 * `rejected` (dropped and counted without a DLQ), and redrive moves messages back to their origin
 * or a target, skipping what cannot move.
 */
import { describe, expect, it } from 'vitest';
import { QueueStateMachine } from './state-machine.js';
import { bytes, Driver, refOf, text } from './test-support.js';

function poison(d: Driver, queue: string, count: number): void {
  d.publish(queue, ...Array.from({ length: count }, (_, i) => `${queue}-${i}`));
  d.nack(queue, d.deliver(queue, count));
}

describe('a late ack of a dead-lettered message', () => {
  /** One message in `q` (max 2 deliveries, DLQ `dlq`) whose second lease expired: it is in the DLQ now. */
  function deadLetteredByLeaseExpiry(d: Driver) {
    d.create('dlq');
    d.create('q', { maxDeliveries: 2, deadLetterQueue: 'dlq', visibilityTimeoutMs: 1_000 });
    d.publish('q', 'job');
    d.nack('q', d.deliver('q'));
    const [last] = d.deliver('q');
    d.advance(1_001);
    expect(d.stats('dlq').ready).toBe(1);
    return last!;
  }

  const ackOf = (d: Driver, queue: string, m: { seq: number; deliveryId: number }) =>
    d.ok({ op: 'ack', items: [refOf(queue, m)] }).results[0];

  it('answers LEASE_EXPIRED while the copy waits in the DLQ: the message will be delivered from there', () => {
    const d = new Driver();
    const last = deadLetteredByLeaseExpiry(d);
    expect(ackOf(d, 'q', last)).toMatchObject({
      ok: false,
      code: 'LEASE_EXPIRED',
      message: expect.stringContaining('dead-lettered to dlq'),
    });
    expect(d.stats('dlq').ready).toBe(1); // the ack changed nothing
  });

  it('remembers the move across a snapshot restore (the index is rebuilt from the DLQ’s records)', () => {
    const d = new Driver();
    const last = deadLetteredByLeaseExpiry(d);
    const restored = new Driver(QueueStateMachine.restore(d.sm.snapshot(512)));
    restored.nowMs = d.nowMs;
    expect(ackOf(restored, 'q', last)).toMatchObject({ ok: false, code: 'LEASE_EXPIRED' });
  });

  it('answers ok once the DLQ copy is gone: it was delivered and settled before this ack', () => {
    const d = new Driver();
    const last = deadLetteredByLeaseExpiry(d);
    d.ack('dlq', ...d.deliver('dlq'));
    expect(ackOf(d, 'q', last)).toEqual({ ok: true });
  });

  it('a message acked in its own queue answers ok to a repeated ack (nothing was dead-lettered)', () => {
    const d = new Driver();
    d.create('dlq');
    d.create('q', { maxDeliveries: 2, deadLetterQueue: 'dlq' });
    d.publish('q', 'job');
    const [m] = d.deliver('q');
    d.ack('q', m!);
    expect(ackOf(d, 'q', m!)).toEqual({ ok: true });
  });
});

describe('dead-letter queue', () => {
  it('respects the DLQ limit: with reject the arrival is dropped and counted', () => {
    const d = new Driver();
    d.create('dlq', { maxMessages: 1 });
    d.create('q', { maxDeliveries: 1, deadLetterQueue: 'dlq' });
    poison(d, 'q', 2);
    expect(d.stats('q').counters).toMatchObject({ deadLettered: 1, dropped: 1 });
    expect(d.stats('dlq')).toMatchObject({ ready: 1, counters: { published: 1, rejected: 1 } });
  });

  it('with drop-oldest the DLQ drops its own oldest message for the arrival', () => {
    const d = new Driver();
    d.create('dlq', { maxMessages: 1, overflow: 'drop-oldest' });
    d.create('q', { maxDeliveries: 1, deadLetterQueue: 'dlq' });
    poison(d, 'q', 2);
    expect(d.stats('q').counters.deadLettered).toBe(2);
    expect(d.stats('dlq').counters.dropped).toBe(1);
    expect(d.deliverText('dlq')).toEqual(['q-1']);
  });

  it('drops and counts when the DLQ was deleted', () => {
    const d = new Driver();
    d.create('dlq');
    d.create('q', { maxDeliveries: 1, deadLetterQueue: 'dlq' });
    d.ok({ op: 'deleteQueue', queue: 'dlq' });
    poison(d, 'q', 1);
    expect(d.stats('q').counters).toMatchObject({ deadLettered: 0, dropped: 1 });
  });

  it('does not cascade in a DLQ cycle', () => {
    const d = new Driver();
    d.create('a', { maxMessages: 1, overflow: 'drop-oldest' });
    d.create('b', { maxMessages: 1, overflow: 'drop-oldest', deadLetterQueue: 'a' });
    d.ok({ op: 'updateQueue', queue: 'a', changes: { deadLetterQueue: 'b' } });
    d.publish('b', 'b0');
    d.publish('a', 'a0');
    d.publish('a', 'a1');
    // a0 was evicted into b; b dropped b0 for it rather than sending b0 back into a.
    expect(d.deliverText('a')).toEqual(['a1']);
    expect(d.deliverText('b')).toEqual(['a0']);
    expect(d.stats('b').counters.dropped).toBe(1);
  });

  it('applies the DLQ’s own TTL and priority levels to arrivals', () => {
    const d = new Driver();
    d.create('dlq', { messageTtlMs: 1_000, priorityLevels: 1 });
    d.create('q', { maxDeliveries: 1, deadLetterQueue: 'dlq', priorityLevels: 5 });
    d.publish('q', { body: bytes('x'), priority: 4, ttlMs: 0 });
    d.nack('q', d.deliver('q'));
    expect(d.sm.peek('dlq', 1, 10)?.[0]).toMatchObject({ priority: 0, expiresAtMs: d.nowMs + 1_000 });
    d.advance(1_000);
    expect(d.stats('dlq').counters.expired).toBe(1);
  });
});

describe('rejection (nack with deadLetter)', () => {
  it('moves a message to the DLQ at once, with reason rejected, whatever maxDeliveries says', () => {
    const d = new Driver();
    d.create('dlq');
    d.create('q', { maxDeliveries: 10, deadLetterQueue: 'dlq' });
    d.publish('q', 'fine', 'malformed');
    d.nack('q', d.deliver('q', 2).slice(1));
    const [again] = d.deliver('q', 2);
    expect(again!.deliveryCount).toBe(2);
    const reply = d.ok({ op: 'nack', items: [refOf('q', again!)], deadLetter: true });
    expect(reply.results).toEqual([{ ok: true }]);
    expect(d.stats('q')).toMatchObject({ inFlight: 1, counters: { nacked: 2, deadLettered: 1 } });
    const [moved] = d.deliver('dlq');
    expect(text(moved!.body)).toBe('malformed');
    expect(moved).toMatchObject({
      deliveryCount: 1,
      deadLetter: { queue: 'q', seq: 2, deliveryCount: 2, reason: 'rejected', timeMs: d.nowMs },
    });
  });

  it('drops and counts the message when the queue has no DLQ', () => {
    const d = new Driver();
    d.create('q', { maxDeliveries: 10 });
    d.publish('q', 'malformed');
    const [m] = d.deliver('q');
    d.ok({ op: 'nack', items: [refOf('q', m!)], deadLetter: true });
    expect(d.stats('q')).toMatchObject({ ready: 0, inFlight: 0, counters: { dropped: 1, deadLettered: 0 } });
  });

  it('refuses a delay with it and changes nothing; a stale delivery is a no-op', () => {
    const d = new Driver();
    d.create('dlq');
    d.create('q', { deadLetterQueue: 'dlq', visibilityTimeoutMs: 100 });
    d.publish('q', 'x');
    const [m] = d.deliver('q');
    const before = d.sm.digest();
    expect(d.run({ op: 'nack', items: [refOf('q', m!)], delayMs: 5, deadLetter: true })).toMatchObject({
      ok: false,
      code: 'INVALID_ARGUMENT',
    });
    expect(d.sm.digest()).toBe(before);
    d.advance(100);
    expect(d.ok({ op: 'nack', items: [refOf('q', m!)], deadLetter: true }).results).toEqual([{ ok: true }]);
    expect(d.stats('q')).toMatchObject({ ready: 1, counters: { deadLettered: 0 } });
  });

  it('keeps the reason across a snapshot', () => {
    const d = new Driver();
    d.create('dlq');
    d.create('q', { deadLetterQueue: 'dlq' });
    d.publish('q', 'x');
    d.ok({ op: 'nack', items: [refOf('q', d.deliver('q')[0]!)], deadLetter: true });
    const restored = QueueStateMachine.restore(d.sm.snapshot());
    expect(restored.peek('dlq', 0, 1)?.[0]?.deadLetter).toMatchObject({ reason: 'rejected' });
    expect(restored.digest()).toBe(d.sm.digest());
  });
});

describe('redrive', () => {
  it('moves dead-lettered messages back to the queue they came from, oldest first, up to max', () => {
    const d = new Driver();
    d.create('dlq');
    d.create('q', { maxDeliveries: 1, deadLetterQueue: 'dlq' });
    poison(d, 'q', 3);
    const reply = d.ok({ op: 'redrive', dlq: 'dlq', max: 2 });
    expect(reply).toMatchObject({ moved: 2, skipped: 0 });
    const back = d.deliver('q');
    expect(back.map((m) => [text(m.body), m.deliveryCount, m.deadLetter])).toEqual([
      ['q-0', 1, null],
      ['q-1', 1, null],
    ]);
    expect(d.stats('dlq')).toMatchObject({ ready: 1, counters: { redriven: 2 } });
    expect(d.stats('q').counters.published).toBe(5);
  });

  it('moves to a target when given, skips messages without a live origin, and refuses bad targets', () => {
    const d = new Driver();
    d.create('dlq');
    d.create('gone', { maxDeliveries: 1, deadLetterQueue: 'dlq' });
    d.create('other');
    poison(d, 'gone', 1);
    d.publish('dlq', 'direct');
    d.ok({ op: 'deleteQueue', queue: 'gone' });
    expect(d.ok({ op: 'redrive', dlq: 'dlq' })).toMatchObject({ moved: 0, skipped: 2 });
    expect(d.run({ op: 'redrive', dlq: 'dlq', target: 'dlq' })).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(d.run({ op: 'redrive', dlq: 'dlq', target: 'nope' })).toMatchObject({ code: 'QUEUE_NOT_FOUND' });
    expect(d.ok({ op: 'redrive', dlq: 'dlq', target: 'other' })).toMatchObject({ moved: 2, skipped: 0 });
    expect(d.deliverText('other')).toEqual(['gone-0', 'direct']);
  });

  it('leaves a message in the DLQ when the destination is full', () => {
    const d = new Driver();
    d.create('dlq');
    d.create('q', { maxDeliveries: 1, deadLetterQueue: 'dlq', maxMessages: 1 });
    poison(d, 'q', 1);
    d.publish('q', 'filler');
    expect(d.ok({ op: 'redrive', dlq: 'dlq' })).toMatchObject({ moved: 0, skipped: 1 });
    expect(d.stats('dlq').ready).toBe(1);
  });
});
