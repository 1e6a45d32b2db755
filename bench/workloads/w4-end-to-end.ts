/**
 * W4, end to end: a producer publishes at a fixed 1,000 msg/s for 10 s (confirms counted, not
 * awaited before the next send) while a consumer (prefetch 100, ack each) runs on its own
 * connection. Latency is from the `publish()` call to the handler seeing the message: the
 * producer writes its `performance.now()` into the body and the consumer, in the same process
 * and so on the same clock, subtracts it.
 *
 * The same traffic runs untimed for a few seconds first (reported apart as "cold"): the anchors
 * run W4 on a broker that has just taken W1–W3, and a fresh Node process runs each path
 * unoptimized until V8 has seen it a few thousand times (see W2).
 */
import type { FlotillaClient } from '@flotilla/client';
import { type DrainResult, drainQueue } from '../lib/drain.js';
import { LatencyRecorder } from '../lib/latency.js';
import { idOf, type PayloadFactory, sentAtOf } from '../lib/payload.js';
import { describeError } from '../lib/publish.js';
import { measure, perSecond } from '../lib/timing.js';
import { BENCH_QUEUE, type RunContext, type Workload, type WorkloadOutcome } from './types.js';

const STALL_MS = 30_000;
/** How often the producer wakes to send what is due (like a timer-driven producer). */
const TICK_MS = 1;

interface PacedResult {
  sent: number;
  confirmed: number;
  failed: number;
  firstError: string | null;
  sendSeconds: number;
  /** The most messages that were due but not yet sent at a tick (the producer falling behind). */
  maxBehind: number;
}

/** Publishes `total` messages at `ratePerSec`, without awaiting confirms; resolves when all settled. */
async function publishPaced(
  client: FlotillaClient,
  payloads: PayloadFactory,
  firstId: number,
  total: number,
  ratePerSec: number,
): Promise<PacedResult> {
  const result: PacedResult = {
    sent: 0,
    confirmed: 0,
    failed: 0,
    firstError: null,
    sendSeconds: 0,
    maxBehind: 0,
  };
  const settles: Promise<void>[] = [];
  const startedMs = performance.now();
  while (result.sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - startedMs) * ratePerSec) / 1000) + 1);
    result.maxBehind = Math.max(result.maxBehind, due - result.sent);
    while (result.sent < due) {
      const publishing = client.publish(BENCH_QUEUE, payloads.timedBody(firstId + result.sent++));
      settles.push(
        publishing.then(
          () => {
            result.confirmed++;
          },
          (error: unknown) => {
            result.failed++;
            result.firstError ??= describeError(error);
          },
        ),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
  }
  result.sendSeconds = (performance.now() - startedMs) / 1000;
  await Promise.all(settles);
  return result;
}

/** One paced phase: `total` messages published from `firstId` while the consumer drains them. */
async function pacedPhase(
  ctx: RunContext,
  producer: FlotillaClient,
  consumer: FlotillaClient,
  firstId: number,
  total: number,
  latency: LatencyRecorder,
): Promise<{ published: PacedResult; drained: DrainResult; received: number }> {
  const { sizes, payloads } = ctx;
  const seen = new Set<number>();
  const onMessage = (message: { bytes: Uint8Array }) => {
    const id = idOf(message.bytes);
    if (seen.has(id)) return;
    seen.add(id);
    latency.recordMs(performance.now() - sentAtOf(message.bytes));
  };
  const drained = drainQueue({
    client: consumer,
    queue: BENCH_QUEUE,
    prefetch: sizes.w4Prefetch,
    expected: total,
    onMessage,
    stallMs: STALL_MS,
  });
  const published = await publishPaced(producer, payloads, firstId, total, sizes.w4RatePerSec);
  return { published, drained: await drained, received: seen.size };
}

async function run(ctx: RunContext): Promise<WorkloadOutcome> {
  const { cluster, sizes } = ctx;
  const total = Math.round((sizes.w4RatePerSec * sizes.w4DurationMs) / 1000);
  const warmup = Math.round((sizes.w4RatePerSec * sizes.w4WarmupMs) / 1000);
  const leader = await cluster.leader();
  const producer = await cluster.connect('bench-w4-producer');
  const consumer = await cluster.connect('bench-w4-consumer');
  try {
    await producer.createQueue(BENCH_QUEUE);
    const cold = new LatencyRecorder();
    await pacedPhase(ctx, producer, consumer, 0, warmup, cold);
    const latency = new LatencyRecorder();
    const { value, cpu, server } = await measure(cluster, leader, () =>
      pacedPhase(ctx, producer, consumer, warmup, total, latency),
    );
    const { published, drained, received } = value;
    const summary = latency.summary();
    const coldSummary = cold.summary();
    return {
      figures: {
        p50Ms: summary.p50,
        p99Ms: summary.p99,
        maxMs: summary.max,
        coldP50Ms: coldSummary.p50,
        coldP99Ms: coldSummary.p99,
        sent: published.sent,
        received,
        publishFailed: published.failed,
        achievedRate: Math.round(published.sent / published.sendSeconds),
        clientCores: cpu.clientCores,
        leaderCores: cpu.leaderCores ?? 0,
      },
      cpu,
      details: {
        ratePerSec: sizes.w4RatePerSec,
        durationMs: sizes.w4DurationMs,
        warmupMs: sizes.w4WarmupMs,
        coldPublishToDeliveryMs: coldSummary,
        prefetch: sizes.w4Prefetch,
        confirmed: published.confirmed,
        firstError: published.firstError,
        maxBehind: published.maxBehind,
        delivered: drained.delivered,
        acked: drained.acked,
        ackFailed: drained.ackFailed,
        publishToDeliveryMs: summary,
        consumedMsgsPerSec: perSecond(drained.acked, drained.elapsedMs),
        leaderId: leader.id,
        server,
      },
    };
  } finally {
    await Promise.all([producer.close({ drain: false }), consumer.close({ drain: false })]);
  }
}

export const w4EndToEnd: Workload = {
  id: 'W4',
  title: 'end to end (1,000 msg/s for 10 s, consumer running)',
  figures: [
    { key: 'p50Ms', label: 'publish to delivery p50', unit: 'ms', digits: 2 },
    { key: 'p99Ms', label: 'publish to delivery p99', unit: 'ms', digits: 2 },
    { key: 'coldP50Ms', label: 'p50 of the untimed warm-up (JIT warming)', unit: 'ms', digits: 2 },
    { key: 'coldP99Ms', label: 'p99 of the untimed warm-up (JIT warming)', unit: 'ms', digits: 2 },
    { key: 'maxMs', label: 'publish to delivery max', unit: 'ms', digits: 1 },
    { key: 'sent', label: 'messages sent', unit: '', digits: 0 },
    { key: 'received', label: 'distinct messages received', unit: '', digits: 0 },
    { key: 'publishFailed', label: 'publishes failed', unit: '', digits: 0 },
    { key: 'achievedRate', label: 'achieved send rate', unit: 'msgs/s', digits: 0 },
    { key: 'clientCores', label: 'client CPU', unit: 'cores', digits: 2 },
    { key: 'leaderCores', label: 'leader CPU', unit: 'cores', digits: 2 },
  ],
  run,
};
