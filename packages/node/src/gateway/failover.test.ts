/**
 * Proves the leader-following side of the gateway: a follower answers leader-only ops with
 * NOT_LEADER naming the leader (and does nothing), serves cluster; when the leader loses its
 * role, sessions stay open, get goingAway naming the new leader, subscriptions end with
 * NOT_LEADER, parked receives fail NOT_LEADER and writes in flight fail TIMEOUT (maybe applied);
 * a graceful shutdown answers what is in flight, starts no new deliveries, then tells clients to go.
 * A leader whose log refuses answers OVERLOADED (too much uncommitted) or NOT_LEADER naming the
 * node leadership is being handed to. A newly elected leader that has not yet applied what was
 * committed before its term holds subscribe and receive until it has (rather than refusing a
 * queue it does not know yet).
 */
import { DEFAULT_QUEUE_OPTIONS } from '@flotilla/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { nextTurn } from '../broker/testing/fake-port.js';
import { LocalLog } from '../broker/testing/local-log.js';
import { encodeBatch } from '../queues/index.js';
import { bytes, startBroker, type TestBroker, TestClient, waitFor } from './testing/harness.js';

const brokers: TestBroker[] = [];
afterEach(async () => {
  for (const broker of brokers.splice(0)) await broker.close();
});

async function broker(log = new LocalLog()) {
  const b = await startBroker({ log });
  brokers.push(b);
  return b;
}

describe('on a follower', () => {
  it('answers leader-only ops with NOT_LEADER naming the leader, and changes nothing', async () => {
    const log = new LocalLog({ nodeId: 'n1', leaderTerm: null });
    log.becomeFollower('n2', '10.0.0.2:7400', 3);
    const { url, runtime } = await broker(log);
    const client = await TestClient.connect(url);
    const ops = [
      client.error('createQueue', { name: 'q', options: {} }),
      client.error('publish', { queue: 'q', messages: [{ body: bytes('x') }] }),
      client.error('subscribe', { queue: 'q', prefetch: 1 }),
      client.error('receive', { queue: 'q', max: 1, waitMs: 0 }),
      client.error('listQueues', {}),
      client.error('ack', { items: [{ queue: 'q', seq: 1, deliveryId: 1 }] }),
    ];
    for (const reply of await Promise.all(ops)) {
      expect(reply.error.code).toBe('NOT_LEADER');
      expect(reply.error.details).toEqual({ leaderId: 'n2', leaderUrl: 'ws://10.0.0.2:7400/client' });
    }
    expect(log.proposed).toEqual([]);
    expect(runtime.state.queueNames()).toEqual([]);
    expect((await client.ok('cluster', {})).leaderId).toBe('n2');
  });
});

describe('on a leader whose log refuses', () => {
  it('answers OVERLOADED when the log has too much uncommitted, and NOT_LEADER naming a transfer’s target', async () => {
    const log = new LocalLog();
    const { url } = await broker(log);
    const client = await TestClient.connect(url);
    await client.ok('createQueue', { name: 'q', options: {} });
    log.refuseWith = { ok: false, reason: 'overloaded', leaderId: null, leaderAddress: null };
    const overloaded = await client.error('publish', { queue: 'q', messages: [{ body: bytes('x') }] });
    expect(overloaded.error).toMatchObject({ code: 'OVERLOADED', retryable: true, maybeApplied: false });
    log.refuseWith = { ok: false, reason: 'transferring', leaderId: 'n3', leaderAddress: '10.0.0.3:7400' };
    const moving = await client.error('publish', { queue: 'q', messages: [{ body: bytes('x') }] });
    expect(moving.error.code).toBe('NOT_LEADER');
    expect(moving.error.details).toEqual({ leaderId: 'n3', leaderUrl: 'ws://10.0.0.3:7400/client' });
    log.refuseWith = null;
    expect(await client.ok('publish', { queue: 'q', messages: [{ body: bytes('x') }] })).toEqual({
      seqs: [1],
      duplicates: [],
    });
  });
});

