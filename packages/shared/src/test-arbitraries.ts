/**
 * fast-check generators for valid protocol values, shared by the codec tests. Test-only: not
 * exported from index.ts (fast-check is a dev dependency).
 */

import fc from 'fast-check';
import { ERROR_CODES } from './errors.js';
import type {
  AckItem,
  BodyFormat,
  DeliveredMessage,
  ItemOutcomes,
  OpName,
  PublishMessage,
  QueueStats,
  RequestParams,
} from './frames.js';
import { DEFAULT_LIMITS } from './limits.js';
import type { QueueOptionsPatch } from './queue-options.js';
import { resolveQueueOptions } from './queue-options-validate.js';

const L = DEFAULT_LIMITS;
const NAME_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-'.split('');
const MAX_SEQ = Number.MAX_SAFE_INTEGER;

export const queueName = fc.string({ unit: fc.constantFrom(...NAME_CHARS), minLength: 1, maxLength: 40 });
export const requestId = fc.integer({ min: 1, max: 0xffff_ffff });
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const nonEmpty = (maxLength: number) => fc.string({ minLength: 1, maxLength });
const bodyFormat = fc.constantFrom<BodyFormat>(0, 1, 2, 3);
export const headers = fc.dictionary(nonEmpty(12), fc.string({ maxLength: 24 }), { maxKeys: 4 });

export const publishMessage: fc.Arbitrary<PublishMessage> = fc.record({
  body: fc.uint8Array({ maxLength: 48 }),
  format: optional(bodyFormat),
  headers: optional(headers),
  idempotencyKey: optional(nonEmpty(40)),
  delayMs: optional(fc.integer({ min: 0, max: L.maxDelayMs })),
  ttlMs: optional(fc.integer({ min: 1, max: L.maxTtlMs })),
  group: optional(nonEmpty(20)),
  priority: optional(fc.integer({ min: 0, max: L.maxPriorityLevels - 1 })),
});

export const ackItem: fc.Arbitrary<AckItem> = fc.record({
  queue: queueName,
  seq: fc.integer({ min: 1, max: MAX_SEQ }),
  deliveryId: fc.integer({ min: 1, max: MAX_SEQ }),
});
const ackItems = fc.array(ackItem, { minLength: 1, maxLength: 8 });

const retryPatch = fc.record(
  {
    backoff: fc.constantFrom('fixed' as const, 'exponential' as const),
    delayMs: fc.integer({ min: 0, max: L.maxDelayMs }),
    maxDelayMs: fc.integer({ min: 0, max: L.maxDelayMs }),
  },
  { requiredKeys: [] },
);

export const optionsPatch: fc.Arbitrary<QueueOptionsPatch> = fc.record(
  {
    visibilityTimeoutMs: fc.integer({ min: 1, max: L.maxVisibilityTimeoutMs }),
    maxDeliveries: fc.integer({ min: 0, max: L.maxMaxDeliveries }),
    deadLetterQueue: fc.option(queueName, { nil: null }),
    retry: retryPatch,
    deliveryDelayMs: fc.integer({ min: 0, max: L.maxDelayMs }),
    messageTtlMs: fc.integer({ min: 0, max: L.maxTtlMs }),
    maxMessages: fc.maxSafeNat(),
    maxBytes: fc.maxSafeNat(),
    overflow: fc.constantFrom('reject' as const, 'drop-oldest' as const),
    dedupWindowMs: fc.integer({ min: 0, max: L.maxDedupWindowMs }),
    priorityLevels: fc.integer({ min: 1, max: L.maxPriorityLevels }),
  },
  { requiredKeys: [] },
);

/** Name and patch that are valid together (own-DLQ and backoff rules hold). */
const createQueueParams = fc
  .record({ name: queueName, options: optionsPatch })
  .filter(({ name, options }) => resolveQueueOptions(name, options).ok);
const updateQueueParams = createQueueParams.map(({ name, options }) => {
  const { priorityLevels: _fixed, ...mutable } = options;
  return { name, options: mutable };
});

