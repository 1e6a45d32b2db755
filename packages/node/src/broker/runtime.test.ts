/**
 * Proves the queue runtime on a single-node in-process log: commands of one turn become one entry
 * (and several when they pass the caps), replies reach the right owners, proposals lost to a new
 * leader fail retryably (UNAVAILABLE) while proposals pending at a leadership loss fail as
 * "maybe applied" (TIMEOUT), the log's refusals map to OVERLOADED or NOT_LEADER (naming a
 * transfer's target), entries stay within the log's size limit, the leader ticks at the state machine's deadlines, releases foreign
 * leases on gaining leadership, proposes deliveries only for credited subscriptions, and serves
 * long-polling pulls.
 */
import { DEFAULT_QUEUE_OPTIONS, type QueueOptions } from '@flotilla/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { type Command, decodeBatch, encodeBatch, type OkReply } from '../queues/index.js';
import { TimerWheel } from '../runtime/timer-wheel.js';
import { QueueRuntime } from './runtime.js';
import { FakePort, nextTurn, waitFor } from './testing/fake-port.js';
import { LocalLog } from './testing/local-log.js';
import type { RuntimeLimits } from './types.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const opts = (patch: Partial<QueueOptions> = {}): QueueOptions => ({ ...DEFAULT_QUEUE_OPTIONS, ...patch });

const open: { runtime: QueueRuntime; timers: TimerWheel }[] = [];
afterEach(() => {
  for (const { runtime, timers } of open.splice(0)) {
    runtime.stop();
    timers.close();
  }
});

function setup(limits: Partial<RuntimeLimits> = {}, log = new LocalLog()) {
  const timers = new TimerWheel();
  const runtime = new QueueRuntime({ nodeId: log.nodeId, log, timers, limits });
  log.attach(runtime);
  open.push({ runtime, timers });
  return { log, runtime, port: new FakePort() };
}

/** Submits a command and waits for its answer. */
async function run(runtime: QueueRuntime, port: FakePort, token: number, command: Command) {
  const refused = runtime.submit(command, port, token);
  if (refused !== null) throw refused;
  await waitFor(() => port.replies.has(token), `reply ${token}`);
  return port.replies.get(token)!;
}

async function ready(runtime: QueueRuntime): Promise<void> {
  await waitFor(() => runtime.dutiesActive, 'leader duties');
}

function commandsOf(log: LocalLog): Command[][] {
  return log.proposed.map((data) => decodeBatch(data).commands);
}

describe('batching', () => {
  it('turns the commands of one turn into one entry and routes each reply to its owner', async () => {
    const { log, runtime } = setup();
    await ready(runtime);
    const a = new FakePort();
    const b = new FakePort();
    const before = log.proposed.length;
    runtime.submit({ op: 'createQueue', queue: 'q', options: opts() }, a, 1);
    for (let i = 0; i < 5; i++) {
      runtime.submit(
        { op: 'publish', queue: 'q', messages: [{ body: bytes(`m${i}`) }] },
        i % 2 ? a : b,
        10 + i,
      );
    }
    await waitFor(() => a.replies.size === 3 && b.replies.size === 3, 'six replies');
    expect(log.proposed.length - before).toBe(1);
    expect(
      commandsOf(log)
        .at(-1)!
        .map((c) => c.op),
    ).toEqual(['createQueue', 'publish', 'publish', 'publish', 'publish', 'publish']);
    const seqOf = (port: FakePort, token: number) =>
      (port.replies.get(token)!.reply as OkReply<'publish'>).results[0];
    expect([10, 12, 14].map((t) => seqOf(b, t))).toEqual([
      { ok: true, seq: 1, duplicate: false },
      { ok: true, seq: 3, duplicate: false },
      { ok: true, seq: 5, duplicate: false },
    ]);
    expect([11, 13].map((t) => seqOf(a, t))).toEqual([
      { ok: true, seq: 2, duplicate: false },
      { ok: true, seq: 4, duplicate: false },
    ]);
  });

  it('cuts a busy turn into several entries at the command and byte caps', async () => {
    const { log, runtime, port } = setup({ maxEntryCommands: 4, maxEntryBytes: 10_000 });
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    const before = log.proposed.length;
    for (let i = 0; i < 10; i++) {
      runtime.submit({ op: 'publish', queue: 'q', messages: [{ body: new Uint8Array(10) }] }, port, 100 + i);
    }
    runtime.submit({ op: 'publish', queue: 'q', messages: [{ body: new Uint8Array(9_000) }] }, port, 200);
    runtime.submit({ op: 'publish', queue: 'q', messages: [{ body: new Uint8Array(9_000) }] }, port, 201);
    await waitFor(() => port.replies.size === 13, 'all replies');
    // 4 + 4 small ones, then the last 2 small ones share an entry with the first big one (under
    // 10,000 bytes together), and the second big one needs an entry of its own.
    expect(
      commandsOf(log)
        .slice(before)
        .map((c) => c.length),
    ).toEqual([4, 4, 3, 1]);
    expect(runtime.state.stats('q')?.ready).toBe(12);
  });

  it('refuses with OVERLOADED past the pending byte limit, with nothing submitted', async () => {
    const { log, runtime, port } = setup({ maxPendingBytes: 5_000 });
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    log.holdCommits();
    const big: Command = { op: 'publish', queue: 'q', messages: [{ body: new Uint8Array(3_000) }] };
    expect(runtime.submit(big, port, 2)).toBeNull();
    expect(runtime.submit(big, port, 3)?.code).toBe('OVERLOADED');
    log.releaseCommits();
    await waitFor(() => port.replies.has(2), 'first publish');
    expect(runtime.submit(big, port, 4)).toBeNull();
  });
});

