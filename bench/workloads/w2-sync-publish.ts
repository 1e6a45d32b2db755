/**
 * W2, sync publish: 2,000 publishes one at a time (each awaited before the next); the
 * distribution of confirm latency in the steady state. Every workload runs on a fresh cluster, so
 * W2 first puts W1's traffic through it (50,000 windowed publishes by another client, left in the
 * queue), as the anchors do by running W2 right after W1 on the same broker. Then the timed
 * client sends 2,000 untimed publishes one at a time: a fresh Node process runs a code path in
 * its interpreter until V8 has seen it a few thousand times, and W1's batches call the
 * per-request code far less often than one-at-a-time publishing does. Their latency is reported
 * too ("cold"), so the warm-up's cost stays visible.
 */
import type { FlotillaClient } from '@flotilla/client';
import { LatencyRecorder } from '../lib/latency.js';
import type { PayloadFactory } from '../lib/payload.js';
import { publishWindowed } from '../lib/publish.js';
import { measure, perSecond, round } from '../lib/timing.js';
import { BENCH_QUEUE, type RunContext, type Workload, type WorkloadOutcome } from './types.js';

async function publishOneByOne(
  client: FlotillaClient,
  payloads: PayloadFactory,
  firstId: number,
  count: number,
  latency: LatencyRecorder,
): Promise<void> {
  for (let id = firstId; id < firstId + count; id++) {
    const body = payloads.body(id);
    const sentMs = performance.now();
    await client.publish(BENCH_QUEUE, body);
    latency.recordMs(performance.now() - sentMs);
  }
}

/** W1's traffic through the fresh cluster, by a client of its own that is closed afterwards. */
async function publishBurst(ctx: RunContext): Promise<void> {
  const { cluster, sizes, payloads } = ctx;
  const client = await cluster.connect('bench-w2-burst');
  try {
    await client.createQueue(BENCH_QUEUE);
    const result = await publishWindowed({
      client,
      queue: BENCH_QUEUE,
      count: sizes.w2BurstMessages,
      window: sizes.w1Window,
      body: (id) => payloads.body(id),
    });
    if (result.failed > 0)
      throw new Error(`W2 burst: ${result.failed} publishes failed (${result.firstError})`);
  } finally {
    await client.close({ drain: false });
  }
}

async function run(ctx: RunContext): Promise<WorkloadOutcome> {
  const { cluster, sizes, payloads } = ctx;
  const leader = await cluster.leader();
  await publishBurst(ctx);
  const client = await cluster.connect('bench-w2');
  try {
    const cold = new LatencyRecorder();
    await publishOneByOne(client, payloads, sizes.w2BurstMessages, sizes.w2WarmupMessages, cold);
    const latency = new LatencyRecorder();
    const startedMs = performance.now();
    const { cpu, server } = await measure(cluster, leader, () =>
      publishOneByOne(
        client,
        payloads,
        sizes.w2BurstMessages + sizes.w2WarmupMessages,
        sizes.w2Messages,
        latency,
      ),
    );
    const elapsedMs = performance.now() - startedMs;
    const summary = latency.summary();
    const coldSummary = cold.summary();
    return {
      figures: {
        p50Ms: summary.p50,
        p99Ms: summary.p99,
        maxMs: summary.max,
        coldP50Ms: coldSummary.p50,
        coldP99Ms: coldSummary.p99,
        msgsPerSec: perSecond(sizes.w2Messages, elapsedMs),
        clientCores: cpu.clientCores,
        leaderCores: cpu.leaderCores ?? 0,
      },
      cpu,
      details: {
        messages: sizes.w2Messages,
        burstMessages: sizes.w2BurstMessages,
        warmupMessages: sizes.w2WarmupMessages,
        coldConfirmLatencyMs: coldSummary,
        seconds: round(elapsedMs / 1000, 3),
        confirmLatencyMs: summary,
        leaderId: leader.id,
        server,
      },
    };
  } finally {
    await client.close({ drain: false });
  }
}

export const w2SyncPublish: Workload = {
  id: 'W2',
  title: 'sync publish (1 in flight)',
  figures: [
    { key: 'p50Ms', label: 'confirm latency p50', unit: 'ms', digits: 2 },
    { key: 'p99Ms', label: 'confirm latency p99', unit: 'ms', digits: 2 },
    { key: 'maxMs', label: 'confirm latency max', unit: 'ms', digits: 1 },
    { key: 'coldP50Ms', label: 'p50 of the untimed warm-up publishes (JIT warming)', unit: 'ms', digits: 2 },
    { key: 'coldP99Ms', label: 'p99 of the untimed warm-up publishes (JIT warming)', unit: 'ms', digits: 2 },
    { key: 'msgsPerSec', label: 'msgs/s (1 in flight)', unit: 'msgs/s', digits: 0 },
    { key: 'clientCores', label: 'client CPU', unit: 'cores', digits: 2 },
    { key: 'leaderCores', label: 'leader CPU', unit: 'cores', digits: 2 },
  ],
  run,
};