/** Valid params for every op. */
export const paramsByOp: { [K in OpName]: fc.Arbitrary<RequestParams[K]> } = {
  hello: fc.record({
    version: fc.constant(1),
    token: optional(fc.string({ maxLength: 64 })),
    name: optional(fc.string({ maxLength: 32 })),
  }),
  createQueue: createQueueParams,
  deleteQueue: fc.record({ name: queueName }),
  purgeQueue: fc.record({ name: queueName }),
  listQueues: fc.constant({}),
  queueStats: fc.record({ name: queueName }),
  updateQueue: updateQueueParams,
  publish: fc.record({
    queue: queueName,
    messages: fc.array(publishMessage, { minLength: 1, maxLength: 6 }),
  }),
  subscribe: fc.record({ queue: queueName, prefetch: fc.integer({ min: 1, max: L.maxPrefetch }) }),
  credit: fc.record({
    subId: fc.integer({ min: 1, max: 0xffff_ffff }),
    prefetch: fc.integer({ min: 0, max: L.maxPrefetch }),
  }),
  unsubscribe: fc.record({ subId: fc.integer({ min: 1, max: 0xffff_ffff }) }),
  receive: fc.record({
    queue: queueName,
    max: fc.integer({ min: 1, max: L.maxReceiveMessages }),
    waitMs: fc.integer({ min: 0, max: L.maxReceiveWaitMs }),
    visibilityTimeoutMs: optional(fc.integer({ min: 1, max: L.maxVisibilityTimeoutMs })),
  }),
  ack: fc.record({ items: ackItems }),
  nack: fc.oneof(
    fc.record({ items: ackItems, delayMs: optional(fc.integer({ min: 0, max: L.maxDelayMs })) }),
    fc.record({ items: ackItems, deadLetter: fc.constant(true) }),
  ),
  extend: fc.record({ items: ackItems, ms: fc.integer({ min: 1, max: L.maxVisibilityTimeoutMs }) }),
  peek: fc.record({
    queue: queueName,
    max: fc.integer({ min: 1, max: L.maxReceiveMessages }),
    fromSeq: optional(fc.integer({ min: 0, max: MAX_SEQ })),
  }),
  redrive: fc.record({
    dlq: queueName,
    target: optional(queueName),
    max: optional(fc.integer({ min: 1, max: L.maxRedriveMessages })),
  }),
  cluster: fc.constant({}),
};

/** Any valid request: [id, op, params]. */
export const anyRequest = fc
  .constantFrom(...(Object.keys(paramsByOp) as OpName[]))
  .chain((op) => fc.tuple(requestId, fc.constant(op), paramsByOp[op] as fc.Arbitrary<RequestParams[OpName]>));

const ms = fc.integer({ min: 0, max: 4_102_444_800_000 });
const deadLetterInfo = fc.record({
  queue: queueName,
  seq: fc.integer({ min: 1, max: MAX_SEQ }),
  deliveryCount: fc.integer({ min: 0, max: 1000 }),
  reason: fc.constantFrom('max-deliveries', 'expired', 'overflow', 'rejected'),
  timeMs: ms,
});
export const deliveredMessage = (queue: string): fc.Arbitrary<DeliveredMessage> =>
  fc.record({
    queue: fc.constant(queue),
    seq: fc.integer({ min: 1, max: MAX_SEQ }),
    deliveryId: fc.integer({ min: 0, max: MAX_SEQ }),
    body: fc.uint8Array({ maxLength: 48 }),
    format: bodyFormat,
    headers: fc.option(headers, { nil: null }),
    group: fc.option(nonEmpty(20), { nil: null }),
    priority: fc.integer({ min: 0, max: 9 }),
    deliveryCount: fc.integer({ min: 0, max: 1000 }),
    publishedAtMs: ms,
    leaseDeadlineMs: ms,
    deadLetter: fc.option(deadLetterInfo, { nil: null }),
  });

export const deliveredList = queueName.chain((queue) => fc.array(deliveredMessage(queue), { maxLength: 5 }));

export const itemOutcomes: fc.Arbitrary<ItemOutcomes> = fc.record({
  failed: fc.array(fc.record({ index: fc.nat(10_000), code: fc.constantFrom(...ERROR_CODES) }), {
    maxLength: 4,
  }),
});

export const queueStats: fc.Arbitrary<QueueStats> = fc.record({
  name: queueName,
  depth: fc.nat(),
  ready: fc.nat(),
  inFlight: fc.nat(),
  delayed: fc.nat(),
  totalBytes: fc.maxSafeNat(),
  publishedCount: fc.maxSafeNat(),
  deliveredCount: fc.maxSafeNat(),
  ackedCount: fc.maxSafeNat(),
  deadLetteredCount: fc.maxSafeNat(),
  oldestMessageAgeMs: fc.option(fc.nat(), { nil: null }),
  options: createQueueParams.map(({ name, options }) => {
    const resolved = resolveQueueOptions(name, options);
    if (!resolved.ok) throw resolved.error;
    return resolved.value;
  }),
});
