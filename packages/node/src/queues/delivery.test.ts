/**
 * Proves delivery and settlement: priority then FIFO order, at most one message in flight per
 * group while later groups are served, leases with deadlines from entry time, ack/nack/extend
 * semantics per delivery id (the durable-ack and at-least-once promises), retry backoff,
 * maxDeliveries with dead-lettering, and releases that do not count as failures.
 */
import { describe, expect, it } from 'vitest';
import { bytes, Driver, refOf, T0, text } from './test-support.js';
import type { DeliveredMessage } from './types.js';

const bodies = (list: DeliveredMessage[]) => list.map((m) => text(m.body));

describe('deliver', () => {
  it('leases highest priority first, FIFO within a priority, up to max', () => {
    const d = new Driver();
    d.create('q', { priorityLevels: 3 });
    d.publish('q', 'low1', { body: bytes('high1'), priority: 2 }, 'low2', {
      body: bytes('mid'),
      priority: 1,
    });
    d.publish('q', { body: bytes('high2'), priority: 2 });
    expect(d.deliverText('q', 3)).toEqual(['high1', 'high2', 'mid']);
    expect(d.deliverText('q', 10)).toEqual(['low1', 'low2']);
  });

  it('replies with everything the consumer needs and reports the leases as an effect', () => {
    const d = new Driver();
    d.create('q', { visibilityTimeoutMs: 5_000 });
    d.publish('q', { body: bytes('x'), headers: { h: 'v' }, group: 'g', format: 2 });
    const reply = d.ok({ op: 'deliver', queue: 'q', consumerId: 'n1/7', max: 5 });
    expect(reply.more).toBe(false);
    expect(reply.messages).toEqual([
      {
        seq: 1,
        deliveryId: 1,
        body: bytes('x'),
        headers: { h: 'v' },
        group: 'g',
        priority: 0,
        format: 2,
        deliveryCount: 1,
        publishedAtMs: T0,
        leaseDeadlineMs: T0 + 5_000,
        deadLetter: null,
      },
    ]);
    expect(d.lastEffects).toEqual([
      { type: 'delivered', queue: 'q', consumerId: 'n1/7', messages: reply.messages },
    ]);
    expect(d.stats('q')).toMatchObject({ ready: 0, inFlight: 1, consumers: 1 });
  });

  it('counts the deliverable messages: ready ones not held back by a busy group', () => {
    const d = new Driver();
    d.create('q');
    expect(d.sm.deliverableCount('q')).toBe(0);
    expect(d.sm.deliverableCount('missing')).toBe(0);
    d.publish('q', { body: bytes('a'), group: 'g' }, { body: bytes('b'), group: 'g' }, 'c', {
      body: bytes('later'),
      delayMs: 100,
    });
    expect(d.sm.deliverableCount('q')).toBe(2);
    d.deliver('q', 1);
    expect(d.sm.deliverableCount('q')).toBe(1);
  });

  it('uses the command lease when given and says when more is left', () => {
    const d = new Driver();
    d.create('q');
    d.publish('q', 'a', 'b');
    const reply = d.ok({ op: 'deliver', queue: 'q', consumerId: 'c', max: 1, leaseMs: 100 });
    expect(reply.messages[0]?.leaseDeadlineMs).toBe(T0 + 100);
    expect(reply.more).toBe(true);
    expect(d.sm.hasReady('q')).toBe(true);
  });

  it('refuses bad arguments', () => {
    const d = new Driver();
    d.create('q');
    for (const bad of [{ max: 0 }, { max: 1.5 }, { max: 100_000 }, { consumerId: '' }, { leaseMs: 0 }]) {
      const reply = d.run({ op: 'deliver', queue: 'q', consumerId: 'c', max: 1, ...bad });
      expect(reply).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
    }
    expect(d.run({ op: 'deliver', queue: 'nope', consumerId: 'c', max: 1 })).toMatchObject({
      code: 'QUEUE_NOT_FOUND',
    });
  });
});

