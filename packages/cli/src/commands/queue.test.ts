/**
 * Proves queue option flags become exactly the options patch they name (and nothing else), that
 * refused values are reported by flag, and how queue listings, stats and peeked messages (with
 * where dead-lettered ones came from) are laid out.
 */

import { MessageView } from '@flotilla/client';
import { DEFAULT_QUEUE_OPTIONS, FlotillaError, type QueueStats } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../exit-codes.js';
import {
  asFlagError,
  flagForField,
  optionFacts,
  queueOptionsFromFlags,
  renderPeek,
  renderQueueList,
  renderQueueStats,
} from './queue.js';

function stats(overrides: Partial<QueueStats> = {}): QueueStats {
  return {
    name: 'emails',
    depth: 1200,
    ready: 1000,
    inFlight: 150,
    delayed: 50,
    totalBytes: 2048,
    publishedCount: 5000,
    deliveredCount: 4000,
    ackedCount: 3800,
    deadLetteredCount: 3,
    oldestMessageAgeMs: 65_000,
    options: DEFAULT_QUEUE_OPTIONS,
    ...overrides,
  };
}

describe('queueOptionsFromFlags', () => {
  it('gives an empty patch when no option flag was given (other flags are ignored)', () => {
    expect(queueOptionsFromFlags({ json: true, servers: 'x' })).toEqual({});
  });

  it('maps every flag to its option, parsing numbers and sizes', () => {
    const patch = queueOptionsFromFlags({
      visibilityTimeoutMs: '5000',
      maxDeliveries: '5',
      deadLetterQueue: 'emails.dlq',
      retryBackoff: 'exponential',
      retryDelayMs: '1_000',
      retryMaxDelayMs: '60000',
      deliveryDelayMs: '10',
      messageTtlMs: '3600000',
      maxMessages: '100000',
      maxBytes: '64MiB',
      overflow: 'drop-oldest',
      dedupWindowMs: '0',
      priorityLevels: '3',
    });
    expect(patch).toEqual({
      visibilityTimeoutMs: 5000,
      maxDeliveries: 5,
      deadLetterQueue: 'emails.dlq',
      retry: { backoff: 'exponential', delayMs: 1000, maxDelayMs: 60000 },
      deliveryDelayMs: 10,
      messageTtlMs: 3_600_000,
      maxMessages: 100_000,
      maxBytes: 64 * 1024 ** 2,
      overflow: 'drop-oldest',
      dedupWindowMs: 0,
      priorityLevels: 3,
    });
  });

  it('--no-dead-letter-queue clears the dead-letter queue', () => {
    expect(queueOptionsFromFlags({ deadLetterQueue: false })).toEqual({ deadLetterQueue: null });
  });

  it('refuses values by flag name: text for numbers, unknown choices, protocol ranges, bad names', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ maxDeliveries: 'five' }, '--max-deliveries'],
      [{ overflow: 'block' }, '--overflow'],
      [{ retryBackoff: 'linear' }, '--retry-backoff'],
      [{ visibilityTimeoutMs: '0' }, '--visibility-timeout-ms'],
      [{ priorityLevels: '11' }, '--priority-levels'],
      [{ maxDeliveries: '100000' }, '--max-deliveries'],
      [{ deadLetterQueue: 'bad name!' }, '--dead-letter-queue'],
      [{ maxBytes: '1 parsec' }, '--max-bytes'],
    ];
    for (const [flags, flag] of cases) {
      let caught: unknown;
      try {
        queueOptionsFromFlags(flags);
      } catch (error) {
        caught = error;
      }
      expect(caught, flag).toBeInstanceOf(UsageError);
      expect((caught as Error).message.startsWith(`${flag}:`), (caught as Error).message).toBe(true);
    }
  });
});

