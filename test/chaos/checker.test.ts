/**
 * Proves the checker catches each kind of violation in hand-made histories, and that the things
 * chaos legitimately causes (maybe-applied failures, redeliveries of unacked messages, deliveries
 * to a crashed consumer, late arrival of an old delivery, concurrent publishes) are not reported.
 */
import { describe, expect, it } from 'vitest';
import { checkHistory, formatReport, type Property, summaryLine } from './checker.js';
import {
  encodePayload,
  type FinalQueue,
  type FinalState,
  type HistoryEvent,
  type HistoryEventBody,
  parseHistory,
} from './history.js';

const MAYBE = new Set(['TIMEOUT', 'CONNECTION_LOST', 'CLOSED', 'INTERNAL']);

/** Builds a history the way the workload would record it, one call per client-visible event. */
class Script {
  readonly events: HistoryEvent[] = [];
  private op = 0;
  private t = 0;

  private add(body: HistoryEventBody): HistoryEvent {
    this.t += 10;
    const event = { i: this.events.length, t: this.t, ...body } as HistoryEvent;
    this.events.push(event);
    return event;
  }

  publish(pid: string, queue = 'q', opts: { key?: string; group?: string; client?: string } = {}): number {
    const op = ++this.op;
    this.add({
      kind: 'publish-invoke',
      op,
      client: opts.client ?? 'p1',
      queue,
      pid,
      key: opts.key ?? null,
      group: opts.group ?? null,
    });
    return op;
  }

  ok(op: number, seq: number, duplicate = false): this {
    const invoke = this.invoke(op);
    this.add({
      kind: 'publish-ok',
      op,
      client: invoke.client,
      queue: invoke.queue,
      pid: invoke.pid,
      seq,
      duplicate,
    });
    return this;
  }

  fail(op: number, code: string): this {
    const invoke = this.invoke(op);
    this.add({
      kind: 'publish-fail',
      op,
      client: invoke.client,
      queue: invoke.queue,
      pid: invoke.pid,
      code,
      maybeApplied: MAYBE.has(code),
    });
    return this;
  }

  /** Publish and confirm in one go. */
  stored(
    pid: string,
    seq: number,
    queue = 'q',
    opts: { key?: string; group?: string; client?: string } = {},
  ): this {
    return this.ok(this.publish(pid, queue, opts), seq);
  }

  deliver(
    pid: string,
    seq: number,
    deliveryId: number,
    deliveryCount: number,
    opts: { queue?: string; origin?: string; group?: string; client?: string; body?: string } = {},
  ): this {
    const queue = opts.queue ?? 'q';
    const body = opts.body ?? encodePayload({ pid, queue: opts.origin ?? queue, pad: 'xyz' });
    this.add({
      kind: 'deliver',
      client: opts.client ?? 'c1',
      queue,
      seq,
      deliveryId,
      deliveryCount,
      group: opts.group ?? null,
      body,
    });
    return this;
  }

  settleInvoke(seq: number, deliveryId: number, settle: 'ack' | 'nack' = 'ack', queue = 'q'): number {
    const op = ++this.op;
    this.add({ kind: 'settle-invoke', op, settle, client: 'c1', queue, seq, deliveryId });
    return op;
  }

  settleOk(op: number): this {
    const invoke = this.settleOf(op);
    this.add({ ...invoke, kind: 'settle-ok' });
    return this;
  }

  settleFail(op: number, code: string): this {
    const invoke = this.settleOf(op);
    this.add({ ...invoke, kind: 'settle-fail', code, maybeApplied: MAYBE.has(code) });
    return this;
  }

  ack(seq: number, deliveryId: number, queue = 'q'): this {
    return this.settleOk(this.settleInvoke(seq, deliveryId, 'ack', queue));
  }

  nack(seq: number, deliveryId: number, queue = 'q'): this {
    return this.settleOk(this.settleInvoke(seq, deliveryId, 'nack', queue));
  }

  crash(client: string): this {
    this.add({ kind: 'crash', client, abandoned: [] });
    return this;
  }

  fault(name: string): this {
    this.add({ kind: 'nemesis', phase: 'start', fault: 0, name, detail: '' });
    this.add({ kind: 'nemesis', phase: 'end', fault: 0, name, detail: '' });
    return this;
  }

  /** Moves the clock on without an event (for unavailability windows). */
  wait(ms: number): this {
    this.t += ms;
    return this;
  }