describe('message groups', () => {
  it('leases at most one message per group and still serves later groups', () => {
    const d = new Driver();
    d.create('q');
    d.publish(
      'q',
      ...['a1', 'a2', 'b1', 'a3', 'b2', 'free'].map((b) => ({
        body: bytes(b),
        group: b.length === 2 ? b[0] : null,
      })),
    );
    const first = d.deliver('q', 10);
    expect(bodies(first)).toEqual(['a1', 'b1', 'free']);
    expect(d.sm.hasReady('q')).toBe(false);
    expect(d.stats('q').ready).toBe(3);
    d.ack('q', first[0]!);
    expect(d.lastEffects).toEqual([{ type: 'queueReady', queue: 'q' }]);
    expect(d.deliverText('q', 10)).toEqual(['a2']);
  });

  it('a nacked message keeps its group blocked until it is delivered again, in order', () => {
    const d = new Driver();
    d.create('q', { retry: { backoff: 'fixed', delayMs: 1_000, maxDelayMs: 0 } });
    d.publish('q', { body: bytes('g1'), group: 'g' }, { body: bytes('g2'), group: 'g' }, 'other');
    const [g1] = d.deliver('q', 1);
    d.nack('q', [g1!]);
    expect(d.deliverText('q')).toEqual(['other']);
    d.advance(1_000);
    const again = d.deliver('q');
    expect(bodies(again)).toEqual(['g1']);
    expect(again[0]?.deliveryCount).toBe(2);
  });

  it('a delayed group message that becomes ready goes before later ready ones of its group', () => {
    const d = new Driver();
    d.create('q');
    d.publish('q', { body: bytes('early'), group: 'g', delayMs: 100 }, { body: bytes('late'), group: 'g' });
    d.advance(100);
    expect(d.deliverText('q')).toEqual(['early']);
  });
});

describe('ack', () => {
  it('removes the message; a retry of the same ack succeeds', () => {
    const d = new Driver();
    d.create('q');
    d.publish('q', 'x');
    const [m] = d.deliver('q');
    d.ack('q', m!);
    d.ack('q', m!);
    expect(d.stats('q')).toMatchObject({ ready: 0, inFlight: 0, counters: { acked: 1 } });
  });

  it('fails with LEASE_EXPIRED once the message was delivered again', () => {
    const d = new Driver();
    d.create('q', { visibilityTimeoutMs: 1_000 });
    d.publish('q', 'x');
    const [old] = d.deliver('q', 1, 'c1');
    d.advance(1_000);
    const [fresh] = d.deliver('q', 1, 'c2');
    expect(fresh?.deliveryCount).toBe(2);
    const reply = d.ok({ op: 'ack', items: [refOf('q', old!), refOf('q', fresh!)] });
    expect(reply.results).toEqual([
      { ok: false, code: 'LEASE_EXPIRED', message: expect.any(String) },
      { ok: true },
    ]);
  });

  it('succeeds after the lease expired if nobody got the message since', () => {
    const d = new Driver();
    d.create('q', { visibilityTimeoutMs: 1_000 });
    d.publish('q', 'x');
    const [m] = d.deliver('q');
    d.advance(1_500);
    d.ack('q', m!);
    expect(d.stats('q').ready).toBe(0);
  });

  it('refuses refs that name no delivery, per item', () => {
    const d = new Driver();
    d.create('q');
    d.publish('q', 'x', 'y');
    const [m] = d.deliver('q', 1);
    const reply = d.ok({
      op: 'ack',
      items: [
        { queue: 'q', seq: 99, deliveryId: 1 },
        { queue: 'q', seq: 2, deliveryId: 1 },
        { queue: 'q', seq: m!.seq, deliveryId: m!.deliveryId + 5 },
        { queue: 'q', seq: 0, deliveryId: 1 },
        { queue: 'missing', seq: 1, deliveryId: 1 },
        refOf('q', m!),
      ],
    });
    expect(reply.results.map((r) => (r.ok ? 'ok' : r.code))).toEqual([
      'INVALID_ARGUMENT',
      'INVALID_ARGUMENT',
      'INVALID_ARGUMENT',
      'INVALID_ARGUMENT',
      'QUEUE_NOT_FOUND',
      'ok',
    ]);
    expect(d.stats('q').ready).toBe(1);
  });
});

