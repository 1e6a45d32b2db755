/**
 * Proves the fake broker follows the protocol rules the SDK tests rely on: one in-flight message
 * per group, higher priority first, dedup by idempotency key, prefetch windows, LEASE_EXPIRED for
 * settled or released leases, and release of a vanished session's leases.
 */

import type { DeliveredMessage } from '@flotilla/shared';
import { expect, it } from 'vitest';
import { FakeBroker, type FakeSubscription } from './fake-broker.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (message: DeliveredMessage) => new TextDecoder().decode(message.body);

function receiveNow(broker: FakeBroker, queue: string, max: number, sessionId = 1): DeliveredMessage[] {
  let out: DeliveredMessage[] = [];
  broker.receive(sessionId, queue, max, 0, undefined, (messages) => {
    out = messages;
  });
  return out;
}

it('keeps one message per group in flight and delivers other groups meanwhile', () => {
  const broker = new FakeBroker();
  broker.createQueue('q', {});
  broker.publish('q', [
    { body: bytes('a1'), group: 'a' },
    { body: bytes('a2'), group: 'a' },
    { body: bytes('b1'), group: 'b' },
  ]);
  const first = receiveNow(broker, 'q', 10);
  expect(first.map(text)).toEqual(['a1', 'b1']);
  broker.ack([{ queue: 'q', seq: first[0]!.seq, deliveryId: first[0]!.deliveryId }]);
  expect(receiveNow(broker, 'q', 10).map(text)).toEqual(['a2']);
});

it('delivers higher priorities first, FIFO within a priority', () => {
  const broker = new FakeBroker();
  broker.createQueue('q', { priorityLevels: 3 });
  broker.publish('q', [
    { body: bytes('low'), priority: 0 },
    { body: bytes('high1'), priority: 2 },
    { body: bytes('mid'), priority: 1 },
    { body: bytes('high2'), priority: 2 },
  ]);
  expect(receiveNow(broker, 'q', 10).map(text)).toEqual(['high1', 'high2', 'mid', 'low']);
});

it('stores a repeated idempotency key once and reports the duplicate', () => {
  const broker = new FakeBroker();
  broker.createQueue('q', {});
  expect(broker.publish('q', [{ body: bytes('x'), idempotencyKey: 'k' }])).toEqual({
    seqs: [1],
    duplicates: [],
  });
  expect(broker.publish('q', [{ body: bytes('x'), idempotencyKey: 'k' }])).toEqual({
    seqs: [1],
    duplicates: [0],
  });
  expect(broker.stats('q').depth).toBe(1);
});

it('pushes within the window and refills it as deliveries settle', () => {
  const broker = new FakeBroker();
  broker.createQueue('q', {});
  broker.publish(
    'q',
    [1, 2, 3, 4, 5].map((n) => ({ body: bytes(String(n)) })),
  );
  const pushed: DeliveredMessage[] = [];
  const sub: FakeSubscription = {
    sessionId: 1,
    subId: 1,
    queue: 'q',
    window: 2,
    unsettled: new Set(),
    maxUnsettled: 0,
    push: (_queue, messages) => pushed.push(...messages),
  };
  broker.subscribe(sub);
  expect(pushed.map(text)).toEqual(['1', '2']);
  broker.nack([{ queue: 'q', seq: pushed[0]!.seq, deliveryId: pushed[0]!.deliveryId }], 60_000);
  expect(pushed.map(text)).toEqual(['1', '2', '3']);
  expect(sub.maxUnsettled).toBe(2);
  broker.close();
});

it('answers LEASE_EXPIRED for a settled or released lease and releases a vanished session', () => {
  const broker = new FakeBroker();
  broker.createQueue('q', {});
  broker.publish('q', [{ body: bytes('a') }, { body: bytes('b') }]);
  const [a, b] = receiveNow(broker, 'q', 2, 7);
  const itemA = { queue: 'q', seq: a!.seq, deliveryId: a!.deliveryId };
  expect(broker.ack([itemA])).toEqual({ failed: [] });
  expect(broker.ack([itemA])).toEqual({ failed: [{ index: 0, code: 'LEASE_EXPIRED' }] });
  broker.dropSession(7);
  expect(broker.extend([{ queue: 'q', seq: b!.seq, deliveryId: b!.deliveryId }], 1_000).failed[0]!.code).toBe(
    'LEASE_EXPIRED',
  );
  const again = receiveNow(broker, 'q', 1);
  expect(again.map((m) => [text(m), m.deliveryCount])).toEqual([['b', 2]]);
});
