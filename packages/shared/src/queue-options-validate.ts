/**
 * Validation of queue options: a patch as it arrives (from the wire or from SDK users) is checked
 * field by field, then merged over a base (the defaults on create, the current options on update)
 * and checked as a whole. Errors are INVALID_ARGUMENT naming the field (`options.retry.delayMs`).
 */

import { FlotillaError, invalidArgument } from './errors.js';
import type { DecodeResult } from './frames.js';
import { DEFAULT_LIMITS, isValidQueueName, type ProtocolLimits } from './limits.js';
import {
  type BackoffKind,
  DEFAULT_QUEUE_OPTIONS,
  IMMUTABLE_QUEUE_OPTIONS,
  type OverflowPolicy,
  type QueueOptions,
  type QueueOptionsPatch,
  type RetryPolicy,
} from './queue-options.js';

const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ['reject', 'drop-oldest'];
const BACKOFF_KINDS: readonly BackoffKind[] = ['fixed', 'exponential'];

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
  );
}

function checkInt(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw invalidArgument(field, `expected an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) throw invalidArgument(field, `${value} is outside ${min}..${max}`);
  return value;
}

function checkChoice<T extends string>(value: unknown, field: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !choices.includes(value as T)) {
    throw invalidArgument(field, `expected one of ${choices.join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

function describe(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return Array.isArray(value) ? 'array' : typeof value;
}

/** Checkers for each numeric option: [min, max] from the limits. */
function numericRanges(limits: ProtocolLimits): Record<string, [number, number]> {
  return {
    visibilityTimeoutMs: [1, limits.maxVisibilityTimeoutMs],
    maxDeliveries: [0, limits.maxMaxDeliveries],
    deliveryDelayMs: [0, limits.maxDelayMs],
    messageTtlMs: [0, limits.maxTtlMs],
    maxMessages: [0, Number.MAX_SAFE_INTEGER],
    maxBytes: [0, Number.MAX_SAFE_INTEGER],
    dedupWindowMs: [0, limits.maxDedupWindowMs],
    priorityLevels: [1, limits.maxPriorityLevels],
  };
}

function checkRetryPatch(value: unknown, field: string, limits: ProtocolLimits): Partial<RetryPolicy> {
  if (!isPlainObject(value)) throw invalidArgument(field, `expected a map, got ${describe(value)}`);
  const out: Partial<RetryPolicy> = {};
  for (const key of Object.keys(value)) {
    const item = value[key];
    if (item === undefined) continue;
    if (key === 'backoff') out.backoff = checkChoice(item, `${field}.backoff`, BACKOFF_KINDS);
    else if (key === 'delayMs') out.delayMs = checkInt(item, `${field}.delayMs`, 0, limits.maxDelayMs);
    else if (key === 'maxDelayMs')
      out.maxDelayMs = checkInt(item, `${field}.maxDelayMs`, 0, limits.maxDelayMs);
    else throw invalidArgument(`${field}.${key}`, 'unknown option');
  }
  return out;
}

function checkDeadLetterQueue(value: unknown, field: string): string | null {
  if (value === null) return null;
  if (!isValidQueueName(value)) throw invalidArgument(field, `not a valid queue name: ${describe(value)}`);
  return value;
}

/** Checks each field of a patch (types, ranges, unknown keys); throws INVALID_ARGUMENT. */
export function checkQueueOptionsPatch(
  input: unknown,
  field = 'options',
  limits: ProtocolLimits = DEFAULT_LIMITS,
): QueueOptionsPatch {
  if (!isPlainObject(input)) throw invalidArgument(field, `expected a map, got ${describe(input)}`);
  const ranges = numericRanges(limits);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(input)) {
    const value = input[key];
    if (value === undefined) continue;
    const range = ranges[key];
    if (range !== undefined) out[key] = checkInt(value, `${field}.${key}`, range[0], range[1]);
    else if (key === 'deadLetterQueue') out[key] = checkDeadLetterQueue(value, `${field}.${key}`);
    else if (key === 'overflow') out[key] = checkChoice(value, `${field}.${key}`, OVERFLOW_POLICIES);
    else if (key === 'retry') out[key] = checkRetryPatch(value, `${field}.${key}`, limits);
    else throw invalidArgument(`${field}.${key}`, 'unknown option');
  }
  return out as QueueOptionsPatch;
}

/** Rules between fields of complete options; throws INVALID_ARGUMENT. */
function checkWhole(queueName: string, options: QueueOptions, field: string): void {
  if (options.deadLetterQueue === queueName) {
    throw invalidArgument(`${field}.deadLetterQueue`, 'a queue cannot be its own dead-letter queue');
  }
  const { retry } = options;
  if (retry.backoff === 'exponential') {
    if (retry.delayMs < 1)
      throw invalidArgument(`${field}.retry.delayMs`, 'exponential backoff needs delayMs >= 1');
    if (retry.maxDelayMs < retry.delayMs) {
      throw invalidArgument(
        `${field}.retry.maxDelayMs`,
        `exponential backoff needs maxDelayMs (${retry.maxDelayMs}) >= delayMs (${retry.delayMs})`,
      );
    }
  }
}

/** Merges a checked patch over complete options (no validation). */
export function mergeQueueOptions(base: QueueOptions, patch: QueueOptionsPatch): QueueOptions {
  const { retry, ...rest } = patch;
  return { ...base, ...rest, retry: { ...base.retry, ...retry } };
}

/**
 * Checks `patch` field by field, merges it over `base` and checks the result as a whole. Use with
 * the defaults on create and with the queue's current options on update (`forUpdate` also refuses
 * options that cannot change).
 */
export function resolveQueueOptions(
  queueName: string,
  patch: unknown,
  base: QueueOptions = DEFAULT_QUEUE_OPTIONS,
  { forUpdate = false, limits = DEFAULT_LIMITS, field = 'options' } = {},
): DecodeResult<QueueOptions> {
  try {
    const checked = checkQueueOptionsPatch(patch, field, limits);
    if (forUpdate) checkMutable(checked, field);
    const merged = mergeQueueOptions(base, checked);
    checkWhole(queueName, merged, field);
    return { ok: true, value: merged };
  } catch (error) {
    if (error instanceof FlotillaError) return { ok: false, error };
    throw error;
  }
}

/** Throws INVALID_ARGUMENT if the patch names an option that is fixed at creation. */
export function checkMutable(patch: QueueOptionsPatch, field = 'options'): void {
  for (const key of IMMUTABLE_QUEUE_OPTIONS) {
    if (patch[key] !== undefined)
      throw invalidArgument(`${field}.${key}`, 'cannot be changed after creation');
  }
}
