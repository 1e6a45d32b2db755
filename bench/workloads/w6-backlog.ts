/**
 * W6, backlog: publish 1,000,000 messages (window 1,000) with no consumer, then measure what the
 * backlog costs and how it survives a full restart:
 * - memory per queued message: the leader's resident set and heap (used + external) from its
 *   `/metrics` process metrics, before publishing and after, divided by the count;
 * - disk per message: the leader's data directory;
 * - restart time: SIGKILL every node, start them all, time until a node reports itself leader
 *   and its queue depth is back to the count;
 * - then drain it all (prefetch 1,000, ack each) and report the rate.
 * The count is `--w6-messages` (default 1,000,000; `--quick` uses 100,000).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchCluster, ClusterNode } from '../lib/cluster.js';
import { drainQueue } from '../lib/drain.js';
import { publishWindowed } from '../lib/publish.js';
import { delay, measure, perSecond, round } from '../lib/timing.js';
import { BENCH_QUEUE, type RunContext, type Workload, type WorkloadOutcome } from './types.js';

const RSS = 'flotilla_process_process_resident_memory_bytes';
const HEAP_USED = 'flotilla_process_nodejs_heap_size_used_bytes';
const EXTERNAL = 'flotilla_process_nodejs_external_memory_bytes';
/** Memory is sampled this many times, this far apart, keeping the lowest (garbage not yet collected inflates any one reading). */
const MEMORY_SAMPLES = 5;
const MEMORY_SAMPLE_GAP_MS = 500;
const RECOVERY_POLL_MS = 50;
const RECOVERY_TIMEOUT_MS = 300_000;
const DRAIN_STALL_MS = 60_000;

interface MemoryReading {
  rssBytes: number;
  /** V8 heap used plus external memory (ArrayBuffers, where message bodies live). */
  heapBytes: number;
}

async function leaderMemory(cluster: BenchCluster, node: ClusterNode): Promise<MemoryReading> {
  let lowest: MemoryReading = { rssBytes: Number.POSITIVE_INFINITY, heapBytes: Number.POSITIVE_INFINITY };
  for (let i = 0; i < MEMORY_SAMPLES; i++) {
    if (i > 0) await delay(MEMORY_SAMPLE_GAP_MS);
    const m = await cluster.metrics(node, [RSS, HEAP_USED, EXTERNAL]);
    if (m[RSS] == null || m[HEAP_USED] == null || m[EXTERNAL] == null) {
      throw new Error(`${node.id} /metrics lacks ${RSS}, ${HEAP_USED} or ${EXTERNAL}`);
    }
    lowest = {
      rssBytes: Math.min(lowest.rssBytes, m[RSS]),
      heapBytes: Math.min(lowest.heapBytes, m[HEAP_USED] + m[EXTERNAL]),
    };
  }
  return lowest;
}

function directoryBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? directoryBytes(path) : statSync(path).size;
  }
  return total;
}

interface RestartTimes {
  /** Every node answers /health. */
  allHealthyMs: number | null;
  /** Some node reports itself leader. */
  leaderSeenMs: number | null;
  /** That leader reports the queue's depth back to the count. */
  recoveredMs: number;
  leaderId: string;
}

/** Kills every node, starts them all, and times until some node leads with the queue's depth back. */
async function timeRestart(cluster: BenchCluster, expectedDepth: number): Promise<RestartTimes> {
  await cluster.killAll();
  const startedMs = performance.now();
  let startError: unknown = null;
  cluster.startStopped().catch((error: unknown) => {
    startError = error;
  });
  let allHealthyMs: number | null = null;
  let leaderSeenMs: number | null = null;
  for (;;) {
    if (startError !== null) throw startError;
    const died = cluster.stoppedIds();
    if (died.length > 0) {
      const logs = died.map((id) => `${id}:\n${cluster.tail(id)}`).join('\n');
      throw new Error(`W6: ${died.join(', ')} exited while restarting with the backlog\n${logs}`);
    }
    const elapsedMs = performance.now() - startedMs;
    if (elapsedMs > RECOVERY_TIMEOUT_MS) {
      throw new Error(
        `W6: no leader with depth ${expectedDepth} within ${RECOVERY_TIMEOUT_MS} ms of restart`,
      );
    }
    const views = await Promise.all(cluster.nodes.map((node) => nodeView(cluster, node)));
    if (allHealthyMs === null && views.every((v) => v.healthy)) allHealthyMs = elapsedMs;
    const leader = views.find((v) => v.role === 'leader');
    if (leader !== undefined) {
      leaderSeenMs ??= elapsedMs;
      if (leader.depth === expectedDepth) {
        return {
          allHealthyMs,
          leaderSeenMs,
          recoveredMs: performance.now() - startedMs,
          leaderId: leader.id,
        };
      }
    }
    await delay(RECOVERY_POLL_MS);
  }
}

/** What one node says about itself while restarting (nothing while it does not answer yet). */
async function nodeView(cluster: BenchCluster, node: ClusterNode) {
  const view = { id: node.id, healthy: false, role: null as string | null, depth: null as number | null };
  const status = await cluster.getJson<{ role: string }>(node, '/api/cluster').catch(() => null);
  if (status === null) return view;
  view.healthy = true;
  view.role = status.role;
  if (status.role === 'leader') {
    const stats = await cluster
      .getJson<{ depth: number }>(node, `/api/queues/${BENCH_QUEUE}`)
      .catch(() => null);
    view.depth = stats?.depth ?? null;
  }
  return view;
}