describe('nack and retries', () => {
  it('makes the message ready at once by default and after delayMs when given', () => {
    const d = new Driver();
    d.create('q');
    d.publish('q', 'a', 'b');
    const [a, b] = d.deliver('q');
    d.nack('q', [a!]);
    d.nack('q', [b!], 300);
    expect(d.lastEffects).toEqual([]);
    expect(d.deliverText('q')).toEqual(['a']);
    d.advance(300);
    expect(d.deliverText('q')).toEqual(['b']);
    expect(d.stats('q').counters.nacked).toBe(2);
  });

  it('backs off exponentially on the failure count, capped', () => {
    const d = new Driver();
    d.create('q', { retry: { backoff: 'exponential', delayMs: 100, maxDelayMs: 350 } });
    d.publish('q', 'x');
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [m] = d.deliver('q');
      d.nack('q', [m!]);
      waits.push((d.sm.nextDeadline() as number) - d.nowMs);
      d.advance(waits.at(-1) as number);
    }
    expect(waits).toEqual([100, 200, 350, 350]);
  });

  it('dead-letters at maxDeliveries with the message history', () => {
    const d = new Driver();
    d.create('dlq');
    d.create('q', { maxDeliveries: 2, deadLetterQueue: 'dlq' });
    d.publish('q', { body: bytes('poison'), headers: { k: 'v' } });
    d.nack('q', d.deliver('q'));
    d.nack('q', d.deliver('q'));
    expect(d.stats('q')).toMatchObject({ ready: 0, counters: { deadLettered: 1, nacked: 2 } });
    const [dead] = d.deliver('dlq');
    expect(dead).toMatchObject({
      headers: { k: 'v' },
      deliveryCount: 1,
      deadLetter: { queue: 'q', seq: 1, deliveryCount: 2, reason: 'max-deliveries', timeMs: d.nowMs },
    });
    expect(text(dead!.body)).toBe('poison');
  });

  it('counts an expired lease as a failure but a release not', () => {
    const d = new Driver();
    d.create('q', { maxDeliveries: 2, visibilityTimeoutMs: 1_000 });
    d.publish('q', 'x');
    for (let i = 0; i < 5; i++) {
      d.deliver('q', 1, 'n2/1');
      d.ok({ op: 'release', consumerIds: ['n2/1'] });
    }
    d.deliver('q');
    d.advance(1_000);
    const [m] = d.deliver('q');
    expect(m?.deliveryCount).toBe(7);
    d.advance(1_000);
    expect(d.stats('q')).toMatchObject({ ready: 0, inFlight: 0, counters: { dropped: 1, leasesExpired: 2 } });
  });

  it('ignores a second nack of the same delivery and fails one for a newer delivery', () => {
    const d = new Driver();
    d.create('q', { maxDeliveries: 3 });
    d.publish('q', 'x');
    const [m] = d.deliver('q');
    d.nack('q', [m!]);
    d.nack('q', [m!]);
    const [again] = d.deliver('q');
    expect(again?.deliveryCount).toBe(2);
    const reply = d.ok({ op: 'nack', items: [refOf('q', m!)] });
    expect(reply.results[0]).toMatchObject({ ok: false, code: 'LEASE_EXPIRED' });
    expect(d.stats('q').counters.nacked).toBe(1);
  });
});

describe('extend', () => {
  it('moves a held lease deadline and refuses leases no longer held', () => {
    const d = new Driver();
    d.create('q', { visibilityTimeoutMs: 1_000 });
    d.publish('q', 'x', 'y');
    const [x, y] = d.deliver('q');
    d.ack('q', y!);
    d.advance(900);
    const reply = d.ok({ op: 'extend', items: [refOf('q', x!), refOf('q', y!)], ms: 1_000 });
    expect(reply.results).toEqual([
      { ok: true, leaseDeadlineMs: d.nowMs + 1_000 },
      { ok: false, code: 'LEASE_EXPIRED', message: expect.any(String) },
    ]);
    d.advance(900);
    expect(d.stats('q').inFlight).toBe(1);
    d.advance(100);
    expect(d.stats('q').inFlight).toBe(0);
    const late = d.ok({ op: 'extend', items: [refOf('q', x!)], ms: 1_000 });
    expect(late.results[0]).toMatchObject({ ok: false, code: 'LEASE_EXPIRED' });
  });
});