  private invoke(op: number) {
    const event = this.events.find((e) => e.kind === 'publish-invoke' && e.op === op);
    if (event?.kind !== 'publish-invoke') throw new Error(`no publish op ${op}`);
    return event;
  }

  private settleOf(op: number) {
    const event = this.events.find((e) => e.kind === 'settle-invoke' && e.op === op);
    if (event?.kind !== 'settle-invoke') throw new Error(`no settle op ${op}`);
    const { i: _i, t: _t, kind: _kind, ...rest } = event;
    return rest;
  }
}

const QUEUES: FinalQueue[] = [
  { name: 'q', depth: 0, inFlight: 0, delayed: 0, deadLetterQueue: null, maxDeliveries: 0 },
  { name: 'g', depth: 0, inFlight: 0, delayed: 0, deadLetterQueue: null, maxDeliveries: 0 },
  { name: 'src', depth: 0, inFlight: 0, delayed: 0, deadLetterQueue: 'dlq', maxDeliveries: 2 },
  { name: 'dlq', depth: 0, inFlight: 0, delayed: 0, deadLetterQueue: null, maxDeliveries: 0 },
];

function finalState(patch: Partial<FinalState> = {}): FinalState {
  return {
    nodes: [
      { id: 'n1', appliedIndex: 100, digest: 'abc' },
      { id: 'n2', appliedIndex: 100, digest: 'abc' },
      { id: 'n3', appliedIndex: 100, digest: 'abc' },
    ],
    queues: QUEUES,
    servedAgainMs: 800,
    convergedMs: 300,
    recoveryBoundMs: 10_000,
    ...patch,
  };
}

function violationsOf(script: Script, final = finalState()) {
  return checkHistory(script.events, final).violations.map((v) => `${v.property}:${v.kind}`);
}

function only(script: Script, property: Property, kind: string, final?: FinalState) {
  const report = checkHistory(script.events, final ?? finalState());
  expect(report.violations.map((v) => `${v.property}:${v.kind}`)).toEqual([`${property}:${kind}`]);
  return report.violations[0]!;
}

describe('a clean history', () => {
  it('passes, with what chaos legitimately causes, and counts it', () => {
    const s = new Script();
    s.fault('kill-leader');
    // Plain publish, delivered and acked.
    s.stored('a', 1).deliver('a', 1, 1, 1).ack(1, 1);
    // Unknown outcome, never stored: fine. Unknown outcome, stored after all: fine too.
    s.fail(s.publish('b'), 'TIMEOUT');
    const c = s.publish('c');
    s.fail(c, 'CONNECTION_LOST').deliver('c', 2, 2, 1).ack(2, 2);
    // Refused outright and never delivered.
    s.fail(s.publish('d'), 'UNAVAILABLE');
    // Lease expired under a slow consumer: the late ack fails, the message comes back, is acked.
    s.stored('e', 3).deliver('e', 3, 3, 1);
    s.settleFail(s.settleInvoke(3, 3), 'LEASE_EXPIRED');
    s.deliver('e', 3, 4, 2).ack(3, 4);
    // Delivered to a consumer that crashed, then redelivered and acked.
    s.stored('f', 4).deliver('f', 4, 5, 1, { client: 'crasher' }).crash('crasher');
    s.deliver('f', 4, 6, 2).ack(4, 6);
    // An ack whose reply was lost: the message may be settled and never shows up again.
    s.stored('g', 5).deliver('g', 5, 7, 1);
    s.settleFail(s.settleInvoke(5, 7), 'CONNECTION_LOST');
    // An old delivery arriving after the ack of a newer one is late, not a redelivery.
    s.stored('h', 6).deliver('h', 6, 9, 2).ack(6, 9).deliver('h', 6, 8, 1);
    // Application retry with the same key after an unknown outcome: stored once, duplicate reply.
    s.fail(s.publish('k', 'q', { key: 'k' }), 'TIMEOUT');
    s.ok(s.publish('k', 'q', { key: 'k' }), 7, true)
      .deliver('k', 7, 10, 1)
      .ack(7, 10);
    // Nacked until dead-lettered, then drained from the dead-letter queue.
    s.stored('m', 1, 'src').deliver('m', 1, 11, 1, { queue: 'src' }).nack(1, 11, 'src');
    s.deliver('m', 1, 12, 2, { queue: 'src' }).nack(1, 12, 'src');
    s.deliver('m', 1, 13, 1, { queue: 'dlq', origin: 'src' }).ack(1, 13, 'dlq');
    // A group in order, one at a time.
    s.stored('g1', 1, 'g', { group: 'x' }).stored('g2', 2, 'g', { group: 'x' });
    s.deliver('g1', 1, 14, 1, { queue: 'g', group: 'x' }).ack(1, 14, 'g');
    s.deliver('g2', 2, 15, 1, { queue: 'g', group: 'x' }).ack(2, 15, 'g');

    const report = checkHistory(s.events, finalState());
    expect(formatReport(report)).not.toContain('VIOLATION');
    expect(report.violations).toEqual([]);
    expect(report.counts).toMatchObject({
      faults: 1,
      published: 12,
      confirmed: 9,
      failedMaybe: 2,
      failedDefinite: 1,
      lost: 0,
      duplicates: 4,
      deadLettered: 1,
    });
    expect(summaryLine(report)).toBe('chaos: 1 faults, 9 confirmed, 0 lost, 4 duplicates, 0 violations');
  });
});

