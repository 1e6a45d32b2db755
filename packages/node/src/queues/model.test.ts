/**
 * Property tests over random command sequences (fast-check; a failure prints the seed and the
 * shrunk sequence that replays it):
 * - the state machine agrees with the naive reference model, reply by reply and message by message;
 * - no message is lost or duplicated: every published message is, at every step, in exactly one
 *   of ready / delayed / in flight or one of the exit counters (acked, dead-lettered, expired,
 *   dropped, purged, redriven); an acked message is never delivered again; nothing is delivered
 *   that was not published;
 * - at most one message per group is in flight or retrying; first deliveries of ungrouped,
 *   undelayed messages keep FIFO order within a priority;
 * - determinism: a replica fed the same commands through the log encoding, batched differently
 *   and restored from snapshots at random points, has the same digest after every entry.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch } from './commands.js';
import { type ModelQueueConfig, ReferenceModel } from './reference-model.js';
import { QueueStateMachine } from './state-machine.js';
import { queueOptions, T0 } from './test-support.js';
import type { Command, DeliveredMessage, DeliveryRef, QueueStats, Reply } from './types.js';

const CONSUMERS = ['n1/1', 'n1/2', 'n2/1'];
const QUEUES = ['dlq', 'main'] as const;

type Gen =
  | {
      kind: 'publish';
      messages: {
        size: number;
        key: string | null;
        delayMs: number | null;
        ttlMs: number | null;
        group: string | null;
        priority: number | null;
      }[];
    }
  | { kind: 'deliver'; queue: (typeof QUEUES)[number]; consumer: string; max: number; leaseMs: number | null }
  | { kind: 'ack' | 'nack' | 'extend'; picks: number[]; ms: number | null; reject: boolean }
  | { kind: 'release'; consumers: string[]; failed: boolean }
  | { kind: 'releaseAllExcept'; prefix: string }
  | { kind: 'purge' }
  | { kind: 'redrive'; max: number | null }
  | { kind: 'tick' };

const genArb: fc.Arbitrary<Gen> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('publish' as const),
      messages: fc.array(
        fc.record({
          size: fc.integer({ min: 1, max: 6 }),
          key: fc.option(fc.constantFrom('k0', 'k1', 'k2', 'k3')),
          delayMs: fc.option(fc.constantFrom(0, 50, 200)),
          ttlMs: fc.option(fc.constantFrom(0, 100, 400)),
          group: fc.option(fc.constantFrom('g0', 'g1')),
          priority: fc.option(fc.integer({ min: 0, max: 3 })),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('deliver' as const),
      queue: fc.constantFrom(...QUEUES),
      consumer: fc.constantFrom(...CONSUMERS),
      max: fc.integer({ min: 1, max: 3 }),
      leaseMs: fc.option(fc.constantFrom(100, 300)),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constantFrom('ack' as const, 'nack' as const, 'extend' as const),
      picks: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
      ms: fc.option(fc.constantFrom(0, 150, 400)),
      reject: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('release' as const),
      consumers: fc.subarray(CONSUMERS),
      failed: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('releaseAllExcept' as const),
      prefix: fc.constantFrom('n1/', 'n2/'),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'purge' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('redrive' as const),
      max: fc.option(fc.integer({ min: 1, max: 3 })),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'tick' as const }) },
);

const stepArb = fc.record({ dtMs: fc.constantFrom(0, 0, 10, 60, 150, 400), gen: genArb });

const configArb: fc.Arbitrary<ModelQueueConfig> = fc.record({
  maxMessages: fc.constantFrom(0, 4, 8),
  overflow: fc.constantFrom('reject' as const, 'drop-oldest' as const),
  maxDeliveries: fc.constantFrom(0, 2, 3),
  deadLetterQueue: fc.constantFrom('dlq', null),
  messageTtlMs: fc.constantFrom(0, 300),
  deliveryDelayMs: fc.constantFrom(0, 100),
  visibilityTimeoutMs: fc.constantFrom(200, 500),
  retryDelayMs: fc.constantFrom(0, 100),
  dedupWindowMs: fc.constantFrom(300, 1000),
  priorityLevels: fc.constantFrom(1, 3),
});
const dlqConfigArb: fc.Arbitrary<ModelQueueConfig> = fc.record({
  maxMessages: fc.constantFrom(0, 3),
  overflow: fc.constantFrom('reject' as const, 'drop-oldest' as const),
  maxDeliveries: fc.constant(0),
  deadLetterQueue: fc.constant(null),
  messageTtlMs: fc.constant(0),
  deliveryDelayMs: fc.constant(0),
  visibilityTimeoutMs: fc.constant(300),
  retryDelayMs: fc.constantFrom(0, 100),
  dedupWindowMs: fc.constant(1000),
  priorityLevels: fc.constantFrom(1, 3),
});

function toOptions(c: ModelQueueConfig) {
  return queueOptions({ ...c, retry: { backoff: 'fixed', delayMs: c.retryDelayMs, maxDelayMs: 0 } });
}

/** Turns a generated step into a command; refs point into the deliveries seen so far. */
function toCommand(
  gen: Gen,
  deliveries: { queue: string; m: DeliveredMessage }[],
  bodyCounter: { n: number },
): Command {
  const refs = (picks: number[]): DeliveryRef[] =>
    deliveries.length === 0
      ? []
      : picks.map((p) => {
          const { queue, m } = deliveries[p % deliveries.length] as { queue: string; m: DeliveredMessage };
          return { queue, seq: m.seq, deliveryId: m.deliveryId };
        });
  switch (gen.kind) {
    case 'publish':
      return {
        op: 'publish',
        queue: 'main',
        messages: gen.messages.map((m) => ({
          body: new Uint8Array(m.size).fill(bodyCounter.n++ % 251),
          idempotencyKey: m.key,
          delayMs: m.delayMs,
          ttlMs: m.ttlMs,
          group: m.group,
          priority: m.priority,
        })),
      };
    case 'deliver':
      return {
        op: 'deliver',
        queue: gen.queue,
        consumerId: gen.consumer,
        max: gen.max,
        leaseMs: gen.leaseMs,
      };
    case 'ack':
      return { op: 'ack', items: refs(gen.picks) };
    case 'nack':
      return gen.reject
        ? { op: 'nack', items: refs(gen.picks), deadLetter: true }
        : { op: 'nack', items: refs(gen.picks), delayMs: gen.ms };
    case 'extend':
      return { op: 'extend', items: refs(gen.picks), ms: gen.ms || 100 };
    case 'release':
      return { op: 'release', consumerIds: gen.consumers, failed: gen.failed };
    case 'releaseAllExcept':
      return { op: 'releaseAllExcept', ownerPrefix: gen.prefix };
    case 'purge':
      return { op: 'purgeQueue', queue: 'main' };
    case 'redrive':
      return { op: 'redrive', dlq: 'dlq', max: gen.max };
    case 'tick':
      return { op: 'tick' };
  }
}

