/**
 * W3, consume: 50,000 messages are published first (not timed), then one consumer with prefetch
 * 1,000 drains them, acking each. Throughput runs from the `consume()` call to the last ack the
 * broker confirmed (durable); the rate to the last delivery is kept too, since that is where
 * brokers with unconfirmed acks stop their clocks.
 */
import { drainQueue } from '../lib/drain.js';
import { publishWindowed } from '../lib/publish.js';
import { measure, perSecond, round } from '../lib/timing.js';
import { BENCH_QUEUE, type RunContext, type Workload, type WorkloadOutcome } from './types.js';

/** A drain with no confirmed ack for this long has failed. */
const STALL_MS = 30_000;

async function run(ctx: RunContext): Promise<WorkloadOutcome> {
  const { cluster, sizes, payloads } = ctx;
  const leader = await cluster.leader();
  const producer = await cluster.connect('bench-w3-producer');
  const consumer = await cluster.connect('bench-w3-consumer');
  try {
    await producer.createQueue(BENCH_QUEUE);
    const filled = await publishWindowed({
      client: producer,
      queue: BENCH_QUEUE,
      count: sizes.w3Messages,
      window: sizes.w1Window,
      body: (id) => payloads.body(id),
    });
    if (filled.failed > 0)
      throw new Error(`W3 fill: ${filled.failed} publishes failed: ${filled.firstError}`);
    const depth = (await consumer.queueStats(BENCH_QUEUE)).depth;
    if (depth !== sizes.w3Messages)
      throw new Error(`W3: depth ${depth} after publishing ${sizes.w3Messages}`);
    const {
      value: drained,
      cpu,
      server,
    } = await measure(cluster, leader, () =>
      drainQueue({
        client: consumer,
        queue: BENCH_QUEUE,
        prefetch: sizes.w3Prefetch,
        expected: sizes.w3Messages,
        stallMs: STALL_MS,
      }),
    );
    return {
      figures: {
        msgsPerSec: perSecond(drained.acked, drained.elapsedMs),
        msgsPerSecToLastDelivery: perSecond(drained.delivered, drained.toLastDeliveryMs),
        seconds: round(drained.elapsedMs / 1000, 3),
        ackFailed: drained.ackFailed,
        clientCores: cpu.clientCores,
        leaderCores: cpu.leaderCores ?? 0,
      },
      cpu,
      details: {
        messages: sizes.w3Messages,
        prefetch: sizes.w3Prefetch,
        delivered: drained.delivered,
        acked: drained.acked,
        firstAckError: drained.firstAckError,
        fillMsgsPerSec: perSecond(filled.confirmed, filled.elapsedMs),
        leaderId: leader.id,
        server,
      },
    };
  } finally {
    await Promise.all([producer.close({ drain: false }), consumer.close({ drain: false })]);
  }
}

export const w3Consume: Workload = {
  id: 'W3',
  title: 'consume (drain, prefetch 1,000, ack each)',
  figures: [
    { key: 'msgsPerSec', label: 'msgs/s, consume() to last confirmed ack', unit: 'msgs/s', digits: 0 },
    {
      key: 'msgsPerSecToLastDelivery',
      label: 'msgs/s, consume() to last delivery',
      unit: 'msgs/s',
      digits: 0,
    },
    { key: 'seconds', label: 'elapsed', unit: 's', digits: 2 },
    { key: 'ackFailed', label: 'acks failed', unit: '', digits: 0 },
    { key: 'clientCores', label: 'client CPU', unit: 'cores', digits: 2 },
    { key: 'leaderCores', label: 'leader CPU', unit: 'cores', digits: 2 },
  ],
  run,
};