async function publishBacklog(ctx: RunContext, leader: ClusterNode) {
  const { cluster, sizes, payloads } = ctx;
  const producer = await cluster.connect('bench-w6-producer');
  try {
    await producer.createQueue(BENCH_QUEUE);
    const before = await leaderMemory(cluster, leader);
    const {
      value: published,
      cpu,
      server,
    } = await measure(cluster, leader, () =>
      publishWindowed({
        client: producer,
        queue: BENCH_QUEUE,
        count: sizes.w6Messages,
        window: sizes.w6Window,
        body: (id) => payloads.body(id),
      }),
    );
    if (published.failed > 0) {
      throw new Error(`W6: ${published.failed} publishes failed: ${published.firstError}`);
    }
    const after = await leaderMemory(cluster, leader);
    return { published, cpu, server, before, after };
  } finally {
    await producer.close({ drain: false });
  }
}

async function drainBacklog(ctx: RunContext, leader: ClusterNode) {
  const consumer = await ctx.cluster.connect('bench-w6-consumer');
  try {
    return await measure(ctx.cluster, leader, () =>
      drainQueue({
        client: consumer,
        queue: BENCH_QUEUE,
        prefetch: ctx.sizes.w6Prefetch,
        expected: ctx.sizes.w6Messages,
        stallMs: DRAIN_STALL_MS,
      }),
    );
  } finally {
    await consumer.close({ drain: false });
  }
}

/** Restart, then drain; a failure here keeps the publish and memory figures measured before it. */
async function restartAndDrain(ctx: RunContext) {
  const restart = await timeRestart(ctx.cluster, ctx.sizes.w6Messages);
  const leader = ctx.cluster.node(restart.leaderId);
  const memory = await leaderMemory(ctx.cluster, leader);
  const drained = await drainBacklog(ctx, leader);
  return { restart, memory, drained };
}

async function run(ctx: RunContext): Promise<WorkloadOutcome> {
  const { cluster, sizes } = ctx;
  const count = sizes.w6Messages;
  const leader = await cluster.leader();
  const { published, cpu, server, before, after } = await publishBacklog(ctx, leader);
  const diskBytes = directoryBytes(cluster.dataDir(leader.id));
  ctx.log(`W6: ${count} published at ${perSecond(count, published.elapsedMs)} msgs/s; restarting all nodes`);
  let later: Awaited<ReturnType<typeof restartAndDrain>> | null = null;
  let error: string | undefined;
  try {
    later = await restartAndDrain(ctx);
  } catch (failure) {
    error = failure instanceof Error ? (failure.stack ?? failure.message) : String(failure);
  }
  const drain = later?.drained.value ?? null;
  return {
    figures: {
      publishMsgsPerSec: perSecond(published.confirmed, published.elapsedMs),
      rssBytesPerMsg: Math.round((after.rssBytes - before.rssBytes) / count),
      heapBytesPerMsg: Math.round((after.heapBytes - before.heapBytes) / count),
      diskBytesPerMsg: Math.round(diskBytes / count),
      restartS: later === null ? null : round(later.restart.recoveredMs / 1000, 2),
      drainMsgsPerSec: drain === null ? null : perSecond(drain.acked, drain.elapsedMs),
      clientCores: cpu.clientCores,
      leaderCores: cpu.leaderCores ?? 0,
    },
    cpu,
    details: {
      messages: count,
      leaderId: leader.id,
      publishServer: server,
      memoryBefore: before,
      memoryAfter: after,
      leaderDiskBytes: diskBytes,
      restart:
        later === null
          ? null
          : {
              leaderId: later.restart.leaderId,
              allHealthyS:
                later.restart.allHealthyMs === null ? null : round(later.restart.allHealthyMs / 1000, 2),
              leaderSeenS: round((later.restart.leaderSeenMs ?? later.restart.recoveredMs) / 1000, 2),
              depthBackS: round(later.restart.recoveredMs / 1000, 2),
              memoryAfterRestart: later.memory,
            },
      drain:
        later === null || drain === null
          ? null
          : {
              acked: drain.acked,
              ackFailed: drain.ackFailed,
              seconds: round(drain.elapsedMs / 1000, 2),
              cpu: later.drained.cpu,
              server: later.drained.server,
            },
    },
    ...(error === undefined ? {} : { error }),
  };
}

export const w6Backlog: Workload = {
  id: 'W6',
  title: 'backlog (publish with no consumer, restart, drain)',
  figures: [
    { key: 'publishMsgsPerSec', label: 'publish msgs/s (window 1,000)', unit: 'msgs/s', digits: 0 },
    { key: 'rssBytesPerMsg', label: 'leader RSS per queued message', unit: 'B', digits: 0 },
    { key: 'heapBytesPerMsg', label: 'leader heap+external per queued message', unit: 'B', digits: 0 },
    { key: 'diskBytesPerMsg', label: 'leader disk per queued message', unit: 'B', digits: 0 },
    { key: 'restartS', label: 'restart all: start to leader with depth back', unit: 's', digits: 2 },
    { key: 'drainMsgsPerSec', label: 'drain msgs/s after restart', unit: 'msgs/s', digits: 0 },
    { key: 'clientCores', label: 'client CPU (publish)', unit: 'cores', digits: 2 },
    { key: 'leaderCores', label: 'leader CPU (publish)', unit: 'cores', digits: 2 },
  ],
  run,
};