/** What the model answers for `command` (after the model's clock was advanced). */
function modelReply(model: ReferenceModel, c: Command): unknown {
  switch (c.op) {
    case 'publish':
      return { ok: true, op: c.op, results: model.publish(c.queue, c.messages) };
    case 'deliver':
      return { ok: true, op: c.op, ...model.deliver(c.queue, c.consumerId, c.max, c.leaseMs ?? null) };
    case 'ack':
      return { ok: true, op: c.op, results: model.ack(c.items) };
    case 'nack':
      return { ok: true, op: c.op, results: model.nack(c.items, c.delayMs ?? null, c.deadLetter === true) };
    case 'extend':
      return { ok: true, op: c.op, results: model.extend(c.items, c.ms) };
    case 'release':
      return { ok: true, op: c.op, released: model.release(c.consumerIds, c.failed === true) };
    case 'releaseAllExcept':
      return { ok: true, op: c.op, released: model.releaseAllExcept(c.ownerPrefix) };
    case 'purgeQueue':
      return { ok: true, op: c.op, purged: model.purge(c.queue) };
    case 'redrive':
      return { ok: true, op: c.op, ...model.redrive(c.dlq, c.max ?? null) };
    default:
      return { ok: true, op: c.op };
  }
}

/** Error messages are for people; codes are the contract. */
function withoutMessages(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (key, v) => (key === 'message' ? undefined : v instanceof Uint8Array ? [...v] : v)),
  );
}

