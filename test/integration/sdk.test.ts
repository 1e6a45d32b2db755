/**
 * The SDK against a real 3-node cluster (issue 5). Proves: publishing and consuming across a
 * `kill -9` of the leader loses nothing confirmed and stores nothing twice (the queue's published
 * counter equals the number of distinct publishes, and every confirmed message is consumed and
 * acked); the same client object keeps working, subscription included, after every server was
 * killed and started again, and what was confirmed before is all still there; a consumer never
 * holds more than `prefetch` unsettled messages (seen in its handlers and in the leader's
 * in-flight count); `close()` lets running handlers finish and acks them, and confirms publishes
 * still pending; `consumeBatch` hands over full batches by count and partial ones by time;
 * `receive` long-polls an empty queue for its wait and wakes when a message becomes ready.
 */
import { connect, type FlotillaClient } from '@flotilla/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';
import { PublishLoop, statsOn, uniqueQueue, waitForConvergence } from './helpers.js';

describe('the SDK against a real cluster', () => {
  let cluster: TestCluster;
  const clients: FlotillaClient[] = [];

  async function client(name: string): Promise<FlotillaClient> {
    const c = await connect({ servers: cluster.urls(), name });
    clients.push(c);
    return c;
  }

  beforeAll(async () => {
    cluster = await TestCluster.start({ size: 3 });
    await cluster.waitForLeader();
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close({ drain: false })));
    await cluster?.stop();
  });

  it('publishes, consumes and acks across a leader kill with no loss and no duplicate publish', async () => {
    const leader = await cluster.waitForLeader();
    const publisher = await client('kill-pub');
    const consumer = await client('kill-sub');
    const queue = uniqueQueue('sdk-kill');
    await publisher.createQueue(queue, { visibilityTimeoutMs: 5_000 });
    const consumed = new Set<string>();
    let deliveries = 0;
    const sub = await consumer.consume<string>(
      queue,
      (m) => {
        deliveries++;
        consumed.add(m.body);
      },
      { prefetch: 50 },
    );
    const loop = new PublishLoop(publisher, queue, 'p', 20);
    await loop.waitConfirmed(300);
    await cluster.signal(leader.id, 'SIGKILL');
    await loop.waitConfirmed(loop.confirmed.length + 300);
    await loop.stop();
    expect(loop.failures).toEqual([]);

    const confirmed = loop.confirmed.map((c) => c.body);
    await waitFor(() => confirmed.every((b) => consumed.has(b)), {
      timeoutMs: 20_000,
      what: `all ${confirmed.length} confirmed messages consumed (have ${consumed.size})`,
    });
    const stats = await waitFor(
      async () => {
        const s = await publisher.queueStats(queue);
        return s.depth === 0 ? s : false;
      },
      { what: 'the queue to drain' },
    );
    // Each publish was stored once although the SDK resent the unconfirmed ones after the kill.
    expect(stats.publishedCount).toBe(loop.attempted);
    expect(stats.ackedCount).toBe(loop.attempted);
    expect(consumed.size).toBe(loop.attempted);
    console.log(
      `leader kill: ${loop.attempted} published, ${deliveries} deliveries (${deliveries - consumed.size} redelivered)`,
    );
    await sub.close();
    await cluster.startNode(leader.id);
    await waitForConvergence(cluster);
  });

  it('keeps working, subscription included, after every server was killed and restarted', async () => {
    const c = await client('restart-all');
    const queue = uniqueQueue('sdk-restart');
    await c.createQueue(queue);
    const consumed: string[] = [];
    const sub = await c.consume<string>(queue, (m) => void consumed.push(m.body), { prefetch: 10 });
    await c.publish(queue, 'before');
    await waitFor(() => consumed.includes('before'), { what: 'the first message' });

    const durable = uniqueQueue('sdk-durable');
    await c.createQueue(durable);
    await c.publishBatch(
      durable,
      Array.from({ length: 300 }, (_, i) => ({ body: `d${i}` })),
    );

    await Promise.all(cluster.nodes.map((n) => cluster.signal(n.id, 'SIGKILL')));
    const publishing = c.publish(queue, 'during'); // sent while no server runs: waits for one
    await Promise.all(cluster.nodes.map((n) => cluster.startNode(n.id)));
    await cluster.waitForLeader();

    expect((await publishing).seq).toBe(2);
    await c.publish(queue, 'after');
    await waitFor(() => consumed.includes('during') && consumed.includes('after'), {
      timeoutMs: 20_000,
      what: 'messages published after the restart to reach the old subscription',
    });
    expect(c.status).toBe('connected');
    await sub.close();
    // Everything confirmed before every node was killed is still there.
    expect(await c.queueStats(durable)).toMatchObject({ depth: 300, publishedCount: 300 });
    const peeked = await c.peek<string>(durable, { max: 300 });
    expect(peeked.map((m) => m.body)).toEqual(Array.from({ length: 300 }, (_, i) => `d${i}`));
  });

  it('never holds more than prefetch unsettled messages', async () => {
    const c = await client('prefetch');
    const queue = uniqueQueue('sdk-prefetch');
    await c.createQueue(queue);
    const total = 60;
    await c.publishBatch(
      queue,
      Array.from({ length: total }, (_, i) => ({ body: `m${i}` })),
    );
    const prefetch = 5;
    let running = 0;
    let maxRunning = 0;
    let handled = 0;
    let maxInFlight = 0;
    const leader = await cluster.waitForLeader();
    const sub = await c.consume(
      queue,
      async (m) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((r) => setTimeout(r, m.seq % 3));
        running--;
        handled++;
      },
      { prefetch },
    );
    // Sample the leader's own count of leased messages while the consumer works.
    await waitFor(
      async () => {
        maxInFlight = Math.max(maxInFlight, (await statsOn(leader, queue)).inFlight);
        expect(sub.held).toBeLessThanOrEqual(prefetch);
        return handled === total;
      },
      { timeoutMs: 30_000, intervalMs: 20, what: `${total} messages handled` },
    );
    await sub.close();
    expect(maxRunning).toBe(prefetch);
    expect(maxInFlight).toBeLessThanOrEqual(prefetch);
    expect(maxInFlight).toBeGreaterThan(0);
  });

  it('close() lets running handlers finish and acks them, and confirms pending publishes', async () => {
    const feeder = await client('close-feeder');
    const queue = uniqueQueue('sdk-close');
    await feeder.createQueue(queue);
    await feeder.publishBatch(
      queue,
      Array.from({ length: 20 }, (_, i) => ({ body: `m${i}` })),
    );

    const c = await connect({ servers: cluster.urls(), name: 'closing' });
    clients.push(c); // closed by the test itself; afterAll closes it only if the test failed first
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let started = 0;
    let finished = 0;
    await c.consume(
      queue,
      async () => {
        started++;
        await gate;
        finished++;
      },
      { prefetch: 5 },
    );
    await waitFor(() => started === 5, { what: 'five handlers running' });
    const publishes = Array.from({ length: 50 }, (_, i) => c.publish(queue, `late-${i}`));
    let closeDone = false;
    const closing = c.close().then(() => {
      closeDone = true;
    });
    expect(c.status).toBe('draining');
    expect(closeDone).toBe(false);
    release();
    await closing;

    expect(finished).toBe(5);
    expect(started).toBe(5);
    const outcomes = await Promise.allSettled(publishes);
    expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
    const stats = await feeder.queueStats(queue);
    expect(stats).toMatchObject({ ackedCount: 5, inFlight: 0, publishedCount: 70, depth: 65 });
  });

  it('consumeBatch hands over full batches by count, and what arrived by time', async () => {
    const c = await client('batch');
    const byCount = uniqueQueue('sdk-batch-count');
    await c.createQueue(byCount);
    await c.publishBatch(
      byCount,
      Array.from({ length: 30 }, (_, i) => ({ body: `c${i}` })),
    );
    const sizes: number[] = [];
    const countSub = await c.consumeBatch(byCount, (msgs) => void sizes.push(msgs.length), {
      maxMessages: 10,
      maxWaitMs: 60_000,
    });
    await waitFor(() => sizes.length === 3, { what: 'three full batches' });
    await countSub.close();
    expect(sizes).toEqual([10, 10, 10]);

    const byTime = uniqueQueue('sdk-batch-time');
    await c.createQueue(byTime);
    const batches: { bodies: unknown[]; atMs: number }[] = [];
    const maxWaitMs = 300;
    const timeSub = await c.consumeBatch(
      byTime,
      (msgs) => void batches.push({ bodies: msgs.map((m) => m.body), atMs: Date.now() }),
      { maxMessages: 100, maxWaitMs },
    );
    const publishedAtMs = Date.now();
    await c.publishBatch(byTime, [{ body: 't0' }, { body: 't1' }, { body: 't2' }]);
    await waitFor(() => batches.length === 1, { what: 'a batch by time' });
    await timeSub.close();
    expect(batches[0]!.bodies).toEqual(['t0', 't1', 't2']);
    // Handed over maxWaitMs after the first message arrived (less a little: timers run on the
    // event loop's cached clock, which may lag Date.now by a few ms).
    expect(batches[0]!.atMs - publishedAtMs).toBeGreaterThanOrEqual(maxWaitMs - 20);
    await waitFor(async () => (await c.queueStats(byTime)).ackedCount === 3, { what: 'the batch acked' });
    expect((await c.queueStats(byCount)).ackedCount).toBe(30);
  });

  it('receive long-polls an empty queue for its wait and wakes when a message becomes ready', async () => {
    const c = await client('receive');
    const queue = uniqueQueue('sdk-receive');
    await c.createQueue(queue);
    const emptyAtMs = Date.now();
    expect(await c.receive(queue, { max: 5, waitMs: 500 })).toEqual([]);
    expect(Date.now() - emptyAtMs).toBeGreaterThanOrEqual(500);

    // Not ready when the poll starts: the message becomes ready 700 ms after its publish.
    await c.publish(queue, 'wake-up', { delayMs: 700 });
    expect((await c.queueStats(queue)).delayed).toBe(1);
    const msgs = await c.receive<string>(queue, { max: 5, waitMs: 15_000 });
    expect(msgs.map((m) => m.body)).toEqual(['wake-up']);
    await msgs[0]!.ack();

    // A message published by another client while the poll waits is handed to it.
    const other = await client('receive-pub');
    const polling = c.receive<string>(queue, { max: 5, waitMs: 15_000 });
    await other.publish(queue, 'from-elsewhere');
    expect((await polling).map((m) => m.body)).toEqual(['from-elsewhere']);
  });
});