describe('property 1: confirmed publishes are not lost', () => {
  it('catches a confirmed message never delivered', () => {
    const v = only(new Script().stored('a', 1), 1, 'lost');
    expect(v.ids).toEqual(['a', 'q#1']);
  });

  it('catches a message whose only ack was refused and that never came back', () => {
    const s = new Script().stored('a', 1).deliver('a', 1, 1, 1);
    s.settleFail(s.settleInvoke(1, 1), 'LEASE_EXPIRED');
    only(s, 1, 'lost');
  });

  it('catches a message delivered only to a consumer that crashed', () => {
    only(new Script().stored('a', 1).deliver('a', 1, 1, 1, { client: 'x' }).crash('x'), 1, 'lost');
  });

  it('catches a message nacked and then dropped although it has a dead-letter queue', () => {
    const s = new Script().stored('a', 1, 'src').deliver('a', 1, 1, 1, { queue: 'src' }).nack(1, 1, 'src');
    only(s, 1, 'lost');
  });
});

describe('property 2: nothing phantom or corrupted is delivered', () => {
  it('catches a delivery of a payload never published', () => {
    const v = only(new Script().deliver('ghost', 1, 1, 1).ack(1, 1), 2, 'phantom');
    expect(v.ids).toContain('ghost');
  });

  it('catches a delivery of a publish that was refused outright', () => {
    const s = new Script();
    s.fail(s.publish('a'), 'QUEUE_FULL');
    s.deliver('a', 1, 1, 1).ack(1, 1);
    only(s, 2, 'phantom');
  });

  it('catches a body that fails its checksum', () => {
    const good = encodePayload({ pid: 'a', queue: 'q', pad: 'xyz' });
    const s = new Script().stored('a', 1).deliver('a', 1, 1, 1, { body: good.replace('xyz', 'xyZ') });
    s.deliver('a', 1, 2, 2).ack(1, 2);
    only(s, 2, 'corrupted');
  });

  it('catches a message delivered from a queue it was not published to', () => {
    const s = new Script().stored('a', 1).deliver('a', 1, 1, 1).ack(1, 1);
    s.deliver('a', 9, 2, 1, { queue: 'dlq', origin: 'q' });
    only(s, 2, 'misrouted');
  });

  it('catches one seq carrying two different messages', () => {
    const s = new Script().stored('a', 1);
    s.publish('b');
    s.deliver('a', 1, 1, 1).ack(1, 1).deliver('b', 1, 2, 1);
    expect(violationsOf(s)).toContain('2:seq-reused');
  });

  it('catches a message delivered in the wrong group', () => {
    const s = new Script().stored('a', 1, 'g', { group: 'x' });
    s.deliver('a', 1, 1, 1, { queue: 'g', group: 'y' }).ack(1, 1, 'g');
    only(s, 2, 'corrupted');
  });
});

