/**
 * `flotilla bench`: a quick throughput and latency check against a running cluster. Creates a
 * scratch queue, publishes N messages keeping at most W unconfirmed (recording each confirm's
 * latency in an HDR histogram), drains them with C consumers acking each, prints a table (or
 * JSON), and deletes the queue. For careful comparisons use the suites under bench/.
 */

import { randomBytes, randomFillSync } from 'node:crypto';
import type { FlotillaClient } from '@flotilla/client';
import { DEFAULT_LIMITS } from '@flotilla/shared';
import type { Command } from 'commander';
import type { Histogram } from 'hdr-histogram-js';
import { addClientOptions, type ClientFlags, connectOptionsFromFlags, withClient } from '../client-flags.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { formatBytes, formatCount, formatRate, renderTable, toJson } from '../format.js';
import { optionalInteger, parseByteSize } from '../parse.js';
import type { CommandEnv } from '../program.js';
import { startPump } from '../pump.js';

export interface BenchFlags extends ClientFlags {
  messages?: string;
  size?: string;
  window?: string;
  consumers?: string;
  prefetch?: string;
  keep?: boolean;
  json?: boolean;
}

export interface BenchPlan {
  queue: string;
  messages: number;
  sizeBytes: number;
  /** Unconfirmed publishes at most. */
  window: number;
  consumers: number;
  /** Prefetch of each consumer. */
  prefetch: number;
  keep: boolean;
  json: boolean;
}

export const BENCH_DEFAULTS = {
  messages: 10_000,
  sizeBytes: 256,
  window: 1000,
  consumers: 1,
  prefetch: 1000,
} as const;

/** A drain that makes no progress for this long has failed (a lost consumer, a stuck cluster). */
const DRAIN_STALL_MS = 15_000;

/** What `flotilla bench` will do, from its flags; throws UsageError naming the flag. */
export function benchPlanFromFlags(
  flags: BenchFlags,
  queue = `bench-${randomBytes(4).toString('hex')}`,
): BenchPlan {
  return {
    queue,
    messages: optionalInteger(flags.messages, '--messages', { min: 1 }) ?? BENCH_DEFAULTS.messages,
    sizeBytes:
      flags.size === undefined
        ? BENCH_DEFAULTS.sizeBytes
        : parseByteSize(flags.size, '--size', { max: DEFAULT_LIMITS.maxMessageBytes }),
    window: optionalInteger(flags.window, '--window', { min: 1, max: 1_000_000 }) ?? BENCH_DEFAULTS.window,
    consumers:
      optionalInteger(flags.consumers, '--consumers', { min: 1, max: 64 }) ?? BENCH_DEFAULTS.consumers,
    prefetch:
      optionalInteger(flags.prefetch, '--prefetch', { min: 1, max: DEFAULT_LIMITS.maxPrefetch }) ??
      BENCH_DEFAULTS.prefetch,
    keep: flags.keep === true,
    json: flags.json === true,
  };
}

