/**
 * W1, confirmed publish: one producer publishes 50,000 1 KiB messages keeping at most 1,000
 * unconfirmed; throughput from the first send to the last confirm. Bodies are made before timing.
 */
import { publishWindowed } from '../lib/publish.js';
import { measure, perSecond, round } from '../lib/timing.js';
import { BENCH_QUEUE, type RunContext, type Workload, type WorkloadOutcome } from './types.js';

async function run(ctx: RunContext): Promise<WorkloadOutcome> {
  const { cluster, sizes } = ctx;
  const leader = await cluster.leader();
  const client = await cluster.connect('bench-w1');
  try {
    await client.createQueue(BENCH_QUEUE);
    const bodies = ctx.payloads.prebuilt(sizes.w1Messages);
    const {
      value: result,
      cpu,
      server,
    } = await measure(cluster, leader, () =>
      publishWindowed({
        client,
        queue: BENCH_QUEUE,
        count: sizes.w1Messages,
        window: sizes.w1Window,
        body: (id) => bodies[id]!,
      }),
    );
    const latency = result.latency.summary();
    return {
      figures: {
        msgsPerSec: perSecond(result.confirmed, result.elapsedMs),
        seconds: round(result.elapsedMs / 1000, 3),
        confirmP50Ms: latency.p50,
        confirmP99Ms: latency.p99,
        failed: result.failed,
        clientCores: cpu.clientCores,
        leaderCores: cpu.leaderCores ?? 0,
      },
      cpu,
      details: {
        messages: sizes.w1Messages,
        window: sizes.w1Window,
        confirmed: result.confirmed,
        firstError: result.firstError,
        confirmLatencyMs: latency,
        leaderId: leader.id,
        server,
      },
    };
  } finally {
    await client.close({ drain: false });
  }
}

export const w1ConfirmedPublish: Workload = {
  id: 'W1',
  title: 'confirmed publish (1 producer, window 1,000)',
  figures: [
    { key: 'msgsPerSec', label: 'msgs/s, first send to last confirm', unit: 'msgs/s', digits: 0 },
    { key: 'seconds', label: 'elapsed', unit: 's', digits: 2 },
    { key: 'confirmP50Ms', label: 'confirm latency p50 under load', unit: 'ms', digits: 1 },
    { key: 'confirmP99Ms', label: 'confirm latency p99 under load', unit: 'ms', digits: 1 },
    { key: 'failed', label: 'publishes failed', unit: '', digits: 0 },
    { key: 'clientCores', label: 'client CPU', unit: 'cores', digits: 2 },
    { key: 'leaderCores', label: 'leader CPU', unit: 'cores', digits: 2 },
  ],
  run,
};
