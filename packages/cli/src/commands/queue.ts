/**
 * `flotilla queue ...`: create, list, stats, update, delete, purge, peek and redrive. Queue
 * options come from flags named after the option (`--max-deliveries` ↔ `maxDeliveries`); the
 * parsing is pure (`queueOptionsFromFlags`) and reports problems by flag name.
 */

import type { MessageView } from '@flotilla/client';
import {
  checkQueueOptionsPatch,
  DEFAULT_LIMITS,
  FlotillaError,
  type QueueOptions,
  type QueueOptionsPatch,
  type QueueStats,
  resolveQueueOptions,
} from '@flotilla/shared';
import type { Command } from 'commander';
import { addClientOptions, type ClientFlags, withClient } from '../client-flags.js';
import { EXIT, UsageError } from '../exit-codes.js';
import {
  bodyText,
  describeDeadLetter,
  formatBytes,
  formatCount,
  formatDurationMs,
  formatOptionalMs,
  formatRate,
  messageToJson,
  renderFacts,
  renderTable,
  toJson,
  viewBody,
} from '../format.js';
import { optionalInteger, parseByteSize, parseChoice, parseInteger } from '../parse.js';
import type { CommandEnv } from '../program.js';

/** One queue option flag: its name, the value placeholder, and where it goes in the options. */
interface QueueFlag {
  flag: string;
  /** Path in QueueOptionsPatch: `maxDeliveries` or `retry.delayMs`. */
  field: string;
  value: string;
  help: string;
}

const QUEUE_FLAGS: readonly QueueFlag[] = [
  {
    flag: 'visibility-timeout-ms',
    field: 'visibilityTimeoutMs',
    value: '<ms>',
    help: 'lease of a delivery before it is handed out again (default 30000)',
  },
  {
    flag: 'max-deliveries',
    field: 'maxDeliveries',
    value: '<n>',
    help: 'dead-letter a message after this many deliveries; 0 = unlimited (default 0)',
  },
  {
    flag: 'dead-letter-queue',
    field: 'deadLetterQueue',
    value: '<queue>',
    help: 'existing queue for poison, expired and dropped messages (--no-dead-letter-queue clears it)',
  },
  {
    flag: 'retry-backoff',
    field: 'retry.backoff',
    value: '<kind>',
    help: 'delay after a nack: fixed or exponential (default fixed)',
  },
  {
    flag: 'retry-delay-ms',
    field: 'retry.delayMs',
    value: '<ms>',
    help: 'delay after the first nack (default 0)',
  },
  {
    flag: 'retry-max-delay-ms',
    field: 'retry.maxDelayMs',
    value: '<ms>',
    help: 'cap of the exponential backoff (default 0)',
  },
  {
    flag: 'delivery-delay-ms',
    field: 'deliveryDelayMs',
    value: '<ms>',
    help: 'hide every new message this long unless its publish says otherwise (default 0)',
  },
  {
    flag: 'message-ttl-ms',
    field: 'messageTtlMs',
    value: '<ms>',
    help: 'dead-letter messages not acked this long after publish; 0 = never (default 0)',
  },
  {
    flag: 'max-messages',
    field: 'maxMessages',
    value: '<n>',
    help: 'messages stored at most; 0 = unlimited',
  },
  {
    flag: 'max-bytes',
    field: 'maxBytes',
    value: '<size>',
    help: 'body bytes stored at most, e.g. 64MiB; 0 = unlimited',
  },
  {
    flag: 'overflow',
    field: 'overflow',
    value: '<policy>',
    help: 'when full: reject new publishes (QUEUE_FULL) or drop-oldest (default reject)',
  },
  {
    flag: 'dedup-window-ms',
    field: 'dedupWindowMs',
    value: '<ms>',
    help: 'how long idempotency keys are remembered (default 300000)',
  },
  {
    flag: 'priority-levels',
    field: 'priorityLevels',
    value: '<n>',
    help: `priority levels, 1..${DEFAULT_LIMITS.maxPriorityLevels}; fixed at creation (default 1)`,
  },
];