export interface LatencySummaryMs {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface BenchResult {
  queue: string;
  messages: number;
  sizeBytes: number;
  window: number;
  consumers: number;
  publish: { seconds: number; msgsPerSec: number; bytesPerSec: number; confirmLatencyMs: LatencySummaryMs };
  consume: { seconds: number; msgsPerSec: number; bytesPerSec: number };
}

/** The result as a table for people. */
export function renderBench(result: BenchResult): string {
  const ms = (value: number) => value.toFixed(2);
  const { publish, consume } = result;
  const latency = publish.confirmLatencyMs;
  const head = ['phase', 'messages', 'seconds', 'msgs/s', 'bytes/s', 'p50 ms', 'p99 ms', 'max ms'];
  const rows = [
    [
      'publish',
      formatCount(result.messages),
      publish.seconds.toFixed(2),
      formatRate(publish.msgsPerSec),
      formatBytes(publish.bytesPerSec),
      ms(latency.p50),
      ms(latency.p99),
      ms(latency.max),
    ],
    [
      'consume',
      formatCount(result.messages),
      consume.seconds.toFixed(2),
      formatRate(consume.msgsPerSec),
      formatBytes(consume.bytesPerSec),
      '-',
      '-',
      '-',
    ],
  ];
  const setup =
    `${formatCount(result.messages)} messages of ${formatBytes(result.sizeBytes)}, ` +
    `window ${formatCount(result.window)}, ${result.consumers} consumer(s); latency = publish to confirm`;
  return `${setup}\n${renderTable(head, rows)}`;
}

/** Confirm latencies are recorded in microseconds, shown in milliseconds. */
function summarize(histogram: Histogram): LatencySummaryMs {
  const ms = (us: number) => us / 1000;
  return {
    p50: ms(histogram.getValueAtPercentile(50)),
    p90: ms(histogram.getValueAtPercentile(90)),
    p99: ms(histogram.getValueAtPercentile(99)),
    max: ms(histogram.maxValue),
    mean: ms(histogram.mean),
  };
}

async function publishPhase(plan: BenchPlan, client: FlotillaClient): Promise<BenchResult['publish']> {
  // Loaded here rather than at the top: only bench needs it, and every command pays for imports.
  const hdr = await import('hdr-histogram-js');
  const histogram = hdr.build({ useWebAssembly: false });
  const pool = randomFillSync(new Uint8Array(plan.sizeBytes + 4096));
  const result = await startPump({
    total: plan.messages,
    window: plan.window,
    ratePerSec: null,
    send: async (index) => {
      const offset = index % 4096;
      const startedMs = performance.now();
      await client.publish(plan.queue, pool.subarray(offset, offset + plan.sizeBytes));
      histogram.recordValue(Math.max(1, Math.round((performance.now() - startedMs) * 1000)));
    },
  }).result;
  if (result.error !== null) throw result.error;
  const seconds = result.elapsedMs / 1000;
  return {
    seconds,
    msgsPerSec: plan.messages / seconds,
    bytesPerSec: (plan.messages * plan.sizeBytes) / seconds,
    confirmLatencyMs: summarize(histogram),
  };
}

/** One consumer: reads and acks until told to stop; counts confirmed acks. */
async function drainWith(client: FlotillaClient, plan: BenchPlan, onAcked: () => void, done: Promise<void>) {
  const stream = client.messages(plan.queue, { prefetch: plan.prefetch });
  const finished = done.then(() => null);
  try {
    for (;;) {
      const pending = stream.next();
      const next = await Promise.race([pending, finished]);
      if (next === null) pending.catch(() => {}); // settles when the stream closes below
      if (next === null || next.done) return;
      next.value.ack().then(onAcked, () => {});
    }
  } finally {
    await stream.close();
  }
}

async function consumePhase(
  plan: BenchPlan,
  ctx: CliContext,
  flags: ClientFlags,
): Promise<BenchResult['consume']> {
  const options = connectOptionsFromFlags(flags, ctx.env);
  const clients = await Promise.all(Array.from({ length: plan.consumers }, () => ctx.connect(options)));
  const startedMs = performance.now();
  let acked = 0;
  let progressAtMs = startedMs;
  let finish!: () => void;
  let fail!: (error: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const onAcked = () => {
    acked++;
    progressAtMs = performance.now();
    if (acked >= plan.messages) finish();
  };
  const watchdog = setInterval(() => {
    if (performance.now() - progressAtMs > DRAIN_STALL_MS) {
      fail(new Error(`consume stalled: ${acked} of ${plan.messages} acked, none in ${DRAIN_STALL_MS} ms`));
    }
  }, 1000);
  const stopped = done.catch(() => {});
  try {
    const consumers = clients.map((client) => drainWith(client, plan, onAcked, stopped).catch(fail));
    await done;
    await Promise.all(consumers);
  } finally {
    clearInterval(watchdog);
    finish();
    await Promise.all(clients.map((client) => client.close({ drain: false })));
  }
  const seconds = (performance.now() - startedMs) / 1000;
  return {
    seconds,
    msgsPerSec: plan.messages / seconds,
    bytesPerSec: (plan.messages * plan.sizeBytes) / seconds,
  };
}

/** Runs the benchmark; the scratch queue is deleted afterwards unless `keep`. */
export async function runBench(plan: BenchPlan, flags: ClientFlags, ctx: CliContext): Promise<BenchResult> {
  return withClient(ctx, flags, async (client) => {
    await client.createQueue(plan.queue);
    try {
      const publish = await publishPhase(plan, client);
      const consume = await consumePhase(plan, ctx, flags);
      const { queue, messages, sizeBytes, window, consumers } = plan;
      return { queue, messages, sizeBytes, window, consumers, publish, consume };
    } finally {
      if (!plan.keep) await client.deleteQueue(plan.queue).catch(() => {});
    }
  });
}

const BENCH_HELP = `
Examples:
  $ flotilla bench
  $ flotilla bench --messages 100000 --size 1KiB --window 2000 --consumers 4 --json

Creates a scratch queue (bench-<random>), publishes --messages payloads of --size random bytes
with at most --window unconfirmed, then drains them with --consumers consumers acking each, and
deletes the queue (unless --keep). Latency is from publish() to its durable confirm. This is a
smoke test of a running cluster; the comparisons live in bench/.

Exit codes: 0 ok, 1 failed, 2 usage, 3 cluster unreachable, 5 not allowed.
`;

/** Adds `flotilla bench`. */
export function registerBenchCommand(program: Command, { ctx, run }: CommandEnv): void {
  const command = program
    .command('bench')
    .description('measure publish and consume throughput and confirm latency on a running cluster')
    .option('--messages <n>', `messages to publish and drain (default ${BENCH_DEFAULTS.messages})`)
    .option('--size <bytes>', `payload size, e.g. 1KiB (default ${BENCH_DEFAULTS.sizeBytes})`)
    .option('--window <n>', `unconfirmed publishes at most (default ${BENCH_DEFAULTS.window})`)
    .option(
      '--consumers <n>',
      `consumers draining the queue, one connection each (default ${BENCH_DEFAULTS.consumers})`,
    )
    .option('--prefetch <n>', `prefetch of each consumer (default ${BENCH_DEFAULTS.prefetch})`)
    .option('--keep', 'keep the scratch queue afterwards')
    .option('--json', 'print the result as JSON');
  addClientOptions(command)
    .addHelpText('after', BENCH_HELP)
    .action(
      run(async (flags: BenchFlags) => {
        const plan = benchPlanFromFlags(flags);
        const result = await runBench(plan, flags, ctx);
        ctx.stdout.write(`${plan.json ? toJson(result, ctx.stdout.isTTY) : renderBench(result)}\n`);
        return EXIT.ok;
      }),
    );
}
