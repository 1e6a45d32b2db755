/**
 * Proves publish: increasing seqs, idempotency keys within the dedup window (the exactly-once
 * publish promise), delays and TTLs from entry time, priority clamping, and the limits with both
 * overflow policies (all or nothing with QUEUE_FULL for `reject`, oldest-ready eviction for
 * `drop-oldest`). Bad input changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { bytes, Driver, text } from './test-support.js';

describe('publish', () => {
  it('assigns increasing per-queue seqs and wakes consumers', () => {
    const d = new Driver();
    d.create('a');
    d.create('b');
    expect(d.publish('a', 'x', 'y')).toEqual([1, 2]);
    expect(d.lastEffects).toEqual([{ type: 'queueReady', queue: 'a' }]);
    expect(d.publish('b', 'z')).toEqual([1]);
    expect(d.publish('a', 'w')).toEqual([3]);
    expect(d.stats('a')).toMatchObject({ ready: 3, bytes: 3, counters: { published: 3 } });
  });

  it('stores a duplicate idempotency key once and answers with the original seq', () => {
    const d = new Driver();
    d.create('q', { dedupWindowMs: 60_000 });
    const reply = d.ok({
      op: 'publish',
      queue: 'q',
      messages: [
        { body: bytes('one'), idempotencyKey: 'k1' },
        { body: bytes('one again'), idempotencyKey: 'k1' },
        { body: bytes('two'), idempotencyKey: 'k2' },
      ],
    });
    expect(reply.results).toEqual([
      { ok: true, seq: 1, duplicate: false },
      { ok: true, seq: 1, duplicate: true },
      { ok: true, seq: 2, duplicate: false },
    ]);
    d.advance(59_999);
    expect(
      d.ok({ op: 'publish', queue: 'q', messages: [{ body: bytes('retry'), idempotencyKey: 'k1' }] }).results,
    ).toEqual([{ ok: true, seq: 1, duplicate: true }]);
    expect(d.stats('q')).toMatchObject({ ready: 2, counters: { published: 2, duplicates: 2 } });
  });

  it('remembers a key after its message was acked, and forgets it when the window ends', () => {
    const d = new Driver();
    d.create('q', { dedupWindowMs: 1_000 });
    d.publish('q', { body: bytes('m'), idempotencyKey: 'k' });
    d.ack('q', ...d.deliver('q'));
    expect(d.publish('q', { body: bytes('m'), idempotencyKey: 'k' })).toEqual([1]);
    d.advance(1_000);
    expect(d.publish('q', { body: bytes('m'), idempotencyKey: 'k' })).toEqual([2]);
  });

  it('delays messages from the entry time (per message or the queue default)', () => {
    const d = new Driver();
    d.create('q', { deliveryDelayMs: 500 });
    d.publish('q', 'default', { body: bytes('own'), delayMs: 100 }, { body: bytes('now'), delayMs: 0 });
    expect(d.stats('q')).toMatchObject({ ready: 1, delayed: 2 });
    expect(d.sm.nextDeadline()).toBe(d.nowMs + 100);
    expect(d.deliverText('q')).toEqual(['now']);
    expect(d.advance(99)).toEqual([]);
    expect(d.advance(1)).toEqual([{ type: 'queueReady', queue: 'q' }]);
    expect(d.deliverText('q')).toEqual(['own']);
    d.advance(400);
    expect(d.deliverText('q')).toEqual(['default']);
    // The first lease (taken at publish time) is the earliest deadline now.
    expect(d.sm.nextDeadline()).toBe(d.nowMs - 500 + 30_000);
  });

  it('expires messages at their TTL: dropped without a DLQ, dead-lettered with one', () => {
    const d = new Driver();
    d.create('dlq');
    d.create('plain', { messageTtlMs: 1_000 });
    d.create('guarded', { messageTtlMs: 1_000, deadLetterQueue: 'dlq' });
    d.publish('plain', 'a', { body: bytes('long'), ttlMs: 0 });
    d.publish('guarded', 'b', { body: bytes('short'), ttlMs: 10 });
    d.advance(10);
    expect(d.stats('guarded').ready).toBe(1);
    d.advance(990);
    expect(d.stats('plain')).toMatchObject({ ready: 1, counters: { expired: 1 } });
    expect(d.stats('guarded')).toMatchObject({ ready: 0, counters: { deadLettered: 2, expired: 0 } });
    const dead = d.deliver('dlq');
    expect(dead.map((m) => [text(m.body), m.deadLetter?.reason, m.deadLetter?.queue])).toEqual([
      ['short', 'expired', 'guarded'],
      ['b', 'expired', 'guarded'],
    ]);
  });

  it('a delayed message whose TTL ends first expires without ever being ready', () => {
    const d = new Driver();
    d.create('q');
    d.publish('q', { body: bytes('x'), delayMs: 100, ttlMs: 50 });
    d.advance(200);
    expect(d.stats('q')).toMatchObject({ ready: 0, delayed: 0, counters: { expired: 1 } });
  });

  it('clamps priorities above the top level and refuses negative ones', () => {
    const d = new Driver();
    d.create('q', { priorityLevels: 3 });
    d.publish('q', { body: bytes('x'), priority: 9 });
    expect(d.deliver('q')[0]?.priority).toBe(2);
    const bad = d.run({
      op: 'publish',
      queue: 'q',
      messages: [{ body: bytes('ok') }, { body: bytes('y'), priority: -1 }],
    });
    expect(bad).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
    expect(d.stats('q').counters.published).toBe(1);
  });

  it('refuses a malformed message without storing any message of the command', () => {
    const d = new Driver();
    d.create('q');
    const cases = [
      { body: 'not bytes' },
      { body: bytes('x'), headers: { a: 1 } },
      { body: bytes('x'), delayMs: -1 },
      { body: bytes('x'), ttlMs: 0.5 },
      { body: bytes('x'), group: 7 },
    ];
    for (const bad of cases) {
      const reply = d.run({ op: 'publish', queue: 'q', messages: [{ body: bytes('fine') }, bad as never] });
      expect(reply).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
    }
    expect(d.stats('q').ready).toBe(0);
    expect(d.run({ op: 'publish', queue: 'nope', messages: [] })).toMatchObject({ code: 'QUEUE_NOT_FOUND' });
  });
});

describe('limits with overflow reject', () => {
  it('stores nothing of a batch that does not fit, duplicates still get their seq', () => {
    const d = new Driver();
    d.create('q', { maxMessages: 2 });
    d.publish('q', { body: bytes('a'), idempotencyKey: 'a' });
    const reply = d.ok({
      op: 'publish',
      queue: 'q',
      messages: [
        { body: bytes('b') },
        { body: bytes('c') },
        { body: bytes('a'), idempotencyKey: 'a' },
        { body: bytes('d') },
      ],
    });
    expect(reply.results.map((r) => (r.ok ? r.seq : r.code))).toEqual([
      'QUEUE_FULL',
      'QUEUE_FULL',
      1,
      'QUEUE_FULL',
    ]);
    expect(d.stats('q')).toMatchObject({ ready: 1, counters: { rejected: 3, published: 1 } });
  });

  it('stores a batch that fits exactly, counting a key repeated inside the batch once', () => {
    const d = new Driver();
    d.create('q', { maxMessages: 2 });
    const reply = d.ok({
      op: 'publish',
      queue: 'q',
      messages: [
        { body: bytes('a'), idempotencyKey: 'k' },
        { body: bytes('a'), idempotencyKey: 'k' },
        { body: bytes('b') },
      ],
    });
    expect(reply.results.map((r) => (r.ok ? [r.seq, r.duplicate] : r.code))).toEqual([
      [1, false],
      [1, true],
      [2, false],
    ]);
    expect(d.stats('q').ready).toBe(2);
  });

  it('refuses the whole batch on bytes even if a later message alone would fit', () => {
    const d = new Driver();
    d.create('q', { maxBytes: 10 });
    const reply = d.ok({
      op: 'publish',
      queue: 'q',
      messages: [{ body: new Uint8Array(6) }, { body: new Uint8Array(6) }, { body: new Uint8Array(1) }],
    });
    expect(reply.results.map((r) => r.ok)).toEqual([false, false, false]);
    expect(d.stats('q')).toMatchObject({ ready: 0, bytes: 0 });
  });

  it('counts in-flight and delayed messages, and header bytes', () => {
    const d = new Driver();
    d.create('q', { maxMessages: 2, maxBytes: 100 });
    d.publish('q', 'x', { body: bytes('y'), delayMs: 10 });
    d.deliver('q');
    expect(d.ok({ op: 'publish', queue: 'q', messages: [{ body: bytes('z') }] }).results[0]?.ok).toBe(false);
    const e = new Driver();
    e.create('q', { maxBytes: 10 });
    const reply = e.ok({
      op: 'publish',
      queue: 'q',
      messages: [{ body: bytes('abc'), headers: { key: 'value!!' } }],
    });
    expect(reply.results[0]?.ok).toBe(false);
  });
});

describe('limits with overflow drop-oldest', () => {
  it('dead-letters the oldest ready messages to make room', () => {
    const d = new Driver();
    d.create('dlq');
    d.create('q', { maxMessages: 3, overflow: 'drop-oldest', deadLetterQueue: 'dlq' });
    d.publish('q', 'm1', 'm2', 'm3');
    const [leased] = d.deliver('q', 1);
    expect(text(leased!.body)).toBe('m1');
    d.publish('q', 'm4', 'm5');
    expect(d.stats('q')).toMatchObject({ ready: 2, inFlight: 1, counters: { deadLettered: 2 } });
    expect(d.deliverText('q')).toEqual(['m4', 'm5']);
    const dead = d.deliver('dlq');
    expect(dead.map((m) => [text(m.body), m.deadLetter?.reason])).toEqual([
      ['m2', 'overflow'],
      ['m3', 'overflow'],
    ]);
  });

  it('drops them without a DLQ, and refuses when evicting every ready message would not be enough', () => {
    const d = new Driver();
    d.create('q', { maxMessages: 2, overflow: 'drop-oldest' });
    d.publish('q', 'a', 'b', 'c');
    expect(d.stats('q')).toMatchObject({ ready: 2, counters: { dropped: 1 } });
    d.deliver('q');
    const reply = d.ok({ op: 'publish', queue: 'q', messages: [{ body: bytes('d') }] });
    expect(reply.results[0]).toMatchObject({ ok: false, code: 'QUEUE_FULL' });
    expect(d.stats('q')).toMatchObject({ inFlight: 2, counters: { dropped: 1, rejected: 1 } });
  });

  it('never evicts for a message larger than maxBytes', () => {
    const d = new Driver();
    d.create('q', { maxBytes: 4, overflow: 'drop-oldest' });
    d.publish('q', 'ab');
    const reply = d.ok({ op: 'publish', queue: 'q', messages: [{ body: new Uint8Array(5) }] });
    expect(reply.results[0]?.ok).toBe(false);
    expect(d.stats('q').ready).toBe(1);
  });
});