/** `retry-delay-ms` → `retryDelayMs`: the attribute commander stores a flag's value under. */
function attributeName(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** `options.retry.delayMs` (a field named by a validation error) → `--retry-delay-ms`. */
export function flagForField(field: string): string | undefined {
  const path = field.replace(/^options\./, '');
  const match = QUEUE_FLAGS.find((entry) => entry.field === path);
  return match === undefined ? undefined : `--${match.flag}`;
}

/** Rewrites an INVALID_ARGUMENT about a queue option into a usage error naming the flag. */
export function asFlagError(error: unknown): unknown {
  if (!(error instanceof FlotillaError) || error.code !== 'INVALID_ARGUMENT') return error;
  const field = error.field;
  const flag = field === undefined ? undefined : flagForField(field);
  if (flag === undefined || field === undefined) return error;
  const message = error.message.startsWith(`${field}:`)
    ? error.message.slice(field.length + 1)
    : error.message;
  return new UsageError(`${flag}:${message}`);
}

function parseFlagValue(entry: QueueFlag, raw: unknown): unknown {
  const flag = `--${entry.flag}`;
  if (entry.field === 'deadLetterQueue') return raw === false ? null : String(raw);
  if (entry.field === 'retry.backoff') return parseChoice(String(raw), flag, ['fixed', 'exponential']);
  if (entry.field === 'overflow') return parseChoice(String(raw), flag, ['reject', 'drop-oldest']);
  if (entry.field === 'maxBytes') return parseByteSize(String(raw), flag);
  return parseInteger(String(raw), flag);
}

/**
 * The queue options patch the flags describe (only the flags given). Values are checked with the
 * protocol's own rules, and a problem is reported by flag name (exit code 2).
 */
export function queueOptionsFromFlags(flags: Record<string, unknown>): QueueOptionsPatch {
  const patch: Record<string, unknown> = {};
  const retry: Record<string, unknown> = {};
  for (const entry of QUEUE_FLAGS) {
    const raw = flags[attributeName(entry.flag)];
    if (raw === undefined) continue;
    const value = parseFlagValue(entry, raw);
    if (entry.field.startsWith('retry.')) retry[entry.field.slice('retry.'.length)] = value;
    else patch[entry.field] = value;
  }
  if (Object.keys(retry).length > 0) patch.retry = retry;
  try {
    return checkQueueOptionsPatch(patch);
  } catch (error) {
    throw asFlagError(error);
  }
}

/** Adds every queue option flag to a command. */
function addQueueOptionFlags(command: Command): Command {
  for (const entry of QUEUE_FLAGS) command.option(`--${entry.flag} ${entry.value}`, entry.help);
  command.option('--no-dead-letter-queue', 'remove the dead-letter queue (update)');
  return command;
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** Queue options as rows for people. */
export function optionFacts(options: QueueOptions): [string, string][] {
  const { retry } = options;
  const retryText =
    retry.backoff === 'fixed'
      ? `fixed ${formatDurationMs(retry.delayMs)}`
      : `exponential ${formatDurationMs(retry.delayMs)} .. ${formatDurationMs(retry.maxDelayMs)}`;
  const unlimited = (value: number, show: (v: number) => string) => (value === 0 ? 'unlimited' : show(value));
  return [
    ['visibility timeout', formatDurationMs(options.visibilityTimeoutMs)],
    ['max deliveries', unlimited(options.maxDeliveries, formatCount)],
    ['dead-letter queue', options.deadLetterQueue ?? '-'],
    ['retry', retryText],
    ['delivery delay', formatOptionalMs(options.deliveryDelayMs)],
    ['message ttl', formatOptionalMs(options.messageTtlMs)],
    ['max messages', unlimited(options.maxMessages, formatCount)],
    ['max bytes', unlimited(options.maxBytes, formatBytes)],
    ['overflow', options.overflow],
    ['dedup window', formatOptionalMs(options.dedupWindowMs)],
    ['priority levels', String(options.priorityLevels)],
  ];
}

function oldestAge(stats: QueueStats): string {
  return stats.oldestMessageAgeMs === null ? '-' : formatDurationMs(stats.oldestMessageAgeMs);
}

/** The `queue list` table. */
export function renderQueueList(queues: readonly QueueStats[]): string {
  if (queues.length === 0) return 'no queues';
  const rows = [...queues]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((q) => [
      q.name,
      formatCount(q.depth),
      formatCount(q.ready),
      formatCount(q.inFlight),
      formatCount(q.delayed),
      formatCount(q.deadLetteredCount),
      formatBytes(q.totalBytes),
      oldestAge(q),
    ]);
  return renderTable(
    ['queue', 'depth', 'ready', 'in flight', 'delayed', 'dead-lettered', 'bytes', 'oldest'],
    rows,
  );
}

/** Publish and ack rates, when the server sampled them (older servers and some paths do not). */
function rateFacts(stats: QueueStats): [string, string][] {
  const facts: [string, string][] = [];
  if (stats.publishRate !== undefined) facts.push(['publish rate', `${formatRate(stats.publishRate)}/s`]);
  if (stats.ackRate !== undefined) facts.push(['ack rate', `${formatRate(stats.ackRate)}/s`]);
  return facts;
}

/** The `queue stats` view: counts (and rates when known), then options. */
export function renderQueueStats(stats: QueueStats): string {
  const counts: [string, string][] = [
    ['queue', stats.name],
    ['depth', formatCount(stats.depth)],
    ['ready', formatCount(stats.ready)],
    ['in flight', formatCount(stats.inFlight)],
    ['delayed', formatCount(stats.delayed)],
    ['bytes', formatBytes(stats.totalBytes)],
    ['oldest message', oldestAge(stats)],
    ['published', formatCount(stats.publishedCount)],
    ['delivered', formatCount(stats.deliveredCount)],
    ['acked', formatCount(stats.ackedCount)],
    ['dead-lettered', formatCount(stats.deadLetteredCount)],
    ...rateFacts(stats),
  ];
  return `${renderFacts(counts)}\n${renderFacts(optionFacts(stats.options))}`;
}

const PEEK_BODY_CHARS = 60;

/**
 * The `queue peek` table: one row per stored message, bodies cut to one short line. A `from`
 * column (where the message was dead-lettered from, and why) appears when any message has one.
 */
export function renderPeek(messages: readonly MessageView[]): string {
  if (messages.length === 0) return 'no messages';
  const withHistory = messages.some((m) => m.deadLetter !== null);
  const rows = messages.map((m) => {
    const body = bodyText(viewBody(m.bytes, m.format));
    const row = [
      String(m.seq),
      String(m.deliveryCount),
      String(m.priority),
      m.group ?? '-',
      new Date(m.publishedAtMs).toISOString(),
      formatBytes(m.bytes.length),
    ];
    if (withHistory) row.push(m.deadLetter === null ? '-' : describeDeadLetter(m.deadLetter));
    row.push(body.length > PEEK_BODY_CHARS ? `${body.slice(0, PEEK_BODY_CHARS - 3)}...` : body);
    return row;
  });
  const head = ['seq', 'deliveries', 'priority', 'group', 'published', 'size'];
  return renderTable([...head, ...(withHistory ? ['from'] : []), 'body'], rows);
}

// ---------------------------------------------------------------------------------------------
// Commands

interface JsonFlag {
  json?: boolean;
}

const EXIT_LINE =
  'Exit codes: 0 ok, 1 failed, 2 usage, 3 cluster unreachable, 4 queue not found, 5 not allowed.';

function help(examples: readonly string[]): string {
  return `\nExamples:\n${examples.map((line) => `  $ ${line}`).join('\n')}\n\n${EXIT_LINE}\n`;
}

/** Adds `flotilla queue` and its subcommands. */
export function registerQueueCommands(program: Command, env: CommandEnv): void {
  const queue = program
    .command('queue')
    .description('manage queues: create, list, stats, update, delete, purge, peek, redrive')
    .addHelpText('after', help(['flotilla queue list', 'flotilla queue stats emails']));
  registerCreate(queue, env);
  registerList(queue, env);
  registerStats(queue, env);
  registerUpdate(queue, env);
  registerDelete(queue, env);
  registerPurge(queue, env);
  registerPeek(queue, env);
  registerRedrive(queue, env);
}

function clientCommand(parent: Command, name: string, description: string, examples: string[]): Command {
  const command = parent
    .command(name)
    .description(description)
    .option('--json', 'print JSON instead of a table');
  addClientOptions(command);
  return command.addHelpText('after', help(examples));
}

function registerCreate(queue: Command, { ctx, run }: CommandEnv): void {
  const command = clientCommand(queue, 'create', 'create a queue', [
    'flotilla queue create emails.dlq',
    'flotilla queue create emails --max-deliveries 5 --dead-letter-queue emails.dlq',
    'flotilla queue create jobs --retry-backoff exponential --retry-delay-ms 1000 --retry-max-delay-ms 60000',
  ]).argument('<name>', 'queue name (1..200 of A-Z a-z 0-9 . _ : -)');
  addQueueOptionFlags(command).action(
    run(async (name: string, flags: ClientFlags & JsonFlag & Record<string, unknown>) => {
      const patch = queueOptionsFromFlags(flags);
      const whole = resolveQueueOptions(name, patch);
      if (!whole.ok) throw asFlagError(whole.error);
      const options = await withClient(ctx, flags, (client) => client.createQueue(name, patch)).catch(
        (error) => {
          throw asFlagError(error);
        },
      );
      if (flags.json) ctx.stdout.write(`${toJson({ name, options }, ctx.stdout.isTTY)}\n`);
      else ctx.stdout.write(`created queue ${name}\n${renderFacts(optionFacts(options))}\n`);
      return EXIT.ok;
    }),
  );
}

function registerUpdate(queue: Command, { ctx, run }: CommandEnv): void {
  const command = clientCommand(queue, 'update', 'change options of a queue (only those given)', [
    'flotilla queue update emails --max-deliveries 10',
    'flotilla queue update emails --no-dead-letter-queue',
  ]).argument('<name>', 'queue name');
  addQueueOptionFlags(command).action(
    run(async (name: string, flags: ClientFlags & JsonFlag & Record<string, unknown>) => {
      const patch = queueOptionsFromFlags(flags);
      if (Object.keys(patch).length === 0)
        throw new UsageError('queue update: give at least one option to change');
      const options = await withClient(ctx, flags, (client) => client.updateQueue(name, patch)).catch(
        (error) => {
          throw asFlagError(error);
        },
      );
      if (flags.json) ctx.stdout.write(`${toJson({ name, options }, ctx.stdout.isTTY)}\n`);
      else ctx.stdout.write(`updated queue ${name}\n${renderFacts(optionFacts(options))}\n`);
      return EXIT.ok;
    }),
  );
}

function registerList(queue: Command, { ctx, run }: CommandEnv): void {
  clientCommand(queue, 'list', 'list queues with their depth and counters', [
    'flotilla queue list',
    'flotilla queue list --json',
  ]).action(
    run(async (flags: ClientFlags & JsonFlag) => {
      const queues = await withClient(ctx, flags, (client) => client.listQueues());
      ctx.stdout.write(`${flags.json ? toJson(queues, ctx.stdout.isTTY) : renderQueueList(queues)}\n`);
      return EXIT.ok;
    }),
  );
}

function registerStats(queue: Command, { ctx, run }: CommandEnv): void {
  clientCommand(queue, 'stats', 'show one queue: depth, in flight, delayed, counters and options', [
    'flotilla queue stats emails',
    'flotilla queue stats emails --json',
  ])
    .argument('<name>', 'queue name')
    .action(
      run(async (name: string, flags: ClientFlags & JsonFlag) => {
        const stats = await withClient(ctx, flags, (client) => client.queueStats(name));
        ctx.stdout.write(`${flags.json ? toJson(stats, ctx.stdout.isTTY) : renderQueueStats(stats)}\n`);
        return EXIT.ok;
      }),
    );
}

function registerDelete(queue: Command, { ctx, run }: CommandEnv): void {
  clientCommand(queue, 'delete', 'delete a queue and every message in it', ['flotilla queue delete emails'])
    .argument('<name>', 'queue name')
    .action(
      run(async (name: string, flags: ClientFlags & JsonFlag) => {
        await withClient(ctx, flags, (client) => client.deleteQueue(name));
        ctx.stdout.write(flags.json ? `${toJson({ deleted: name }, false)}\n` : `deleted queue ${name}\n`);
        return EXIT.ok;
      }),
    );
}

function registerPurge(queue: Command, { ctx, run }: CommandEnv): void {
  clientCommand(queue, 'purge', 'remove every message of a queue (the queue stays)', [
    'flotilla queue purge emails',
  ])
    .argument('<name>', 'queue name')
    .action(
      run(async (name: string, flags: ClientFlags & JsonFlag) => {
        const purged = await withClient(ctx, flags, (client) => client.purgeQueue(name));
        ctx.stdout.write(
          flags.json
            ? `${toJson({ queue: name, purged }, false)}\n`
            : `purged ${formatCount(purged)} messages from ${name}\n`,
        );
        return EXIT.ok;
      }),
    );
}

interface PeekFlags extends ClientFlags, JsonFlag {
  fromSeq?: string;
  max?: string;
}

const DEFAULT_PEEK_MAX = 20;

function registerPeek(queue: Command, { ctx, run }: CommandEnv): void {
  clientCommand(queue, 'peek', 'show stored messages without leasing them', [
    'flotilla queue peek emails',
    'flotilla queue peek emails --from-seq 1000 --max 50 --json',
  ])
    .argument('<name>', 'queue name')
    .option('--from-seq <seq>', 'first sequence number to show (default 0)')
    .option('--max <n>', `messages to show at most (default ${DEFAULT_PEEK_MAX})`)
    .action(
      run(async (name: string, flags: PeekFlags) => {
        const fromSeq = optionalInteger(flags.fromSeq, '--from-seq') ?? 0;
        const max = optionalInteger(flags.max, '--max', { min: 1, max: DEFAULT_LIMITS.maxReceiveMessages });
        const messages = await withClient(ctx, flags, (client) =>
          client.peek(name, { fromSeq, max: max ?? DEFAULT_PEEK_MAX }),
        );
        // JSON Lines: one message per line, like `consume --json`.
        const text = flags.json
          ? messages.map((m) => `${JSON.stringify(messageToJson(m))}\n`).join('')
          : `${renderPeek(messages)}\n`;
        ctx.stdout.write(text);
        return EXIT.ok;
      }),
    );
}

interface RedriveFlags extends ClientFlags, JsonFlag {
  target?: string;
  max?: string;
}

function registerRedrive(queue: Command, { ctx, run }: CommandEnv): void {
  clientCommand(queue, 'redrive', 'move dead-lettered messages back (oldest first)', [
    'flotilla queue redrive emails.dlq',
    'flotilla queue redrive emails.dlq --target emails.retry --max 100',
  ])
    .argument('<dlq>', 'the dead-letter queue to move messages out of')
    .option('--target <queue>', 'move them here (default: each back to the queue it came from)')
    .option(
      '--max <n>',
      `messages to move at most (default: the server's limit, ${DEFAULT_LIMITS.maxRedriveMessages})`,
    )
    .action(
      run(async (dlq: string, flags: RedriveFlags) => {
        const max = optionalInteger(flags.max, '--max', { min: 1, max: DEFAULT_LIMITS.maxRedriveMessages });
        const options = {
          ...(flags.target === undefined ? {} : { target: flags.target }),
          ...(max === undefined ? {} : { max }),
        };
        const moved = await withClient(ctx, flags, (client) => client.redrive(dlq, options));
        const where = flags.target === undefined ? 'their original queues' : flags.target;
        ctx.stdout.write(
          flags.json
            ? `${toJson({ dlq, target: flags.target ?? null, moved }, false)}\n`
            : `moved ${formatCount(moved)} messages from ${dlq} to ${where}\n`,
        );
        return EXIT.ok;
      }),
    );
}