describe('a newly elected leader still catching up', () => {
  it('holds subscribe and receive until what was committed before its term is applied, instead of QUEUE_NOT_FOUND', async () => {
    // As after a restart of the whole cluster: the queue was created in an earlier term, and this
    // node learns that entry is committed only when its own first entry commits.
    const log = new LocalLog({ nodeId: 'n1', leaderTerm: null });
    const { url, runtime } = await broker(log);
    log.holdCommits();
    log.appendForeign(
      encodeBatch(Date.now(), [{ op: 'createQueue', queue: 'q', options: DEFAULT_QUEUE_OPTIONS }]),
      1,
    );
    log.becomeLeader(2);
    const client = await TestClient.connect(url);
    const subscribe = client.send('subscribe', { queue: 'q', prefetch: 1 });
    const receive = client.send('receive', { queue: 'q', max: 1, waitMs: 5_000 });
    // Replies come in order on the connection: one to a later request proves these wait.
    await client.ok('cluster', {});
    expect(client.replies.has(subscribe) || client.replies.has(receive)).toBe(false);
    expect(runtime.state.queueOptions('q')).toBeNull();

    log.releaseCommits();
    const subId = await client.reply(subscribe);
    expect(subId).toMatchObject({ kind: 'result', result: expect.any(Number) });
    await client.ok('publish', { queue: 'q', messages: [{ body: bytes('m') }] });
    const received = await client.reply(receive);
    expect(received).toMatchObject({ kind: 'result', result: [{ seq: 1 }] });
    // A queue that really does not exist is still refused once the leader has caught up.
    expect((await client.error('subscribe', { queue: 'nope', prefetch: 1 })).error.code).toBe(
      'QUEUE_NOT_FOUND',
    );
  });
});

describe('leadership loss', () => {
  it('tells sessions where the leader went, ends subscriptions and fails what was pending', async () => {
    const log = new LocalLog();
    const { url } = await broker(log);
    const client = await TestClient.connect(url);
    await client.ok('createQueue', { name: 'q', options: {} });
    await client.ok('createQueue', { name: 'idle', options: {} });
    const subId = await client.ok('subscribe', { queue: 'q', prefetch: 5 });
    // Parked on a queue nobody publishes to: a receive on `q` would ride in the publish's entry.
    const parked = client.send('receive', { queue: 'idle', max: 1, waitMs: 10_000 });
    log.holdCommits();
    const publish = client.send('publish', {
      queue: 'q',
      messages: [{ body: bytes('x'), idempotencyKey: 'k' }],
    });
    await waitFor(() => log.uncommitted === 1, 'publish proposed');
    log.becomeFollower('n2', '10.0.0.2:7400', 2);
    const goingAway = await client.waitForPush((p) => p.kind === 'goingAway', 'goingAway');
    expect(goingAway).toMatchObject({ leaderId: 'n2', leaderUrl: 'ws://10.0.0.2:7400/client' });
    const ended = await client.waitForPush((p) => p.kind === 'subscriptionEnded', 'subscriptionEnded');
    expect(ended).toMatchObject({ subId, code: 'NOT_LEADER' });
    const failedPublish = await client.reply(publish);
    expect(failedPublish.kind === 'error' && failedPublish.error.code).toBe('TIMEOUT');
    const failedReceive = await client.reply(parked);
    expect(failedReceive.kind === 'error' && failedReceive.error.code).toBe('NOT_LEADER');
    // The connection stays open: the client may still ask where things stand.
    expect((await client.ok('cluster', {})).leaderId).toBe('n2');
    expect((await client.error('publish', { queue: 'q', messages: [{ body: bytes('y') }] })).error.code).toBe(
      'NOT_LEADER',
    );
  });

  it('after stepping down without knowing the successor, waits for its name before goingAway', async () => {
    // A hand-over (SIGTERM, transfer API): the old leader steps down at the new term before it
    // hears from the new leader. A goingAway without a name would send clients probing every node.
    const log = new LocalLog();
    const b = await startBroker({ log, settings: { leaderAnnounceWaitMs: 10_000 } });
    brokers.push(b);
    const client = await TestClient.connect(b.url);
    log.becomeFollower(null, null, 2);
    expect((await client.ok('cluster', {})).leaderId).toBeNull();
    expect(client.pushes.filter((p) => p.kind === 'goingAway')).toEqual([]);
    log.becomeFollower('n2', '10.0.0.2:7400', 2);
    const goingAway = await client.waitForPush((p) => p.kind === 'goingAway', 'goingAway');
    expect(goingAway).toMatchObject({ leaderId: 'n2', leaderUrl: 'ws://10.0.0.2:7400/client' });
    expect(client.pushes.filter((p) => p.kind === 'goingAway')).toHaveLength(1);
  });

  it('sends goingAway without a leader when none is known by the end of the wait', async () => {
    const log = new LocalLog();
    const b = await startBroker({ log, settings: { leaderAnnounceWaitMs: 50 } });
    brokers.push(b);
    const client = await TestClient.connect(b.url);
    log.becomeFollower(null, null, 2);
    const goingAway = await client.waitForPush((p) => p.kind === 'goingAway', 'goingAway');
    expect(goingAway).toMatchObject({ leaderId: null, leaderUrl: null });
  });

  it('serves again after regaining leadership, with foreign leases released', async () => {
    const log = new LocalLog();
    const { url, runtime } = await broker(log);
    const client = await TestClient.connect(url);
    await client.ok('createQueue', { name: 'q', options: {} });
    await client.ok('publish', { queue: 'q', messages: [{ body: bytes('x') }] });
    const [leased] = await client.ok('receive', { queue: 'q', max: 1, waitMs: 0 });
    log.becomeFollower(null);
    log.becomeLeader();
    await waitFor(() => runtime.dutiesActive, 'duties of the new term');
    const [again] = await client.ok('receive', { queue: 'q', max: 1, waitMs: 1_000 });
    expect(again).toMatchObject({ seq: leased!.seq, deliveryCount: 2 });
  });
});

