/**
 * `flotilla consume QUEUE`: prints messages as they arrive and acks each one after printing it.
 * Stops after `--count` messages, at `--timeout-ms`, or on Ctrl-C; with `--no-ack` the messages
 * are given back (nacked without delay) when it stops, so this works as a look at live traffic.
 */

import type { FlotillaClient, Message } from '@flotilla/client';
import { DEFAULT_LIMITS } from '@flotilla/shared';
import type { Command } from 'commander';
import { addClientOptions, type ClientFlags, withClient } from '../client-flags.js';
import type { CliContext } from '../context.js';
import { describeError, EXIT, UsageError } from '../exit-codes.js';
import { formatCount, formatMessageLine, messageToJson } from '../format.js';
import { optionalInteger } from '../parse.js';
import type { CommandEnv } from '../program.js';

export interface ConsumeFlags extends ClientFlags {
  count?: string;
  prefetch?: string;
  timeoutMs?: string;
  json?: boolean;
  /** False with `--no-ack`. */
  ack?: boolean;
}

export interface ConsumePlan {
  queue: string;
  /** Stop after this many messages; null: run until the timeout or Ctrl-C. */
  count: number | null;
  prefetch: number;
  /** Stop this long after subscribing; null: no limit. */
  timeoutMs: number | null;
  ack: boolean;
  json: boolean;
}

/** Messages held at once when `--prefetch` is not given (and `--count` does not ask for fewer). */
export const DEFAULT_CONSUME_PREFETCH = 100;

/** What `flotilla consume` will do, from its flags; throws UsageError naming the flag. */
export function consumePlanFromFlags(queue: string, flags: ConsumeFlags): ConsumePlan {
  const count = optionalInteger(flags.count, '--count', { min: 1 }) ?? null;
  const ack = flags.ack !== false;
  const maxPrefetch = DEFAULT_LIMITS.maxPrefetch;
  const given = optionalInteger(flags.prefetch, '--prefetch', { min: 1, max: maxPrefetch });
  // Never lease more than will be printed: extra deliveries would count toward maxDeliveries. Without
  // acks every message stays held until the end, so all `count` of them must fit in the window.
  const wanted = ack ? DEFAULT_CONSUME_PREFETCH : maxPrefetch;
  const prefetch = given ?? Math.min(count ?? wanted, wanted);
  if (!ack && count !== null && prefetch < count) {
    throw new UsageError(
      `--prefetch: with --no-ack it must be at least --count (${count}): unacked messages stay held`,
    );
  }
  return {
    queue,
    count,
    prefetch,
    timeoutMs: optionalInteger(flags.timeoutMs, '--timeout-ms', { min: 1 }) ?? null,
    ack,
    json: flags.json === true,
  };
}

/** How a consume run ended. */
export interface ConsumeOutcome {
  received: number;
  ackFailures: number;
  /** Why it stopped before `count`: the timeout or a signal; null when it got them all. */
  stoppedBy: 'timeout' | 'signal' | 'end' | null;
}

/** The exit code for an outcome: with `--count`, fewer messages than asked is a failure. */
export function consumeExitCode(plan: ConsumePlan, outcome: ConsumeOutcome): number {
  if (outcome.ackFailures > 0) return EXIT.failed;
  if (plan.count !== null && outcome.received < plan.count) return EXIT.failed;
  return EXIT.ok;
}

const STOP = Symbol('stop');

/** Resolves with STOP at the timeout or on a stop signal; `cancel` removes both. */
function stopper(plan: ConsumePlan, ctx: CliContext) {
  let reason: 'timeout' | 'signal' | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let removeSignal = () => {};
  const stopped = new Promise<typeof STOP>((resolve) => {
    if (plan.timeoutMs !== null) {
      timer = setTimeout(() => {
        reason ??= 'timeout';
        resolve(STOP);
      }, plan.timeoutMs);
    }
    removeSignal = ctx.onStopSignal(() => {
      reason ??= 'signal';
      resolve(STOP);
    });
  });
  return {
    stopped,
    reason: () => reason,
    cancel() {
      clearTimeout(timer);
      removeSignal();
    },
  };
}

function print(plan: ConsumePlan, message: Message, ctx: CliContext): void {
  ctx.stdout.write(`${plan.json ? JSON.stringify(messageToJson(message)) : formatMessageLine(message)}\n`);
}

