/**
 * Queue options inside the state machine: validation of a complete option set (a command that
 * slipped past the edge must still be refused, never half-applied), patching for updateQueue,
 * equality for createQueue's idempotency, and the retry backoff rule.
 */
import type { QueueOptions, RetryPolicy } from '@flotilla/shared';
import { MAX_BYTES_LIMIT, MAX_COUNT, MAX_DURATION_MS, MAX_PRIORITY_LEVELS } from './limits.js';
import type { QueueOptionsPatch } from './types.js';

const OVERFLOW_POLICIES: readonly string[] = ['reject', 'drop-oldest'];
const BACKOFF_KINDS: readonly string[] = ['fixed', 'exponential'];

function isIntIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
}

/** Returns what is wrong with `options` (first problem found), or null when they are valid. */
export function queueOptionsProblem(options: QueueOptions, queueName: string): string | null {
  if (typeof options !== 'object' || options === null) return 'options must be an object';
  const durations: (keyof QueueOptions)[] = ['deliveryDelayMs', 'messageTtlMs', 'dedupWindowMs'];
  for (const field of durations) {
    if (!isIntIn(options[field], 0, MAX_DURATION_MS))
      return `${field} must be an integer in 0..${MAX_DURATION_MS}`;
  }
  if (!isIntIn(options.visibilityTimeoutMs, 1, MAX_DURATION_MS)) {
    return `visibilityTimeoutMs must be an integer in 1..${MAX_DURATION_MS}`;
  }
  if (!isIntIn(options.maxDeliveries, 0, MAX_COUNT))
    return `maxDeliveries must be an integer in 0..${MAX_COUNT}`;
  if (!isIntIn(options.maxMessages, 0, MAX_COUNT)) return `maxMessages must be an integer in 0..${MAX_COUNT}`;
  if (!isIntIn(options.maxBytes, 0, MAX_BYTES_LIMIT))
    return `maxBytes must be an integer in 0..${MAX_BYTES_LIMIT}`;
  if (!isIntIn(options.priorityLevels, 1, MAX_PRIORITY_LEVELS)) {
    return `priorityLevels must be an integer in 1..${MAX_PRIORITY_LEVELS}`;
  }
  if (!OVERFLOW_POLICIES.includes(options.overflow))
    return `overflow must be one of ${OVERFLOW_POLICIES.join(', ')}`;
  const dlq = options.deadLetterQueue;
  if (dlq !== null && (typeof dlq !== 'string' || dlq.length === 0)) {
    return 'deadLetterQueue must be a queue name or null';
  }
  if (dlq === queueName) return 'a queue cannot be its own dead-letter queue';
  return retryProblem(options.retry);
}

function retryProblem(retry: RetryPolicy): string | null {
  if (typeof retry !== 'object' || retry === null) return 'retry must be an object';
  if (!BACKOFF_KINDS.includes(retry.backoff))
    return `retry.backoff must be one of ${BACKOFF_KINDS.join(', ')}`;
  if (!isIntIn(retry.delayMs, 0, MAX_DURATION_MS))
    return `retry.delayMs must be an integer in 0..${MAX_DURATION_MS}`;
  if (!isIntIn(retry.maxDelayMs, 0, MAX_DURATION_MS)) {
    return `retry.maxDelayMs must be an integer in 0..${MAX_DURATION_MS}`;
  }
  return null;
}

/** A fresh, complete option set with only the known fields (extra keys in commands are not kept). */
export function copyQueueOptions(o: QueueOptions): QueueOptions {
  return {
    visibilityTimeoutMs: o.visibilityTimeoutMs,
    maxDeliveries: o.maxDeliveries,
    deadLetterQueue: o.deadLetterQueue,
    retry: { backoff: o.retry.backoff, delayMs: o.retry.delayMs, maxDelayMs: o.retry.maxDelayMs },
    deliveryDelayMs: o.deliveryDelayMs,
    messageTtlMs: o.messageTtlMs,
    maxMessages: o.maxMessages,
    maxBytes: o.maxBytes,
    overflow: o.overflow,
    dedupWindowMs: o.dedupWindowMs,
    priorityLevels: o.priorityLevels,
  };
}

/** `base` with the patch's defined fields on top (a new object; `base` is not touched). */
export function patchQueueOptions(base: QueueOptions, patch: QueueOptionsPatch): QueueOptions {
  const merged = copyQueueOptions(base);
  const target = merged as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(patch)) {
    if (key === 'retry' || value === undefined || !(key in merged)) continue;
    target[key] = value;
  }
  const retry = patch.retry;
  if (retry) {
    if (retry.backoff !== undefined) merged.retry.backoff = retry.backoff;
    if (retry.delayMs !== undefined) merged.retry.delayMs = retry.delayMs;
    if (retry.maxDelayMs !== undefined) merged.retry.maxDelayMs = retry.maxDelayMs;
  }
  return merged;
}

export function sameQueueOptions(a: QueueOptions, b: QueueOptions): boolean {
  return (
    a.visibilityTimeoutMs === b.visibilityTimeoutMs &&
    a.maxDeliveries === b.maxDeliveries &&
    a.deadLetterQueue === b.deadLetterQueue &&
    a.retry.backoff === b.retry.backoff &&
    a.retry.delayMs === b.retry.delayMs &&
    a.retry.maxDelayMs === b.retry.maxDelayMs &&
    a.deliveryDelayMs === b.deliveryDelayMs &&
    a.messageTtlMs === b.messageTtlMs &&
    a.maxMessages === b.maxMessages &&
    a.maxBytes === b.maxBytes &&
    a.overflow === b.overflow &&
    a.dedupWindowMs === b.dedupWindowMs &&
    a.priorityLevels === b.priorityLevels
  );
}

/**
 * Wait before the next delivery after the `failures`-th failed delivery: `delayMs` for fixed
 * backoff; `delayMs * 2^(failures-1)` capped by `maxDelayMs` (0 = capped only by the global
 * duration limit) for exponential backoff.
 */
export function retryDelayMs(retry: RetryPolicy, failures: number): number {
  if (retry.backoff === 'fixed') return retry.delayMs;
  const capMs = retry.maxDelayMs > 0 ? retry.maxDelayMs : MAX_DURATION_MS;
  // 2^60 already exceeds every cap; stopping there keeps the product finite.
  const factor = 2 ** Math.min(Math.max(failures - 1, 0), 60);
  return Math.min(capMs, retry.delayMs * factor);
}