describe('property 3: no delivery after a confirmed ack', () => {
  it('catches a newer delivery after the ack was confirmed', () => {
    const s = new Script().stored('a', 1).deliver('a', 1, 1, 1).ack(1, 1).deliver('a', 1, 2, 2);
    const v = only(s, 3, 'redelivered-after-ack');
    expect(v.message).toContain('delivery 2');
  });

  it('catches a second lease with the same delivery count', () => {
    const s = new Script().stored('a', 1).deliver('a', 1, 1, 1).ack(1, 1).deliver('a', 1, 5, 1);
    only(s, 3, 'redelivered-after-ack');
  });

  it('reports a confirmed ack of a lease a newer delivery replaced as an anomaly, not a violation', () => {
    // The newer delivery came before the stale ack was confirmed: no promise broken, but the
    // protocol says such an ack gets LEASE_EXPIRED.
    const s = new Script().stored('a', 1).deliver('a', 1, 1, 1, { client: 'slow' });
    s.deliver('a', 1, 2, 2).ack(1, 2).ack(1, 1);
    const report = checkHistory(s.events, finalState());
    expect(report.violations).toEqual([]);
    expect(report.anomalies.map((a) => a.kind)).toEqual(['stale-ack-confirmed']);
    expect(formatReport(report)).toContain('ANOMALY [3] stale-ack-confirmed');
  });

  it('catches a dead letter of a message whose ack was confirmed', () => {
    const s = new Script().stored('a', 1, 'src').deliver('a', 1, 1, 1, { queue: 'src' }).ack(1, 1, 'src');
    s.deliver('a', 1, 2, 1, { queue: 'dlq', origin: 'src' }).ack(1, 2, 'dlq');
    only(s, 3, 'dead-lettered-after-ack');
  });
});

describe('property 4: stored once', () => {
  it('catches an idempotent publish confirmed under two seqs', () => {
    const s = new Script();
    s.ok(s.publish('a', 'q', { key: 'a' }), 1);
    s.ok(s.publish('a', 'q', { key: 'a' }), 2, true);
    s.deliver('a', 1, 1, 1).ack(1, 1);
    const v = only(s, 4, 'stored-twice');
    expect(v.ids).toEqual(['a', 'q#1', 'q#2']);
  });

  it('catches a retried publish delivered under a second seq', () => {
    const s = new Script().stored('a', 1).deliver('a', 1, 1, 1).ack(1, 1).deliver('a', 2, 2, 1).ack(2, 2);
    only(s, 4, 'stored-twice');
  });
});

describe('property 5: message groups', () => {
  it('catches two messages of one group surely in flight at once', () => {
    const s = new Script().stored('g1', 1, 'g', { group: 'x' }).stored('g2', 2, 'g', { group: 'x' });
    s.deliver('g1', 1, 1, 1, { queue: 'g', group: 'x' }).deliver('g2', 2, 2, 1, { queue: 'g', group: 'x' });
    s.ack(1, 1, 'g').ack(2, 2, 'g');
    only(s, 5, 'group-overlap');
  });

  it('does not report overlap when one lease had already ended (its ack was refused)', () => {
    const s = new Script().stored('g1', 1, 'g', { group: 'x' }).stored('g2', 2, 'g', { group: 'x' });
    s.deliver('g1', 1, 1, 1, { queue: 'g', group: 'x' }).deliver('g2', 2, 2, 1, { queue: 'g', group: 'x' });
    s.settleFail(s.settleInvoke(1, 1, 'ack', 'g'), 'LEASE_EXPIRED');
    s.ack(2, 2, 'g').deliver('g1', 1, 3, 2, { queue: 'g', group: 'x' }).ack(1, 3, 'g');
    expect(violationsOf(s)).toEqual([]);
  });

  it('does not take the confirmed ack of a replaced lease as proof the message was still in flight', () => {
    const s = new Script().stored('g1', 1, 'g', { group: 'x' }).stored('g2', 2, 'g', { group: 'x' });
    s.deliver('g1', 1, 1, 1, { queue: 'g', group: 'x' }).deliver('g1', 1, 2, 2, { queue: 'g', group: 'x' });
    s.ack(1, 2, 'g').deliver('g2', 2, 3, 1, { queue: 'g', group: 'x' });
    s.ack(1, 1, 'g').ack(2, 3, 'g');
    const report = checkHistory(s.events, finalState());
    expect(report.violations).toEqual([]);
    expect(report.anomalies).toHaveLength(1);
  });

  it('catches first deliveries out of the order publishes were confirmed in', () => {
    const s = new Script().stored('g1', 1, 'g', { group: 'x' }).stored('g2', 2, 'g', { group: 'x' });
    s.deliver('g2', 2, 1, 1, { queue: 'g', group: 'x' }).ack(2, 1, 'g');
    s.deliver('g1', 1, 2, 1, { queue: 'g', group: 'x' }).ack(1, 2, 'g');
    const v = only(s, 5, 'group-order');
    expect(v.ids).toEqual(['g1', 'g2']);
  });

  it('has no order to keep between concurrent publishes, or across producers', () => {
    const s = new Script();
    const one = s.publish('g1', 'g', { group: 'x' });
    const two = s.publish('g2', 'g', { group: 'x' });
    s.ok(one, 1).ok(two, 2).stored('h1', 3, 'g', { group: 'x', client: 'p2' });
    s.deliver('h1', 3, 1, 1, { queue: 'g', group: 'x' }).ack(3, 1, 'g');
    s.deliver('g2', 2, 2, 1, { queue: 'g', group: 'x' }).ack(2, 2, 'g');
    s.deliver('g1', 1, 3, 1, { queue: 'g', group: 'x' }).ack(1, 3, 'g');
    expect(violationsOf(s)).toEqual([]);
  });
});

