/**
 * Proves the turn structure from a publish to its delivery: when the queue has a consumer with
 * credit, the deliver rides in the publish's own entry, right after it, so one commit takes a
 * message from publisher to consumer; the delivery is still pushed only once that entry is
 * applied (deliveries are replicated); prefetch bounds the ask; delayed messages and duplicates
 * are not handed out early, and an ask that found nothing gives its credit back.
 */
import { DEFAULT_QUEUE_OPTIONS } from '@flotilla/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { type Command, decodeBatch, type PublishMessage } from '../queues/index.js';
import { TimerWheel } from '../runtime/timer-wheel.js';
import { QueueRuntime } from './runtime.js';
import { FakePort, nextTurn, waitFor } from './testing/fake-port.js';
import { LocalLog } from './testing/local-log.js';

const open: { runtime: QueueRuntime; timers: TimerWheel }[] = [];
afterEach(() => {
  for (const { runtime, timers } of open.splice(0)) {
    runtime.stop();
    timers.close();
  }
});

async function setup() {
  const log = new LocalLog();
  const timers = new TimerWheel();
  const runtime = new QueueRuntime({ nodeId: log.nodeId, log, timers });
  log.attach(runtime);
  open.push({ runtime, timers });
  await waitFor(() => runtime.dutiesActive, 'leader duties');
  const admin = new FakePort();
  runtime.submit({ op: 'createQueue', queue: 'q', options: DEFAULT_QUEUE_OPTIONS }, admin, 1);
  await waitFor(() => admin.replies.has(1), 'queue created');
  return { log, runtime };
}

const body = (text: string) => new TextEncoder().encode(text);

function publish(runtime: QueueRuntime, port: FakePort, token: number, messages: PublishMessage[]): void {
  expect(runtime.submit({ op: 'publish', queue: 'q', messages }, port, token)).toBeNull();
}

/** The ops of every entry proposed from `from` on. */
function entryOps(log: LocalLog, from: number): string[][] {
  return log.proposed.slice(from).map((data) => decodeBatch(data).commands.map((c: Command) => c.op));
}

describe('publish to delivery', () => {
  it('carries the deliver in the publish’s own entry: one commit from publisher to consumer', async () => {
    const { log, runtime } = await setup();
    const consumer = new FakePort();
    runtime.subscribe(consumer, 1, 'q', 'n1:1:1:1', 10);
    await nextTurn();
    const before = log.proposed.length;
    publish(runtime, new FakePort(), 2, [{ body: body('a') }, { body: body('b') }]);
    await waitFor(() => consumer.delivered(1).length === 2, 'both deliveries');
    expect(entryOps(log, before)).toEqual([['publish', 'deliver']]);
    expect(consumer.delivered(1).map((m) => m.seq)).toEqual([1, 2]);
  });

  it('pushes the delivery only once that entry is applied', async () => {
    const { log, runtime } = await setup();
    const consumer = new FakePort();
    runtime.subscribe(consumer, 1, 'q', 'n1:1:1:1', 10);
    await nextTurn();
    log.holdCommits();
    publish(runtime, new FakePort(), 2, [{ body: body('a') }]);
    await waitFor(() => log.uncommitted === 1, 'the entry proposed');
    for (let i = 0; i < 5; i++) await nextTurn();
    expect(consumer.delivered(1)).toEqual([]);
    log.releaseCommits();
    await waitFor(() => consumer.delivered(1).length === 1, 'the delivery');
  });

  it('asks for no more than the free credit', async () => {
    const { log, runtime } = await setup();
    const consumer = new FakePort();
    runtime.subscribe(consumer, 1, 'q', 'n1:1:1:1', 2);
    await nextTurn();
    const before = log.proposed.length;
    const messages = Array.from({ length: 5 }, (_, i) => ({ body: body(`m${i}`) }));
    publish(runtime, new FakePort(), 2, messages);
    await waitFor(() => consumer.delivered(1).length === 2, 'two deliveries');
    for (let i = 0; i < 3; i++) await nextTurn();
    const delivers = log.proposed
      .slice(before)
      .flatMap((data) => decodeBatch(data).commands)
      .filter((c) => c.op === 'deliver');
    expect(delivers.map((c) => (c.op === 'deliver' ? c.max : 0))).toEqual([2]);
    expect(consumer.delivered(1).length).toBe(2);
    expect(runtime.state.stats('q')).toMatchObject({ inFlight: 2, ready: 3 });
  });

  it('does not ask for delayed messages in the publish’s entry', async () => {
    const { log, runtime } = await setup();
    const consumer = new FakePort();
    runtime.subscribe(consumer, 1, 'q', 'n1:1:1:1', 10);
    await nextTurn();
    const before = log.proposed.length;
    const publisher = new FakePort();
    publish(runtime, publisher, 2, [{ body: body('later'), delayMs: 60_000 }]);
    await waitFor(() => publisher.replies.has(2), 'the publish');
    for (let i = 0; i < 3; i++) await nextTurn();
    expect(entryOps(log, before)).toEqual([['publish']]);
    expect(runtime.state.stats('q')).toMatchObject({ delayed: 1, inFlight: 0 });
  });

  it('gives the credit of an ask that found nothing back (a duplicate publish)', async () => {
    const { log, runtime } = await setup();
    const publisher = new FakePort();
    publish(runtime, publisher, 2, [{ body: body('once'), idempotencyKey: 'k' }]);
    await waitFor(() => publisher.replies.has(2), 'the first publish');
    const consumer = new FakePort();
    const sub = runtime.subscribe(consumer, 1, 'q', 'n1:1:1:1', 1);
    await waitFor(() => consumer.delivered(1).length === 1, 'the stored message');
    const [first] = consumer.delivered(1);
    runtime.submit(
      { op: 'ack', items: [{ queue: 'q', seq: first!.seq, deliveryId: first!.deliveryId }] },
      publisher,
      3,
    );
    await waitFor(() => publisher.replies.has(3) && sub.freeCredit === 1, 'the ack');
    const before = log.proposed.length;
    publish(runtime, publisher, 4, [{ body: body('once'), idempotencyKey: 'k' }]);
    await waitFor(() => publisher.replies.has(4), 'the duplicate');
    expect(entryOps(log, before)[0]).toEqual(['publish', 'deliver']);
    await waitFor(() => sub.requested === 0, 'the ask settled');
    expect(sub.freeCredit).toBe(1);
    publish(runtime, publisher, 5, [{ body: body('next') }]);
    await waitFor(() => consumer.delivered(1).length === 2, 'the next message');
    expect(consumer.delivered(1)[1]!.seq).toBe(2);
  });
});