const EXITS = ['acked', 'deadLettered', 'expired', 'dropped', 'purged', 'redriven'] as const;

function checkConservation(stats: QueueStats, held: number): void {
  const exited = EXITS.reduce((sum, name) => sum + stats.counters[name], 0);
  expect(stats.ready + stats.delayed + stats.inFlight).toBe(held);
  expect(stats.counters.published).toBe(held + exited);
}

describe('queue state machine against the reference model', () => {
  it('agrees with the model and keeps every message accounted for', () => {
    fc.assert(
      fc.property(configArb, dlqConfigArb, fc.array(stepArb, { maxLength: 60 }), (mainCfg, dlqCfg, steps) => {
        const sm = new QueueStateMachine();
        const model = new ReferenceModel();
        sm.apply({ timeMs: T0 }, { op: 'createQueue', queue: 'dlq', options: toOptions(dlqCfg) });
        sm.apply({ timeMs: T0 }, { op: 'createQueue', queue: 'main', options: toOptions(mainCfg) });
        model.addQueue('dlq', dlqCfg);
        model.addQueue('main', mainCfg);
        const deliveries: { queue: string; m: DeliveredMessage }[] = [];
        const published = new Set<number>();
        const readyAtPublish = new Set<number>();
        const acked = new Set<string>();
        const lastFirstSeq = new Map<number, number>();
        const bodyCounter = { n: 0 };
        let now = T0;
        for (const { dtMs, gen } of steps) {
          now += dtMs;
          const command = toCommand(gen, deliveries, bodyCounter);
          const liveBefore = new Set((sm.peek('main', 1, 10_000) ?? []).map((m) => m.seq));
          const { reply } = sm.apply({ timeMs: now }, command);
          model.advance(now);
          expect(withoutMessages(reply)).toEqual(withoutMessages(modelReply(model, command)));
          track(command, reply, {
            deliveries,
            published,
            readyAtPublish,
            acked,
            lastFirstSeq,
            liveBefore,
            mainCfg,
            sm,
          });
          for (const queue of QUEUES) {
            const held = sm.peek(queue, 1, 10_000) ?? [];
            expect(held).toEqual(model.messages(queue));
            const stats = sm.stats(queue) as QueueStats;
            expect(stats.counters).toEqual(model.counters(queue));
            checkConservation(stats, held.length);
            const busyGroups = held.filter(
              (m) => m.group !== null && (m.state === 'in-flight' || m.state === 'retrying'),
            );
            expect(new Set(busyGroups.map((m) => m.group)).size).toBe(busyGroups.length);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

interface Ledger {
  deliveries: { queue: string; m: DeliveredMessage }[];
  published: Set<number>;
  readyAtPublish: Set<number>;
  acked: Set<string>;
  lastFirstSeq: Map<number, number>;
  liveBefore: Set<number>;
  mainCfg: ModelQueueConfig;
  sm: QueueStateMachine;
}

/** Checks the promises that do not need the model: no phantom or repeated deliveries, FIFO per priority. */
function track(command: Command, reply: Reply, ledger: Ledger): void {
  if (!reply.ok) return;
  if (command.op === 'publish' && reply.op === 'publish') {
    command.messages.forEach((m, i) => {
      const r = reply.results[i];
      if (!r?.ok || r.duplicate) return;
      ledger.published.add(r.seq);
      if ((m.delayMs ?? ledger.mainCfg.deliveryDelayMs) === 0 && m.group == null)
        ledger.readyAtPublish.add(r.seq);
    });
  }
  if (reply.op === 'redrive') {
    // Redriven messages arrive in main with new seqs: published there by the redrive.
    for (const m of ledger.sm.peek('main', 1, 10_000) ?? [])
      if (!ledger.liveBefore.has(m.seq)) ledger.published.add(m.seq);
  }
  if (command.op === 'deliver' && reply.op === 'deliver') {
    for (const m of reply.messages) {
      ledger.deliveries.push({ queue: command.queue, m });
      expect(ledger.acked.has(`${command.queue}/${m.seq}`)).toBe(false);
      if (command.queue !== 'main') continue;
      expect(ledger.published.has(m.seq)).toBe(true);
      if (m.deliveryCount === 1 && ledger.readyAtPublish.has(m.seq)) {
        expect(m.seq).toBeGreaterThan(ledger.lastFirstSeq.get(m.priority) ?? 0);
        ledger.lastFirstSeq.set(m.priority, m.seq);
      }
    }
  }
  if (command.op === 'ack' && reply.op === 'ack') {
    command.items.forEach((item, i) => {
      if (reply.results[i]?.ok && (item.queue !== 'main' || ledger.liveBefore.has(item.seq))) {
        ledger.acked.add(`${item.queue}/${item.seq}`);
      }
    });
  }
}

describe('determinism', () => {
  it('replicas fed the same commands through the log encoding agree, across batching and snapshot restores', () => {
    fc.assert(
      fc.property(
        configArb,
        dlqConfigArb,
        fc.array(
          fc.record({
            step: stepArb,
            snapshotAfter: fc.boolean(),
            chunkBytes: fc.constantFrom(64, 300, 1 << 20),
          }),
          {
            maxLength: 50,
          },
        ),
        (mainCfg, dlqCfg, plan) => {
          const setup: Command[] = [
            { op: 'createQueue', queue: 'dlq', options: toOptions(dlqCfg) },
            { op: 'createQueue', queue: 'main', options: toOptions(mainCfg) },
          ];
          const direct = new QueueStateMachine();
          let replica = new QueueStateMachine();
          for (const c of setup) direct.apply({ timeMs: T0 }, c);
          const setupEntry = decodeBatch(encodeBatch(T0, setup));
          replica.applyEntry({ timeMs: setupEntry.timeMs }, setupEntry.commands);
          const deliveries: { queue: string; m: DeliveredMessage }[] = [];
          const bodyCounter = { n: 0 };
          let now = T0;
          let batch: Command[] = [];
          const flush = () => {
            if (batch.length === 0) return;
            const entry = decodeBatch(encodeBatch(now, batch));
            replica.applyEntry({ timeMs: entry.timeMs }, entry.commands);
            batch = [];
            expect(replica.digest()).toBe(direct.digest());
          };
          for (const { step, snapshotAfter, chunkBytes } of plan) {
            if (step.dtMs > 0) flush();
            now += step.dtMs;
            const command = toCommand(step.gen, deliveries, bodyCounter);
            const { reply } = direct.apply({ timeMs: now }, command);
            if (reply.ok && reply.op === 'deliver')
              for (const m of reply.messages)
                deliveries.push({ queue: command.op === 'deliver' ? command.queue : '', m });
            batch.push(command);
            if (snapshotAfter) {
              flush();
              replica = QueueStateMachine.restore(replica.snapshot(chunkBytes));
              expect(replica.digest()).toBe(direct.digest());
              expect(replica.nextDeadline()).toBe(direct.nextDeadline());
            }
          }
          flush();
        },
      ),
      { numRuns: 150 },
    );
  });
});