describe('property 6: convergence and recovery', () => {
  const clean = () => new Script().stored('a', 1).deliver('a', 1, 1, 1).ack(1, 1);

  it('catches replicas with different digests or applied indexes', () => {
    const nodes = [
      { id: 'n1', appliedIndex: 100, digest: 'abc' },
      { id: 'n2', appliedIndex: 100, digest: 'abd' },
    ];
    const v = only(clean(), 6, 'diverged', finalState({ nodes }));
    expect(v.ids).toEqual(['n1', 'n2']);
    const behind = [nodes[0]!, { id: 'n2', appliedIndex: 99, digest: 'abc' }];
    only(clean(), 6, 'diverged', finalState({ nodes: behind }));
  });

  it('catches a cluster that did not converge or serve within the bound', () => {
    only(clean(), 6, 'slow-convergence', finalState({ convergedMs: null }));
    only(clean(), 6, 'unavailable-after-heal', finalState({ servedAgainMs: 12_000 }));
  });

  it('catches a member that crashed, stayed silent, or a fault the cluster could not go through', () => {
    const crashes = [{ id: 'n2', detail: 'exited (code 1): invalid queue snapshot' }];
    only(clean(), 6, 'node-crashed', finalState({ crashes }));
    only(clean(), 6, 'member-silent', finalState({ members: ['n1', 'n2', 'n3', 'n4'] }));
    only(clean(), 6, 'fault-failed', finalState({ faultErrors: ['#3 membership: promote timed out'] }));
  });

  it('catches queues left undrained', () => {
    const queues = QUEUES.map((q) => (q.name === 'q' ? { ...q, depth: 3, inFlight: 1 } : q));
    only(clean(), 6, 'not-drained', finalState({ queues }));
    const unknown = QUEUES.map((q) => (q.name === 'g' ? { ...q, depth: -1 } : q));
    expect(only(clean(), 6, 'not-drained', finalState({ queues: unknown })).message).toContain(
      'could not be read',
    );
  });
});

describe('reports', () => {
  it('measures unavailability windows between publish confirmations', () => {
    const s = new Script().stored('a', 1).wait(2_500).stored('b', 2);
    s.deliver('a', 1, 1, 1).ack(1, 1).deliver('b', 2, 2, 1).ack(2, 2);
    const report = checkHistory(s.events, finalState());
    expect(report.counts.unavailabilityWindows).toBe(1);
    expect(report.counts.longestUnavailableMs).toBeGreaterThanOrEqual(2_500);
  });

  it('prints every violation with the ids involved, and a summary line that counts them', () => {
    const s = new Script().stored('a', 1).stored('b', 2);
    const report = checkHistory(s.events, finalState());
    const text = formatReport(report);
    expect(text).toContain('VIOLATION [1] lost');
    expect(text).toContain('[a q#1]');
    expect(text).toContain('[b q#2]');
    expect(summaryLine(report)).toBe('chaos: 0 faults, 2 confirmed, 2 lost, 0 duplicates, 2 violations');
  });

  it('reads histories, ignoring only a torn last line', () => {
    const line = JSON.stringify({ i: 0, t: 0, kind: 'phase', name: 'healed' });
    expect(parseHistory(`${line}\n${line}\n{"i":2,"t"`)).toHaveLength(2);
    expect(() => parseHistory(`${line}\n{"i":1\n${line}\n`)).toThrow(/history:2/);
  });
});