describe('refusals of the log', () => {
  it('answers OVERLOADED (retry here), not NOT_LEADER, when the log has too much uncommitted', async () => {
    const { log, runtime, port } = setup();
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    log.refuseWith = { ok: false, reason: 'overloaded', leaderId: null, leaderAddress: null };
    const reply = await run(runtime, port, 2, {
      op: 'publish',
      queue: 'q',
      messages: [{ body: bytes('x') }],
    });
    expect(reply.error).toMatchObject({ code: 'OVERLOADED', retryable: true, maybeApplied: false });
    log.refuseWith = null;
    const again = await run(runtime, port, 3, {
      op: 'publish',
      queue: 'q',
      messages: [{ body: bytes('x') }],
    });
    expect(again.reply?.ok).toBe(true);
  });

  it('answers NOT_LEADER naming the transfer’s target during a hand-over', async () => {
    const { log, runtime, port } = setup();
    await ready(runtime);
    log.refuseWith = { ok: false, reason: 'transferring', leaderId: 'n2', leaderAddress: '10.0.0.2:7401' };
    const reply = await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    expect(reply.error?.code).toBe('NOT_LEADER');
    expect(reply.error?.details).toEqual({ leaderId: 'n2', leaderUrl: 'ws://10.0.0.2:7401/client' });
  });

  it('keeps entries within the log’s limit and refuses a soft cap that is not below it', async () => {
    const { log, runtime, port } = setup({ maxEntryBytes: 15_000 }, new LocalLog({ maxEntryBytes: 20_000 }));
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    // Each estimated at ~6 kB but 18 kB real ('€' takes 3 bytes and counts as one unit): the first
    // two share a batch under the soft cap, whose 36 kB entry the log would refuse.
    const heavy = { trace: '€'.repeat(6_000) };
    for (let i = 0; i < 3; i++) {
      runtime.submit(
        { op: 'publish', queue: 'q', messages: [{ body: bytes(`m${i}`), headers: heavy }] },
        port,
        10 + i,
      );
    }
    await waitFor(() => [10, 11, 12].every((token) => port.replies.has(token)), 'three answers');
    expect([10, 11, 12].map((token) => port.replies.get(token)?.reply?.ok)).toEqual([true, true, true]);
    const entries = log.proposed.filter((entry) => decodeBatch(entry).commands[0]?.op === 'publish');
    expect(entries).toHaveLength(3);
    for (const entry of entries) expect(entry.length).toBeLessThanOrEqual(20_000);
    const timers = new TimerWheel();
    const other = new QueueRuntime({ nodeId: 'n1', timers, limits: { maxEntryBytes: 20_000 } });
    expect(() => other.attachLog(new LocalLog({ maxEntryBytes: 20_000 }))).toThrow(
      /do not fit the log's limit/,
    );
    timers.close();
  });
});