async function consumeMessages(
  plan: ConsumePlan,
  client: FlotillaClient,
  ctx: CliContext,
): Promise<ConsumeOutcome> {
  const stream = client.messages(plan.queue, { prefetch: plan.prefetch });
  const stop = stopper(plan, ctx);
  const settling: Promise<void>[] = [];
  const held: Message[] = [];
  const outcome: ConsumeOutcome = { received: 0, ackFailures: 0, stoppedBy: null };
  try {
    while (plan.count === null || outcome.received < plan.count) {
      const pending = stream.next();
      const next = await Promise.race([pending, stop.stopped]);
      if (next === STOP) {
        giveBack(pending);
        outcome.stoppedBy = stop.reason();
        break;
      }
      if (next.done) {
        outcome.stoppedBy = 'end';
        break;
      }
      outcome.received++;
      print(plan, next.value, ctx);
      if (!plan.ack) held.push(next.value);
      else settling.push(ackReporting(next.value, outcome, ctx));
    }
  } finally {
    stop.cancel();
    await stream.close();
    // Given back at once rather than when their leases end.
    settling.push(...held.map((m) => m.nack({ delayMs: 0 }).catch(() => {})));
    await Promise.all(settling);
  }
  return outcome;
}

/** A read abandoned at the stop: a message it still brings is given back, an error is moot. */
function giveBack(pending: Promise<IteratorResult<Message>>): void {
  pending.then(
    (result) => {
      if (!result.done) result.value.nack({ delayMs: 0 }).catch(() => {});
    },
    () => {},
  );
}

function ackReporting(message: Message, outcome: ConsumeOutcome, ctx: CliContext): Promise<void> {
  return message.ack().catch((error: unknown) => {
    outcome.ackFailures++;
    ctx.stderr.write(
      `flotilla: ack of #${message.seq} failed (it will be delivered again): ${describeError(error)}\n`,
    );
  });
}

/** Runs a consume plan; resolves with the exit code. */
export async function runConsume(plan: ConsumePlan, flags: ClientFlags, ctx: CliContext): Promise<number> {
  const outcome = await withClient(ctx, flags, (client) => consumeMessages(plan, client, ctx));
  const code = consumeExitCode(plan, outcome);
  if (code !== EXIT.ok && plan.count !== null && outcome.received < plan.count) {
    const why = outcome.stoppedBy === 'timeout' ? `no more within ${plan.timeoutMs} ms` : 'interrupted';
    ctx.stderr.write(
      `flotilla: ${why}: got ${formatCount(outcome.received)} of ${formatCount(plan.count)} messages\n`,
    );
  }
  return code;
}

const CONSUME_HELP = `
Examples:
  $ flotilla consume emails                            # until Ctrl-C
  $ flotilla consume emails --count 10 --timeout-ms 5000 --json
  $ flotilla consume emails --count 5 --no-ack         # look, then give them back

Each message is printed, then acked (unless --no-ack). Human output: #seq, delivery count, group,
priority, headers and the body as text when it is UTF-8 (JSON for msgpack/JSON bodies), else its
size and first bytes in hex. --json prints one JSON object per line with "encoding" telling how
"body" is written: text, json or base64.

Exit codes: 0 done (all --count messages, or stopped without --count), 1 fewer than --count before
the timeout or Ctrl-C, or an ack failed, 2 usage, 3 cluster unreachable, 4 queue not found,
5 not allowed.
`;

/** Adds `flotilla consume`. */
export function registerConsumeCommand(program: Command, { ctx, run }: CommandEnv): void {
  const command = program
    .command('consume')
    .description('print messages from a queue as they arrive, acking each')
    .argument('<queue>', 'queue name')
    .option('--count <n>', 'stop after this many messages')
    .option(
      '--prefetch <n>',
      `messages held at once (default ${DEFAULT_CONSUME_PREFETCH}, or --count if smaller)`,
    )
    .option('--timeout-ms <ms>', 'stop after this long')
    .option('--no-ack', 'do not ack: give the messages back when done')
    .option('--json', 'print one JSON object per message');
  addClientOptions(command)
    .addHelpText('after', CONSUME_HELP)
    .action(
      run(async (queue: string, flags: ConsumeFlags) =>
        runConsume(consumePlanFromFlags(queue, flags), flags, ctx),
      ),
    );
}
