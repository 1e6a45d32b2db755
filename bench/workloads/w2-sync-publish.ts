/**
 * W2, sync publish: 2,000 publishes one at a time (each awaited before the next); the
 * distribution of confirm latency. A short untimed warm-up goes first, because every workload
 * runs on a fresh cluster whose first requests would otherwise measure JIT compilation.
 */
import type { FlotillaClient } from '@flotilla/client';
import { LatencyRecorder } from '../lib/latency.js';
import type { PayloadFactory } from '../lib/payload.js';
import { measure, perSecond, round } from '../lib/timing.js';
import { BENCH_QUEUE, type RunContext, type Workload, type WorkloadOutcome } from './types.js';

async function publishOneByOne(
  client: FlotillaClient,
  payloads: PayloadFactory,
  firstId: number,
  count: number,
  latency: LatencyRecorder | null,
): Promise<void> {
  for (let id = firstId; id < firstId + count; id++) {
    const body = payloads.body(id);
    const sentMs = performance.now();
    await client.publish(BENCH_QUEUE, body);
    latency?.recordMs(performance.now() - sentMs);
  }
}

async function run(ctx: RunContext): Promise<WorkloadOutcome> {
  const { cluster, sizes, payloads } = ctx;
  const leader = await cluster.leader();
  const client = await cluster.connect('bench-w2');
  try {
    await client.createQueue(BENCH_QUEUE);
    await publishOneByOne(client, payloads, 0, sizes.w2WarmupMessages, null);
    const latency = new LatencyRecorder();
    const startedMs = performance.now();
    const { cpu, server } = await measure(cluster, leader, () =>
      publishOneByOne(client, payloads, sizes.w2WarmupMessages, sizes.w2Messages, latency),
    );
    const elapsedMs = performance.now() - startedMs;
    const summary = latency.summary();
    return {
      figures: {
        p50Ms: summary.p50,
        p99Ms: summary.p99,
        maxMs: summary.max,
        msgsPerSec: perSecond(sizes.w2Messages, elapsedMs),
        clientCores: cpu.clientCores,
        leaderCores: cpu.leaderCores ?? 0,
      },
      cpu,
      details: {
        messages: sizes.w2Messages,
        warmupMessages: sizes.w2WarmupMessages,
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
    { key: 'msgsPerSec', label: 'msgs/s (1 in flight)', unit: 'msgs/s', digits: 0 },
    { key: 'clientCores', label: 'client CPU', unit: 'cores', digits: 2 },
    { key: 'leaderCores', label: 'leader CPU', unit: 'cores', digits: 2 },
  ],
  run,
};