describe('failover', () => {
  it('fails a proposal retryably (UNAVAILABLE) when another term shows up at its index', async () => {
    const { log, runtime, port } = setup();
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    log.holdCommits();
    runtime.submit({ op: 'publish', queue: 'q', messages: [{ body: bytes('lost') }] }, port, 2);
    await waitFor(() => log.uncommitted === 1, 'proposal appended');
    // Another leader's entry (a publish of its own) lands at our index before we hear of the new term.
    const foreign = encodeBatch(Date.now(), [
      { op: 'publish', queue: 'q', messages: [{ body: bytes('theirs') }] },
    ]);
    log.overwriteUncommitted(5, [foreign]);
    log.releaseCommits();
    await waitFor(() => port.replies.has(2), 'lost proposal answer');
    expect(port.replies.get(2)?.error?.code).toBe('UNAVAILABLE');
    expect(runtime.state.stats('q')?.counters.published).toBe(1);
  });

  it('fails a proposal whose index a new leader’s no-op took, and later ones too', async () => {
    const { log, runtime, port } = setup();
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    log.holdCommits();
    runtime.submit({ op: 'publish', queue: 'q', messages: [{ body: bytes('a') }] }, port, 2);
    await waitFor(() => log.uncommitted === 1, 'first proposal appended');
    runtime.submit({ op: 'publish', queue: 'q', messages: [{ body: bytes('b') }] }, port, 3);
    await waitFor(() => log.uncommitted === 2, 'second proposal appended');
    const foreign = encodeBatch(Date.now(), [{ op: 'tick' }]);
    log.overwriteUncommitted(7, [null, null, foreign]);
    log.releaseCommits();
    await waitFor(() => port.replies.size === 3, 'both answers');
    expect([2, 3].map((t) => port.replies.get(t)?.error?.code)).toEqual(['UNAVAILABLE', 'UNAVAILABLE']);
  });

  it('fails pending proposals as maybe applied (TIMEOUT) and queued ones as NOT_LEADER on leadership loss', async () => {
    const { log, runtime, port } = setup();
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    log.holdCommits();
    runtime.submit({ op: 'publish', queue: 'q', messages: [{ body: bytes('pending') }] }, port, 2);
    await waitFor(() => log.uncommitted === 1, 'proposal appended');
    runtime.submit({ op: 'publish', queue: 'q', messages: [{ body: bytes('queued') }] }, port, 3);
    log.becomeFollower('n2', '10.0.0.2:7401', 2);
    expect(port.replies.get(2)?.error?.code).toBe('TIMEOUT');
    expect(port.replies.get(2)?.error?.maybeApplied).toBe(true);
    const notLeader = port.replies.get(3)?.error;
    expect(notLeader?.code).toBe('NOT_LEADER');
    expect(notLeader?.details).toEqual({ leaderId: 'n2', leaderUrl: 'ws://10.0.0.2:7401/client' });
    expect(runtime.submit({ op: 'tick' }, port, 4)?.code).toBe('NOT_LEADER');
  });

  it('on gaining leadership releases leases held through other nodes, without counting them', async () => {
    const log = new LocalLog({ leaderTerm: null });
    const { runtime } = setup({}, log);
    const stamp = Date.now();
    log.appendForeign(
      encodeBatch(stamp, [
        { op: 'createQueue', queue: 'q', options: opts({ maxDeliveries: 1 }) },
        { op: 'publish', queue: 'q', messages: [{ body: bytes('a') }, { body: bytes('b') }] },
        { op: 'deliver', queue: 'q', consumerId: 'n2:4:1:1', max: 2 },
      ]),
      4,
    );
    await waitFor(() => runtime.state.stats('q')?.inFlight === 2, 'foreign leases');
    log.becomeLeader(5);
    await ready(runtime);
    const last = commandsOf(log).at(-1);
    expect(last).toEqual([{ op: 'releaseAllExcept', ownerPrefix: 'n1:5:' }]);
    expect(runtime.state.stats('q')).toMatchObject({ ready: 2, inFlight: 0, counters: { dropped: 0 } });
  });
});