describe('graceful shutdown', () => {
  it('answers requests in flight, refuses new ones, then sends goingAway and closes with 1001', async () => {
    const log = new LocalLog();
    const { url, gateway, runtime } = await broker(log);
    const client = await TestClient.connect(url);
    await client.ok('createQueue', { name: 'q', options: {} });
    const subId = await client.ok('subscribe', { queue: 'q', prefetch: 10 });
    log.holdCommits();
    const inFlight = client.send('publish', { queue: 'q', messages: [{ body: bytes('last') }] });
    await waitFor(() => log.uncommitted === 1, 'publish proposed');
    gateway.stopAccepting();
    expect(
      (await client.error('publish', { queue: 'q', messages: [{ body: bytes('late') }] })).error.code,
    ).toBe('UNAVAILABLE');
    const drained = gateway.drain(2_000);
    log.releaseCommits();
    expect(await drained).toBe(0);
    const confirmed = await client.reply(inFlight);
    expect(confirmed.kind).toBe('result');
    // The deliver proposed with the publish (same entry, before the shutdown began) is pushed.
    await client.waitForPush((p) => p.kind === 'deliver', 'the delivery of the last publish');
    expect(client.delivered(subId)).toHaveLength(1);
    // No deliveries start once the shutdown began: the log stays drained.
    const proposed = log.proposed.length;
    for (let turn = 0; turn < 3; turn++) await nextTurn();
    expect(await gateway.drain(100)).toBe(0);
    expect(log.proposed.length).toBe(proposed);
    expect(runtime.state.stats('q')?.inFlight).toBe(1);
    gateway.closeAll('shutdown', 'n2', 'ws://n2:7400/client');
    const closed = await client.closed;
    expect(closed.code).toBe(1001);
    expect(client.pushes.at(-1)).toMatchObject({ kind: 'goingAway', reason: 'shutdown', leaderId: 'n2' });
  });
});