describe('release', () => {
  it('returns a session’s leases at once and reports them', () => {
    const d = new Driver();
    d.create('a');
    d.create('b');
    d.publish('a', 'a1', 'a2');
    d.publish('b', 'b1');
    d.deliver('a', 10, 'n1/1');
    d.deliver('b', 10, 'n1/1');
    d.deliver('b', 10, 'n1/2');
    const reply = d.ok({ op: 'release', consumerIds: ['n1/1', 'n1/unknown'] });
    expect(reply.released).toBe(3);
    expect(d.lastEffects).toEqual([
      { type: 'leasesEnded', queue: 'a', consumerId: 'n1/1', reason: 'released', seqs: [1, 2] },
      { type: 'leasesEnded', queue: 'b', consumerId: 'n1/1', reason: 'released', seqs: [1] },
      { type: 'queueReady', queue: 'a' },
      { type: 'queueReady', queue: 'b' },
    ]);
    expect(d.deliverText('a')).toEqual(['a1', 'a2']);
  });

  it('a release marked failed (session gone) counts toward maxDeliveries, so a poison message is dead-lettered', () => {
    const d = new Driver();
    d.create('dlq');
    d.create('q', { maxDeliveries: 3, deadLetterQueue: 'dlq' });
    d.publish('q', { body: bytes('poison'), format: 1 }, 'fine');
    for (let crash = 1; crash <= 3; crash++) {
      const [m] = d.deliver('q', 1, `n1/${crash}`);
      expect(text(m!.body)).toBe('poison');
      const reply = d.ok({ op: 'release', consumerIds: [`n1/${crash}`], failed: true });
      expect(reply.released).toBe(1);
    }
    expect(d.deliverText('q')).toEqual(['fine']);
    const [dead] = d.deliver('dlq');
    expect(dead).toMatchObject({ format: 1, deadLetter: { queue: 'q', seq: 1, reason: 'max-deliveries' } });
    expect(d.stats('q').counters).toMatchObject({ deadLettered: 1, leasesExpired: 0 });
  });

  it('a failed release makes the message ready at once, without the nack backoff', () => {
    const d = new Driver();
    d.create('q', { maxDeliveries: 5, retry: { backoff: 'fixed', delayMs: 60_000 } });
    d.publish('q', 'x');
    d.deliver('q', 1, 'n1/1');
    d.ok({ op: 'release', consumerIds: ['n1/1'], failed: true });
    expect(d.lastEffects).toContainEqual({ type: 'queueReady', queue: 'q' });
    expect(d.deliver('q', 1, 'n1/2')[0]?.deliveryCount).toBe(2);
  });

  it('releaseAllExcept after a leader change never counts, however often it happens', () => {
    const d = new Driver();
    d.create('q', { maxDeliveries: 1 });
    d.publish('q', 'x');
    for (let term = 1; term <= 4; term++) {
      d.deliver('q', 1, `n1:${term}:1`);
      d.ok({ op: 'releaseAllExcept', ownerPrefix: `n1:${term + 1}:` });
    }
    expect(d.deliver('q', 1, 'n1:5:1')[0]?.deliveryCount).toBe(5);
    expect(d.stats('q').counters).toMatchObject({ dropped: 0, deadLettered: 0 });
  });

  it('releaseAllExcept returns every lease not held by the new leader’s sessions', () => {
    const d = new Driver();
    d.create('q');
    d.publish('q', 'a', 'b', 'c');
    d.deliver('q', 1, 'n1/1');
    d.deliver('q', 1, 'n2/1');
    d.deliver('q', 1, 'n3/9');
    const reply = d.ok({ op: 'releaseAllExcept', ownerPrefix: 'n2/' });
    expect(reply.released).toBe(2);
    expect(d.stats('q')).toMatchObject({ ready: 2, inFlight: 1, consumers: 1 });
  });

  it('a released message whose TTL passed while leased expires instead', () => {
    const d = new Driver();
    d.create('q');
    d.publish('q', { body: bytes('x'), ttlMs: 100 });
    d.deliver('q');
    d.advance(200);
    expect(d.stats('q').inFlight).toBe(1);
    d.ok({ op: 'release', consumerIds: ['n1/1'] });
    expect(d.stats('q')).toMatchObject({ ready: 0, counters: { expired: 1 } });
  });
});

describe('lease expiry', () => {
  it('brings messages back when the deadline passes and reports it', () => {
    const d = new Driver();
    d.create('q', { visibilityTimeoutMs: 1_000 });
    d.publish('q', 'x');
    d.deliver('q', 1, 'n1/4');
    expect(d.sm.nextDeadline()).toBe(T0 + 1_000);
    expect(d.advance(999)).toEqual([]);
    expect(d.advance(1)).toEqual([
      { type: 'leasesEnded', queue: 'q', consumerId: 'n1/4', reason: 'expired', seqs: [1] },
      { type: 'queueReady', queue: 'q' },
    ]);
    expect(d.sm.nextDeadline()).toBeNull();
    expect(d.stats('q')).toMatchObject({ ready: 1, consumers: 0, counters: { leasesExpired: 1 } });
  });
});