describe('leader duties', () => {
  it('ticks when a lease deadline passes and redelivers to a credited subscription', async () => {
    const { runtime, port } = setup();
    await ready(runtime);
    await run(runtime, port, 1, {
      op: 'createQueue',
      queue: 'q',
      options: opts({ visibilityTimeoutMs: 40 }),
    });
    runtime.subscribe(port, 1, 'q', 'n1:1:1:1', 1);
    await run(runtime, port, 2, { op: 'publish', queue: 'q', messages: [{ body: bytes('x') }] });
    await waitFor(() => port.delivered(1).length === 2, 'redelivery after expiry');
    const [first, second] = port.delivered(1);
    expect(second!.deliveryCount).toBe(2);
    expect(second!.deliveryId).toBeGreaterThan(first!.deliveryId);
    expect(runtime.state.stats('q')?.counters.leasesExpired).toBeGreaterThanOrEqual(1);
  });

  it('proposes deliveries only for subscriptions with free credit, never more than the window', async () => {
    const { log, runtime, port } = setup();
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    const paused = runtime.subscribe(port, 1, 'q', 'n1:1:1:1', 5);
    runtime.setPrefetch(paused, 0);
    runtime.subscribe(port, 2, 'q', 'n1:1:1:2', 3);
    const messages = Array.from({ length: 10 }, (_, i) => ({ body: bytes(`m${i}`) }));
    await run(runtime, port, 2, { op: 'publish', queue: 'q', messages });
    await waitFor(() => port.delivered(2).length === 3, 'three deliveries');
    await nextTurn();
    await nextTurn();
    expect(port.delivered(1)).toEqual([]);
    expect(port.delivered(2).length).toBe(3);
    const delivers = commandsOf(log)
      .flat()
      .filter((c) => c.op === 'deliver');
    expect(delivers.every((c) => c.op === 'deliver' && c.consumerId === 'n1:1:1:2')).toBe(true);
    // An ack frees one slot: exactly one more message follows.
    const [m] = port.delivered(2);
    await run(runtime, port, 3, {
      op: 'ack',
      items: [{ queue: 'q', seq: m!.seq, deliveryId: m!.deliveryId }],
    });
    await waitFor(() => port.delivered(2).length === 4, 'one more delivery');
    await nextTurn();
    await nextTurn();
    expect(port.delivered(2).length).toBe(4);
    expect(runtime.state.stats('q')?.inFlight).toBe(3);
  });

  it('delivers on credit freed by an ack the log applied inside the flush (sendProposals)', async () => {
    const { runtime, port } = setup({}, new LocalLog({ applyOnSendProposals: true }));
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    runtime.subscribe(port, 1, 'q', 'n1:1:1:1', 1);
    const messages = ['a', 'b'].map((text) => ({ body: bytes(text) }));
    await run(runtime, port, 2, { op: 'publish', queue: 'q', messages });
    await waitFor(() => port.delivered(1).length === 1, 'the first delivery');
    // The ack is applied during the flush that proposes it, and frees the only credit there.
    const [m] = port.delivered(1);
    await run(runtime, port, 3, {
      op: 'ack',
      items: [{ queue: 'q', seq: m!.seq, deliveryId: m!.deliveryId }],
    });
    await waitFor(() => port.delivered(1).length === 2, 'the second message, on the freed credit');
  });

  it('answers an unsubscribe only after deliveries in flight for it were pushed', async () => {
    const { log, runtime, port } = setup();
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    await run(runtime, port, 2, { op: 'publish', queue: 'q', messages: [{ body: bytes('x') }] });
    log.holdCommits();
    const sub = runtime.subscribe(port, 1, 'q', 'n1:1:1:1', 10);
    await waitFor(() => sub.requested > 0 && log.uncommitted > 0, 'a deliver in flight');
    runtime.unsubscribe(sub, 77);
    expect(port.unsubscribedTokens).toEqual([]);
    log.releaseCommits();
    await waitFor(() => port.unsubscribedTokens.length === 1, 'unsubscribe answer');
    expect(port.events.filter((e) => e.startsWith('deliver') || e.startsWith('unsub'))).toEqual([
      'deliver:1:1',
      'unsubscribed:1',
    ]);
  });

  it('ends subscriptions and fails parked pulls when the queue is deleted', async () => {
    const { runtime, port } = setup();
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    runtime.subscribe(port, 1, 'q', 'n1:1:1:1', 10);
    runtime.receive(port, 50, { queue: 'q', consumerId: 'n1:1:1:0', max: 1, waitMs: 5_000, leaseMs: null });
    await run(runtime, port, 2, { op: 'deleteQueue', queue: 'q' });
    await waitFor(() => port.ended.length === 1 && port.replies.has(50), 'end and failure');
    expect(port.ended[0]).toMatchObject({ subId: 1, code: 'QUEUE_NOT_FOUND' });
    expect(port.replies.get(50)?.error?.code).toBe('QUEUE_NOT_FOUND');
  });

  it('a failed release (session closed) counts toward maxDeliveries', async () => {
    const { runtime, port } = setup();
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts({ maxDeliveries: 1 }) });
    await run(runtime, port, 2, { op: 'publish', queue: 'q', messages: [{ body: bytes('poison') }] });
    runtime.receive(port, 3, { queue: 'q', consumerId: 'n1:1:9:0', max: 1, waitMs: 0, leaseMs: null });
    await waitFor(() => port.pulls.get(3)?.messages.length === 1, 'pulled');
    runtime.releaseConsumers(['n1:1:9:0']);
    await waitFor(() => runtime.state.stats('q')?.counters.dropped === 1, 'dropped after one failure');
  });
});

