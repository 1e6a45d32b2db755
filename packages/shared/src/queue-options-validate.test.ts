/**
 * Proves queue option resolution: a partial patch becomes complete options with the defaults
 * filled in, each option is range-checked, cross-field rules hold (own DLQ, exponential backoff
 * bounds), and updates refuse options fixed at creation while keeping the current values.
 */

import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from './limits.js';
import { DEFAULT_QUEUE_OPTIONS } from './queue-options.js';
import { resolveQueueOptions } from './queue-options-validate.js';

function refusedField(result: ReturnType<typeof resolveQueueOptions>): string | undefined {
  if (result.ok) throw new Error('expected a refusal');
  expect(result.error.code).toBe('INVALID_ARGUMENT');
  return result.error.field;
}

describe('resolveQueueOptions', () => {
  it('fills defaults for an empty patch and keeps given values', () => {
    expect(resolveQueueOptions('q', {})).toEqual({ ok: true, value: DEFAULT_QUEUE_OPTIONS });
    const resolved = resolveQueueOptions('q', {
      maxDeliveries: 5,
      retry: { delayMs: 10 },
      visibilityTimeoutMs: undefined,
    });
    expect(resolved).toEqual({
      ok: true,
      value: {
        ...DEFAULT_QUEUE_OPTIONS,
        maxDeliveries: 5,
        retry: { ...DEFAULT_QUEUE_OPTIONS.retry, delayMs: 10 },
      },
    });
  });

  it('does not share the retry object with the base', () => {
    const resolved = resolveQueueOptions('q', {});
    if (!resolved.ok) throw resolved.error;
    expect(resolved.value.retry).not.toBe(DEFAULT_QUEUE_OPTIONS.retry);
  });

  it('checks every numeric option at its bounds', () => {
    const L = DEFAULT_LIMITS;
    const bounds: [string, number, number][] = [
      ['visibilityTimeoutMs', 1, L.maxVisibilityTimeoutMs],
      ['maxDeliveries', 0, L.maxMaxDeliveries],
      ['deliveryDelayMs', 0, L.maxDelayMs],
      ['messageTtlMs', 0, L.maxTtlMs],
      ['maxMessages', 0, Number.MAX_SAFE_INTEGER],
      ['maxBytes', 0, Number.MAX_SAFE_INTEGER],
      ['dedupWindowMs', 0, L.maxDedupWindowMs],
      ['priorityLevels', 1, L.maxPriorityLevels],
    ];
    for (const [key, min, max] of bounds) {
      expect(resolveQueueOptions('q', { [key]: min }).ok, key).toBe(true);
      expect(resolveQueueOptions('q', { [key]: max }).ok, key).toBe(true);
      for (const bad of [min - 1, max + 1, 1.5, Number.NaN, '1', null, true]) {
        expect(refusedField(resolveQueueOptions('q', { [key]: bad })), `${key}=${String(bad)}`).toBe(
          `options.${key}`,
        );
      }
    }
  });

  it('refuses a non-map patch, unknown options and bad choices', () => {
    for (const bad of [null, 5, 'x', [], new Uint8Array(1)])
      expect(refusedField(resolveQueueOptions('q', bad))).toBe('options');
    expect(refusedField(resolveQueueOptions('q', { nope: 1 }))).toBe('options.nope');
    expect(refusedField(resolveQueueOptions('q', { overflow: 'sometimes' }))).toBe('options.overflow');
    expect(refusedField(resolveQueueOptions('q', { retry: { backoff: 'linear' } }))).toBe(
      'options.retry.backoff',
    );
    expect(refusedField(resolveQueueOptions('q', { retry: 'fast' }))).toBe('options.retry');
  });

  it('a queue cannot dead-letter into itself', () => {
    expect(refusedField(resolveQueueOptions('jobs', { deadLetterQueue: 'jobs' }))).toBe(
      'options.deadLetterQueue',
    );
    expect(resolveQueueOptions('jobs', { deadLetterQueue: 'jobs.dlq' }).ok).toBe(true);
  });

  it('exponential backoff needs 1 <= delayMs <= maxDelayMs', () => {
    const exp = (delayMs: number, maxDelayMs: number) =>
      resolveQueueOptions('q', { retry: { backoff: 'exponential', delayMs, maxDelayMs } });
    expect(exp(100, 100).ok).toBe(true);
    expect(refusedField(exp(100, 99))).toBe('options.retry.maxDelayMs');
    expect(refusedField(exp(0, 10))).toBe('options.retry.delayMs');
    // Fixed backoff ignores the cap.
    expect(resolveQueueOptions('q', { retry: { backoff: 'fixed', delayMs: 100, maxDelayMs: 0 } }).ok).toBe(
      true,
    );
  });

  it('updates merge over the current options and refuse fixed ones', () => {
    const current = {
      ...DEFAULT_QUEUE_OPTIONS,
      priorityLevels: 3,
      retry: { backoff: 'exponential' as const, delayMs: 10, maxDelayMs: 100 },
    };
    const updated = resolveQueueOptions('q', { retry: { maxDelayMs: 50 } }, current, { forUpdate: true });
    expect(updated).toEqual({ ok: true, value: { ...current, retry: { ...current.retry, maxDelayMs: 50 } } });
    expect(
      refusedField(resolveQueueOptions('q', { retry: { maxDelayMs: 5 } }, current, { forUpdate: true })),
    ).toBe('options.retry.maxDelayMs');
    expect(refusedField(resolveQueueOptions('q', { priorityLevels: 3 }, current, { forUpdate: true }))).toBe(
      'options.priorityLevels',
    );
  });

  it('honours tighter server limits', () => {
    const limits = { ...DEFAULT_LIMITS, maxPriorityLevels: 4 };
    expect(refusedField(resolveQueueOptions('q', { priorityLevels: 5 }, undefined, { limits }))).toBe(
      'options.priorityLevels',
    );
  });
});