describe('field names and flags', () => {
  it('finds the flag for an option field named by the protocol', () => {
    expect(flagForField('options.retry.delayMs')).toBe('--retry-delay-ms');
    expect(flagForField('options.visibilityTimeoutMs')).toBe('--visibility-timeout-ms');
    expect(flagForField('name')).toBeUndefined();
  });

  it('turns an INVALID_ARGUMENT about an option into a usage error and leaves others alone', () => {
    const fromServer = new FlotillaError(
      'INVALID_ARGUMENT',
      'options.maxDeliveries: 5000 is outside 0..1000',
      {
        field: 'options.maxDeliveries',
      },
    );
    expect(asFlagError(fromServer)).toEqual(new UsageError('--max-deliveries: 5000 is outside 0..1000'));
    const other = new FlotillaError('QUEUE_EXISTS', 'taken');
    expect(asFlagError(other)).toBe(other);
  });
});

describe('queue views', () => {
  it('lists queues sorted by name, or says there are none', () => {
    expect(renderQueueList([])).toBe('no queues');
    const text = renderQueueList([
      stats({ name: 'zeta' }),
      stats({ name: 'alpha', oldestMessageAgeMs: null }),
    ]);
    const lines = text.split('\n');
    expect(lines[1]).toMatch(/queue.*depth.*ready.*in flight.*delayed.*dead-lettered.*bytes.*oldest/);
    expect(lines[3]).toMatch(/│ alpha │ 1,200 │ 1,000 │ 150\s+│ 50\s+│ 3\s+│ 2.0 KiB │ -\s+│/);
    expect(lines[4]).toMatch(/│ zeta\s+│ 1,200 │.*│ 1 m 5 s │/);
  });

  it('shows counters then options for one queue', () => {
    const text = renderQueueStats(stats());
    for (const fact of [
      'in flight',
      'published',
      'acked',
      'dead-lettered',
      'oldest message',
      'visibility timeout',
    ]) {
      expect(text).toContain(fact);
    }
    expect(text).toMatch(/acked\s+│ 3,800/);
  });

  it('shows publish and ack rates when the server sent them, and no rate lines otherwise', () => {
    const withRates = renderQueueStats(stats({ publishRate: 1234.5, ackRate: 0.25 }));
    expect(withRates).toMatch(/publish rate\s+│ 1,235\/s/);
    expect(withRates).toMatch(/ack rate\s+│ 0\.25\/s/);
    expect(renderQueueStats(stats())).not.toContain('rate');
  });

  it('describes options in words', () => {
    const facts = Object.fromEntries(
      optionFacts({
        ...DEFAULT_QUEUE_OPTIONS,
        maxDeliveries: 5,
        deadLetterQueue: 'dlq',
        retry: { backoff: 'exponential', delayMs: 500, maxDelayMs: 120_000 },
        maxBytes: 1024,
      }),
    );
    expect(facts).toMatchObject({
      'visibility timeout': '30 s',
      'max deliveries': '5',
      'dead-letter queue': 'dlq',
      retry: 'exponential 500 ms .. 2 m',
      'message ttl': 'off',
      'max messages': 'unlimited',
      'max bytes': '1.0 KiB',
      'dedup window': '5 m',
    });
  });
});

describe('renderPeek', () => {
  function view(seq: number, deadLetter: MessageView['deadLetter']): MessageView {
    return new MessageView({
      queue: 'emails.dlq',
      seq,
      deliveryId: 0,
      body: new TextEncoder().encode(`body ${seq}`),
      format: 1,
      headers: null,
      group: null,
      priority: 0,
      deliveryCount: 0,
      publishedAtMs: Date.UTC(2026, 0, 1),
      leaseDeadlineMs: 0,
      deadLetter,
    });
  }

  it('adds a from column only when a message was dead-lettered', () => {
    expect(renderPeek([view(1, null)])).not.toContain('from');
    const history = { queue: 'emails', seq: 17, deliveryCount: 5, reason: 'max-deliveries', timeMs: 1 };
    const text = renderPeek([view(1, history), view(2, null)]);
    const [head, first, second] = text.split('\n').filter((line) => /\w/.test(line));
    expect(head).toMatch(/seq .* from .* body/);
    expect(first).toContain('emails#17 max-deliveries after 5 deliveries');
    expect(first).toContain('body 1');
    expect(second).toMatch(/ - .*body 2/);
  });
});
