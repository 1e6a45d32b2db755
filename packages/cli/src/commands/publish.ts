/**
 * `flotilla publish QUEUE [message]`: one message, a message from stdin, or many generated ones
 * (`--count`, `--size`, `--rate`), each confirmed durable before it counts. The plan is built by a
 * pure function (`publishPlanFromFlags`); the sending is the shared pump.
 */

import { randomFillSync } from 'node:crypto';
import type { FlotillaClient, PublishOptions, PublishReceipt } from '@flotilla/client';
import { DEFAULT_LIMITS } from '@flotilla/shared';
import type { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { addClientOptions, type ClientFlags, withClient } from '../client-flags.js';
import type { CliContext } from '../context.js';
import { describeError, EXIT, exitCodeFor, UsageError } from '../exit-codes.js';
import { formatBytes, formatCount, formatRate, toJson } from '../format.js';
import { optionalInteger, parseByteSize, parseHeaders, parseRate } from '../parse.js';
import type { CommandEnv } from '../program.js';
import { startPump } from '../pump.js';

/** Where message bodies come from. */
export type BodySource =
  | { kind: 'text'; text: string }
  | { kind: 'stdin' }
  | { kind: 'random'; sizeBytes: number };

export interface PublishPlan {
  queue: string;
  count: number;
  source: BodySource;
  /** Messages per second at most, or null. */
  ratePerSec: number | null;
  /** Options of every message (the idempotency key is per message, see `idempotencyKeyFor`). */
  options: Omit<PublishOptions, 'idempotencyKey'>;
  /** The key given with `--idempotency-key`, or null (the SDK then makes one per message). */
  idempotencyKey: string | null;
  json: boolean;
}

export interface PublishFlags extends ClientFlags {
  count?: string;
  size?: string;
  rate?: string;
  idempotencyKey?: string;
  delayMs?: string;
  ttlMs?: string;
  group?: string;
  priority?: string;
  header?: string[];
  json?: boolean;
}

/** Size of generated payloads when `--size` is not given. */
export const DEFAULT_RANDOM_SIZE_BYTES = 256;
/** Unconfirmed publishes at most: the SDK's own bound, so the CLI never queues more than it sends. */
const PUBLISH_WINDOW = 1000;
/** Show a progress bar (on a terminal) from this many messages on. */
const PROGRESS_MIN_MESSAGES = 1000;

function sourceFrom(message: string | undefined, count: number, size: string | undefined): BodySource {
  if (message !== undefined && size !== undefined) {
    throw new UsageError('--size: only for generated payloads; drop it or the message');
  }
  if (message === '-') return { kind: 'stdin' };
  if (message !== undefined) return { kind: 'text', text: message };
  if (count === 1 && size === undefined) {
    throw new UsageError(
      'publish: give a message, - to read it from stdin, or --count/--size to generate payloads',
    );
  }
  const sizeBytes =
    size === undefined
      ? DEFAULT_RANDOM_SIZE_BYTES
      : parseByteSize(size, '--size', { min: 0, max: DEFAULT_LIMITS.maxMessageBytes });
  return { kind: 'random', sizeBytes };
}

/** What `flotilla publish` will do, from its arguments; throws UsageError naming the flag. */
export function publishPlanFromFlags(
  queue: string,
  message: string | undefined,
  flags: PublishFlags,
): PublishPlan {
  const count = optionalInteger(flags.count, '--count', { min: 1 }) ?? 1;
  const options: Omit<PublishOptions, 'idempotencyKey'> = {};
  const delayMs = optionalInteger(flags.delayMs, '--delay-ms', { max: DEFAULT_LIMITS.maxDelayMs });
  const ttlMs = optionalInteger(flags.ttlMs, '--ttl-ms', { min: 1, max: DEFAULT_LIMITS.maxTtlMs });
  const priority = optionalInteger(flags.priority, '--priority', {
    max: DEFAULT_LIMITS.maxPriorityLevels - 1,
  });
  if (delayMs !== undefined) options.delayMs = delayMs;
  if (ttlMs !== undefined) options.ttlMs = ttlMs;
  if (priority !== undefined) options.priority = priority;
  if (flags.group !== undefined) options.group = flags.group;
  if (flags.header !== undefined && flags.header.length > 0) options.headers = parseHeaders(flags.header);
  return {
    queue,
    count,
    source: sourceFrom(message, count, flags.size),
    ratePerSec: flags.rate === undefined ? null : parseRate(flags.rate, '--rate'),
    options,
    idempotencyKey: flags.idempotencyKey ?? null,
    json: flags.json === true,
  };
}

/** The key of message `index`: the given key for one message, `key-1`, `key-2`... for several. */
export function idempotencyKeyFor(plan: PublishPlan, index: number): string | undefined {
  if (plan.idempotencyKey === null) return undefined;
  return plan.count === 1 ? plan.idempotencyKey : `${plan.idempotencyKey}-${index + 1}`;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Stdin as a string when it is UTF-8 text (consumers then get a string), else as bytes. */
export function stdinBody(bytes: Uint8Array): string | Uint8Array {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return bytes;
  }
}

/** Random bytes to cut payloads from: one fill, then each message is a slice at its own offset. */
const RANDOM_POOL_EXTRA_BYTES = 64 * 1024;

/** A function giving the body of message `index`. */
async function bodyMaker(
  plan: PublishPlan,
  ctx: CliContext,
): Promise<(index: number) => string | Uint8Array> {
  const { source } = plan;
  if (source.kind === 'text') return () => source.text;
  if (source.kind === 'stdin') {
    const body = stdinBody(await ctx.readStdin());
    return () => body;
  }
  const pool = randomFillSync(new Uint8Array(source.sizeBytes + RANDOM_POOL_EXTRA_BYTES));
  return (index) => {
    const offset = (index * 7919) % (RANDOM_POOL_EXTRA_BYTES + 1);
    return pool.subarray(offset, offset + source.sizeBytes);
  };
}

/** What a run of many publishes achieved. */
export interface PublishSummary {
  queue: string;
  requested: number;
  confirmed: number;
  duplicates: number;
  firstSeq: number | null;
  lastSeq: number | null;
  elapsedMs: number;
  msgsPerSec: number;
  bytesPerSec: number;
}

/** The summary line for people. */
export function formatPublishSummary(summary: PublishSummary): string {
  const seconds = (summary.elapsedMs / 1000).toFixed(2);
  const dup = summary.duplicates > 0 ? `, ${formatCount(summary.duplicates)} duplicates` : '';
  const of = summary.confirmed === summary.requested ? '' : ` of ${formatCount(summary.requested)}`;
  return (
    `published ${formatCount(summary.confirmed)}${of} messages to ${summary.queue} in ${seconds} s: ` +
    `${formatRate(summary.msgsPerSec)} msgs/s, ${formatBytes(summary.bytesPerSec)}/s${dup}`
  );
}

interface Run {
  summary: PublishSummary;
  error: unknown;
  lastReceipt: PublishReceipt | null;
}

async function progressBar(ctx: CliContext, total: number): Promise<SingleBar | null> {
  if (ctx.progressStream === null || total < PROGRESS_MIN_MESSAGES) return null;
  // Loaded only when a bar is drawn: every command pays for what is imported at the top.
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    {
      stream: ctx.progressStream,
      format: 'publish [{bar}] {value}/{total} {percentage}% eta {eta_formatted}',
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}

async function publishAll(plan: PublishPlan, client: FlotillaClient, ctx: CliContext): Promise<Run> {
  const makeBody = await bodyMaker(plan, ctx);
  const stats = { duplicates: 0, bytes: 0, firstSeq: null as number | null, lastSeq: null as number | null };
  let lastReceipt: PublishReceipt | null = null;
  const bar = await progressBar(ctx, plan.count);
  const pump = startPump({
    total: plan.count,
    window: PUBLISH_WINDOW,
    ratePerSec: plan.ratePerSec,
    send: async (index) => {
      const body = makeBody(index);
      const key = idempotencyKeyFor(plan, index);
      const receipt = await client.publish(
        plan.queue,
        body,
        key === undefined ? plan.options : { ...plan.options, idempotencyKey: key },
      );
      stats.bytes += typeof body === 'string' ? Buffer.byteLength(body) : body.length;
      if (receipt.duplicate) stats.duplicates++;
      stats.firstSeq = stats.firstSeq === null ? receipt.seq : Math.min(stats.firstSeq, receipt.seq);
      stats.lastSeq = Math.max(stats.lastSeq ?? 0, receipt.seq);
      lastReceipt = receipt;
    },
    onConfirmed: (confirmed) => bar?.update(confirmed),
  });
  const removeSignal = ctx.onStopSignal(() => pump.stop());
  const result = await pump.result.finally(() => {
    removeSignal();
    bar?.stop();
  });
  const seconds = Math.max(result.elapsedMs, 1) / 1000;
  const summary: PublishSummary = {
    queue: plan.queue,
    requested: plan.count,
    confirmed: result.confirmed,
    duplicates: stats.duplicates,
    firstSeq: stats.firstSeq,
    lastSeq: stats.lastSeq,
    elapsedMs: Math.round(result.elapsedMs),
    msgsPerSec: result.confirmed / seconds,
    bytesPerSec: stats.bytes / seconds,
  };
  return { summary, error: result.error, lastReceipt };
}

function report(plan: PublishPlan, run: Run, ctx: CliContext): void {
  const receipt = run.lastReceipt;
  if (plan.count === 1 && receipt !== null) {
    const text = plan.json
      ? toJson({ queue: plan.queue, seq: receipt.seq, duplicate: receipt.duplicate }, false)
      : `published #${receipt.seq} to ${plan.queue}${receipt.duplicate ? ' (duplicate: stored earlier with this key)' : ''}`;
    ctx.stdout.write(`${text}\n`);
  } else if (plan.count > 1) {
    ctx.stdout.write(`${plan.json ? toJson(run.summary, false) : formatPublishSummary(run.summary)}\n`);
  }
}

/** Runs a publish plan; resolves with the exit code. */
export async function runPublish(plan: PublishPlan, flags: ClientFlags, ctx: CliContext): Promise<number> {
  const run = await withClient(ctx, flags, (client) => publishAll(plan, client, ctx));
  report(plan, run, ctx);
  if (run.error !== null) {
    ctx.stderr.write(`flotilla: ${describeError(run.error)}\n`);
    return exitCodeFor(run.error);
  }
  if (run.summary.confirmed < plan.count) {
    ctx.stderr.write(
      `flotilla: interrupted after ${formatCount(run.summary.confirmed)} of ${formatCount(plan.count)} messages\n`,
    );
    return EXIT.failed;
  }
  return EXIT.ok;
}

const PUBLISH_HELP = `
Examples:
  $ flotilla publish emails 'hello'
  $ echo '{"to":"a@example.com"}' | flotilla publish emails -
  $ flotilla publish emails 'hi' --header trace=abc --group customer-42 --delay-ms 5000
  $ flotilla publish load --count 100000 --size 1KiB --rate 5000

The body is the message text (sent as UTF-8), stdin with -, or random bytes of --size when
--count is more than 1 without a message. With --count N and --idempotency-key K, message i gets
the key K-i. A publish counts once the cluster confirms it durable. Ctrl-C stops sending, waits for
the messages in flight and prints the summary (exit 1: fewer than asked).

Exit codes: 0 all confirmed, 1 failed or interrupted, 2 usage, 3 cluster unreachable,
4 queue not found, 5 not allowed.
`;

/** Adds `flotilla publish`. */
export function registerPublishCommand(program: Command, { ctx, run }: CommandEnv): void {
  const command = program
    .command('publish')
    .description('publish messages to a queue and wait until they are durable')
    .argument('<queue>', 'queue name')
    .argument('[message]', 'message text, or - to read it from stdin')
    .option('--count <n>', 'messages to publish (default 1)')
    .option(
      '--size <bytes>',
      `size of generated random payloads, e.g. 1KiB (default ${DEFAULT_RANDOM_SIZE_BYTES})`,
    )
    .option('--rate <per-second>', 'publish at most this many messages per second')
    .option('--idempotency-key <key>', 'stored once per key within the queue dedup window')
    .option('--delay-ms <ms>', 'deliver no earlier than this long after publish')
    .option('--ttl-ms <ms>', 'dead-letter if not acked this long after publish')
    .option('--group <group>', 'message group: one in flight per group, in order')
    .option('--priority <n>', 'priority, 0 (default) up to the queue levels minus 1; higher first')
    .option('--header <key=value>', 'a header; repeat for more', (value: string, previous: string[] = []) => [
      ...previous,
      value,
    ])
    .option('--json', 'print the receipt or summary as JSON');
  addClientOptions(command)
    .addHelpText('after', PUBLISH_HELP)
    .action(
      run(async (queue: string, message: string | undefined, flags: PublishFlags) => {
        const plan = publishPlanFromFlags(queue, message, flags);
        return runPublish(plan, flags, ctx);
      }),
    );
}
