/**
 * Proves createQueue/updateQueue/deleteQueue/purgeQueue: idempotent creation, QUEUE_EXISTS on a
 * conflict, refused options change nothing, deletion drops the queue's leases, and purge drops
 * waiting messages but leaves leased ones with their consumers.
 */
import { describe, expect, it } from 'vitest';
import { Driver, queueOptions, refOf } from './test-support.js';

describe('createQueue', () => {
  it('is idempotent with identical options and refuses different ones with QUEUE_EXISTS', () => {
    const d = new Driver();
    expect(d.ok({ op: 'createQueue', queue: 'q', options: queueOptions() }).created).toBe(true);
    expect(d.lastEffects).toEqual([{ type: 'queueCreated', queue: 'q' }]);
    expect(d.ok({ op: 'createQueue', queue: 'q', options: queueOptions() }).created).toBe(false);
    expect(d.lastEffects).toEqual([]);
    const conflict = d.run({ op: 'createQueue', queue: 'q', options: queueOptions({ maxDeliveries: 3 }) });
    expect(conflict).toMatchObject({ ok: false, code: 'QUEUE_EXISTS' });
    expect(d.sm.queueOptions('q')?.maxDeliveries).toBe(0);
  });

  it('refuses invalid options, a missing dead-letter queue and a queue as its own DLQ', () => {
    const d = new Driver();
    const bad = [
      queueOptions({ visibilityTimeoutMs: 0 }),
      queueOptions({ priorityLevels: 0 }),
      queueOptions({ maxMessages: -1 }),
      queueOptions({ retry: { delayMs: 1.5 } }),
      { ...queueOptions(), overflow: 'spill' } as never,
      queueOptions({ deadLetterQueue: 'q' }),
    ];
    for (const options of bad)
      expect(d.run({ op: 'createQueue', queue: 'q', options })).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(d.run({ op: 'createQueue', queue: '', options: queueOptions() })).toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(
      d.run({ op: 'createQueue', queue: 'q', options: queueOptions({ deadLetterQueue: 'nope' }) }),
    ).toMatchObject({
      code: 'QUEUE_NOT_FOUND',
    });
    expect(d.sm.queueNames()).toEqual([]);
  });

  it('keeps only the known option fields', () => {
    const d = new Driver();
    d.ok({ op: 'createQueue', queue: 'q', options: { ...queueOptions(), extra: 1 } as never });
    expect(Object.keys(d.sm.queueOptions('q') ?? {})).not.toContain('extra');
  });
});

describe('updateQueue', () => {
  it('applies a partial patch, nested retry included', () => {
    const d = new Driver();
    d.create('q', { retry: { backoff: 'fixed', delayMs: 10, maxDelayMs: 0 } });
    const reply = d.ok({
      op: 'updateQueue',
      queue: 'q',
      changes: { maxDeliveries: 4, retry: { backoff: 'exponential' } },
    });
    expect(reply.options.maxDeliveries).toBe(4);
    expect(reply.options.retry).toEqual({ backoff: 'exponential', delayMs: 10, maxDelayMs: 0 });
  });

  it('changes nothing when the result is invalid or names a missing DLQ', () => {
    const d = new Driver();
    d.create('q');
    const before = d.sm.queueOptions('q');
    expect(d.run({ op: 'updateQueue', queue: 'q', changes: { visibilityTimeoutMs: -5 } })).toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(d.run({ op: 'updateQueue', queue: 'q', changes: { deadLetterQueue: 'gone' } })).toMatchObject({
      code: 'QUEUE_NOT_FOUND',
    });
    expect(d.run({ op: 'updateQueue', queue: 'nope', changes: {} })).toMatchObject({
      code: 'QUEUE_NOT_FOUND',
    });
    expect(d.sm.queueOptions('q')).toEqual(before);
  });

  it('a shorter dedup window forgets old keys at once', () => {
    const d = new Driver();
    d.create('q', { dedupWindowMs: 60_000 });
    const [first] = d.publish('q', { body: new Uint8Array(1), idempotencyKey: 'k' });
    d.advance(10_000);
    d.ok({ op: 'updateQueue', queue: 'q', changes: { dedupWindowMs: 5_000 } });
    const [second] = d.publish('q', { body: new Uint8Array(1), idempotencyKey: 'k' });
    expect(second).not.toBe(first);
  });
});

describe('deleteQueue', () => {
  it('drops messages and leases; later acks and publishes get QUEUE_NOT_FOUND', () => {
    const d = new Driver();
    d.create('q');
    d.publish('q', 'a', 'b');
    const [leased] = d.deliver('q', 1);
    const reply = d.ok({ op: 'deleteQueue', queue: 'q' });
    expect(reply.deletedMessages).toBe(2);
    expect(d.lastEffects).toEqual([{ type: 'queueDeleted', queue: 'q' }]);
    expect(d.sm.nextDeadline()).toBeNull();
    const ack = d.ok({ op: 'ack', items: [refOf('q', leased!)] });
    expect(ack.results[0]).toMatchObject({ ok: false, code: 'QUEUE_NOT_FOUND' });
    expect(d.run({ op: 'publish', queue: 'q', messages: [] })).toMatchObject({ code: 'QUEUE_NOT_FOUND' });
    // The consumer's lease index forgot the queue: releasing it finds nothing.
    expect(d.ok({ op: 'release', consumerIds: ['n1/1'] }).released).toBe(0);
  });

  it('a queue created again under the same name starts empty at seq 1', () => {
    const d = new Driver();
    d.create('q');
    d.publish('q', 'a', 'b');
    d.ok({ op: 'deleteQueue', queue: 'q' });
    d.create('q');
    expect(d.publish('q', 'c')).toEqual([1]);
    expect(d.stats('q').ready).toBe(1);
  });
});

describe('purgeQueue', () => {
  it('drops ready, delayed and retrying messages and keeps in-flight ones leased', () => {
    const d = new Driver();
    d.create('q', { retry: { backoff: 'fixed', delayMs: 1_000, maxDelayMs: 0 } });
    d.publish('q', 'leased', 'retrying', 'ready', { body: new Uint8Array(2), delayMs: 5_000 });
    const [leased, retrying] = d.deliver('q', 2);
    d.nack('q', [retrying!]);
    const reply = d.ok({ op: 'purgeQueue', queue: 'q' });
    expect(reply.purged).toBe(3);
    expect(d.stats('q')).toMatchObject({ ready: 0, delayed: 0, inFlight: 1, bytes: 'leased'.length });
    expect(d.stats('q').counters.purged).toBe(3);
    d.ack('q', leased!);
    expect(d.stats('q').inFlight).toBe(0);
    expect(d.sm.nextDeadline()).toBeNull();
  });

  it('a purged in-flight message that is nacked comes back', () => {
    const d = new Driver();
    d.create('q');
    d.publish('q', 'x');
    const [m] = d.deliver('q');
    d.ok({ op: 'purgeQueue', queue: 'q' });
    d.nack('q', [m!]);
    expect(d.deliverText('q')).toEqual(['x']);
  });
});