describe('pulls', () => {
  it('parks a receive until a publish wakes it, and answers empty at the deadline', async () => {
    const { runtime, port } = setup();
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    runtime.receive(port, 10, { queue: 'q', consumerId: 'n1:1:1:0', max: 5, waitMs: 5_000, leaseMs: 1_000 });
    await nextTurn();
    expect(port.pulls.has(10)).toBe(false);
    await run(runtime, port, 2, {
      op: 'publish',
      queue: 'q',
      messages: [{ body: bytes('a') }, { body: bytes('b') }],
    });
    await waitFor(() => port.pulls.has(10), 'woken pull');
    const pulled = port.pulls.get(10)!;
    expect(pulled.messages.map((m) => m.seq)).toEqual([1, 2]);
    expect(pulled.messages[0]!.leaseDeadlineMs - runtime.state.timeMs).toBeLessThanOrEqual(1_000);
    const startedMs = Date.now();
    runtime.receive(port, 11, { queue: 'q', consumerId: 'n1:1:1:0', max: 5, waitMs: 60, leaseMs: null });
    await waitFor(() => port.pulls.has(11), 'empty answer');
    expect(port.pulls.get(11)!.messages).toEqual([]);
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(55);
  });

  it('wakes no more pulls than there are messages', async () => {
    const { log, runtime, port } = setup();
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    for (let i = 0; i < 20; i++) {
      runtime.receive(port, 100 + i, {
        queue: 'q',
        consumerId: `n1:1:${i}:0`,
        max: 1,
        waitMs: 5_000,
        leaseMs: null,
      });
    }
    const before = log.proposed.length;
    await run(runtime, port, 2, { op: 'publish', queue: 'q', messages: [{ body: bytes('one') }] });
    await waitFor(() => port.pulls.size === 1, 'one pull answered');
    const delivers = commandsOf(log)
      .slice(before)
      .flat()
      .filter((c) => c.op === 'deliver');
    expect(delivers.length).toBe(1);
    expect(port.pulls.has(100)).toBe(true);
  });
});

describe('wiring', () => {
  it('takes its log after construction, serving nothing until then', async () => {
    const timers = new TimerWheel();
    const runtime = new QueueRuntime({ nodeId: 'n1', timers });
    open.push({ runtime, timers });
    const port = new FakePort();
    expect(runtime.status()).toMatchObject({ nodeId: 'n1', role: 'follower', leaderId: null });
    expect(runtime.submit({ op: 'tick' }, port, 1)?.code).toBe('NOT_LEADER');
    const log = new LocalLog({ nodeId: 'n1' });
    log.attach(runtime);
    runtime.attachLog(log);
    await ready(runtime);
    await run(runtime, port, 2, { op: 'createQueue', queue: 'q', options: opts() });
    expect(runtime.state.queueNames()).toEqual(['q']);
    expect(() => runtime.attachLog(log)).toThrow(/already/);
  });
});

describe('snapshots', () => {
  it('restores the runtime from its own snapshot through the ReplicatedStateMachine interface', async () => {
    const { runtime, port } = setup();
    await ready(runtime);
    await run(runtime, port, 1, { op: 'createQueue', queue: 'q', options: opts() });
    await run(runtime, port, 2, {
      op: 'publish',
      queue: 'q',
      messages: [{ body: bytes('kept'), format: 1 }],
    });
    const source = runtime.snapshot();
    const chunks: Uint8Array[] = [];
    for (let chunk = source.next(); chunk !== null; chunk = source.next()) chunks.push(chunk);
    const other = setup({}, new LocalLog({ leaderTerm: null })).runtime;
    await other.restore(
      (async function* () {
        yield* chunks;
      })(),
      source.index,
    );
    expect(other.lastAppliedIndex).toBe(source.index);
    expect(other.state.digest()).toBe(runtime.state.digest());
    expect(other.state.peek('q', 0, 1)?.[0]).toMatchObject({ format: 1 });
  });
});
