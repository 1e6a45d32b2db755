/**
 * Range and type checks for command fields. The edge validates requests before proposing them,
 * but an entry may come from a node running other code, so the state machine checks again and
 * answers INVALID_ARGUMENT instead of storing something it cannot handle. Each check returns a
 * description of the first problem, or null.
 */
import { MAX_COUNT, MAX_DURATION_MS, MAX_FORMAT_TAG, MAX_QUEUE_NAME_LENGTH } from './limits.js';
import type { DeliveryRef, PublishMessage } from './types.js';

export function isIntIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
}

export function queueNameProblem(name: unknown, field = 'queue'): string | null {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_QUEUE_NAME_LENGTH) {
    return `${field} must be a queue name of 1..${MAX_QUEUE_NAME_LENGTH} characters`;
  }
  return null;
}

/** An optional duration: absent, null, or an integer number of ms within the global limit. */
export function optionalDurationProblem(value: unknown, field: string, minMs = 0): string | null {
  if (value === undefined || value === null || isIntIn(value, minMs, MAX_DURATION_MS)) return null;
  return `${field} must be an integer in ${minMs}..${MAX_DURATION_MS}`;
}

function optionalStringProblem(value: unknown, field: string): string | null {
  if (value === undefined || value === null || typeof value === 'string') return null;
  return `${field} must be a string`;
}

function headersProblem(headers: unknown): string | null {
  if (headers === undefined || headers === null) return null;
  if (typeof headers !== 'object' || Array.isArray(headers) || headers instanceof Uint8Array) {
    return 'headers must be a map of strings';
  }
  for (const value of Object.values(headers)) {
    if (typeof value !== 'string') return 'header values must be strings';
  }
  return null;
}

export function publishMessageProblem(m: PublishMessage): string | null {
  if (typeof m !== 'object' || m === null) return 'message must be an object';
  if (!(m.body instanceof Uint8Array)) return 'body must be bytes';
  return (
    headersProblem(m.headers) ??
    optionalStringProblem(m.idempotencyKey, 'idempotencyKey') ??
    optionalStringProblem(m.group, 'group') ??
    optionalDurationProblem(m.delayMs, 'delayMs') ??
    optionalDurationProblem(m.ttlMs, 'ttlMs') ??
    (m.priority === undefined || m.priority === null || isIntIn(m.priority, 0, MAX_COUNT)
      ? null
      : 'priority must be a non-negative integer') ??
    (m.format === undefined || m.format === null || isIntIn(m.format, 0, MAX_FORMAT_TAG)
      ? null
      : `format must be an integer in 0..${MAX_FORMAT_TAG}`)
  );
}

export function deliveryRefProblem(ref: DeliveryRef): string | null {
  if (typeof ref !== 'object' || ref === null) return 'item must be an object';
  return (
    queueNameProblem(ref.queue) ??
    (isIntIn(ref.seq, 1, Number.MAX_SAFE_INTEGER) ? null : 'seq must be a positive integer') ??
    (isIntIn(ref.deliveryId, 1, Number.MAX_SAFE_INTEGER) ? null : 'deliveryId must be a positive integer')
  );
}

export function stringListProblem(list: unknown, field: string): string | null {
  if (!Array.isArray(list)) return `${field} must be a list`;
  for (const item of list)
    if (typeof item !== 'string' || item.length === 0) return `${field} must hold non-empty strings`;
  return null;
}
