/**
 * Every limit the wire protocol enforces, in one place, each with its unit and the reason for its
 * default. The decoder takes a `ProtocolLimits` value so a server may tighten them; the welcome
 * frame tells clients the values a server actually uses.
 */

import type { ServerLimitsInfo } from './frames.js';

export interface ProtocolLimits {
  /**
   * Largest WebSocket frame accepted, in bytes. 4 MiB holds a full publish batch of mid-sized
   * messages; bigger frames hurt more than they help (about 100 messages a frame beat 1,000 by 27%
   * in the data-path experiment) and cap the memory one hostile frame can pin.
   */
  maxFrameBytes: number;
  /**
   * Largest message body, in bytes. 1 MiB keeps a message well inside one frame and one Raft
   * entry; larger payloads belong in object storage with a reference in the message.
   */
  maxMessageBytes: number;
  /** Messages in one publish frame. Frame size usually binds first; this bounds per-frame work. */
  maxPublishBatch: number;
  /** Headers on one message. Headers are routing hints, not a second body. */
  maxHeaders: number;
  /** UTF-8 bytes of all header keys and values of one message together. */
  maxHeaderBytes: number;
  /** UTF-8 bytes of an idempotency key: room for a UUID, a hash or a composite business key. */
  maxIdempotencyKeyBytes: number;
  /** UTF-8 bytes of a message group name (e.g. a customer id or an aggregate id). */
  maxGroupBytes: number;
  /** Priority levels a queue may have; publish priority runs 0..levels-1. Few levels keep scans cheap. */
  maxPriorityLevels: number;
  /** Delay on publish or nack, in ms: 7 days. Longer waits are a scheduler's job, not a queue's. */
  maxDelayMs: number;
  /** Message time-to-live, in ms: 30 days. */
  maxTtlMs: number;
  /** Lease length (visibility timeout, extend), in ms: 12 h, like SQS; longer leases hide lost work. */
  maxVisibilityTimeoutMs: number;
  /** Deduplication window for idempotency keys, in ms: 1 day bounds the memory keys can pin. */
  maxDedupWindowMs: number;
  /** Delivery attempts before dead-lettering (0 = unlimited). */
  maxMaxDeliveries: number;
  /** Unacked messages one subscription may hold. Bounds per-connection memory on the server. */
  maxPrefetch: number;
  /** Long-poll wait of one receive, in ms: 20 s, like SQS; proxies often cut idle connections later. */
  maxReceiveWaitMs: number;
  /** Messages returned by one receive or one peek. */
  maxReceiveMessages: number;
  /** Items in one ack, nack or extend frame: a full prefetch window settles in one frame. */
  maxAckBatch: number;
  /** Messages moved by one redrive call; larger moves take several calls so one entry stays small. */
  maxRedriveMessages: number;
  /** UTF-8 bytes of a bearer token in hello. */
  maxTokenBytes: number;
  /** UTF-8 bytes of a client name in hello (shown in logs and the dashboard). */
  maxClientNameBytes: number;
  /** Nesting depth of msgpack containers in any frame; real frames nest at most 4 deep. */
  maxDepth: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const SECOND_MS = 1000;
const HOUR_MS = 3600 * SECOND_MS;
const DAY_MS = 24 * HOUR_MS;

export const DEFAULT_LIMITS: Readonly<ProtocolLimits> = Object.freeze({
  maxFrameBytes: 4 * MiB,
  maxMessageBytes: 1 * MiB,
  maxPublishBatch: 1000,
  maxHeaders: 64,
  maxHeaderBytes: 16 * KiB,
  maxIdempotencyKeyBytes: 256,
  maxGroupBytes: 256,
  maxPriorityLevels: 10,
  maxDelayMs: 7 * DAY_MS,
  maxTtlMs: 30 * DAY_MS,
  maxVisibilityTimeoutMs: 12 * HOUR_MS,
  maxDedupWindowMs: DAY_MS,
  maxMaxDeliveries: 1000,
  maxPrefetch: 10_000,
  maxReceiveWaitMs: 20 * SECOND_MS,
  maxReceiveMessages: 1000,
  maxAckBatch: 10_000,
  maxRedriveMessages: 10_000,
  maxTokenBytes: 4 * KiB,
  maxClientNameBytes: 256,
  maxDepth: 16,
});

/** Queue names: 1..200 characters of `[A-Za-z0-9._:-]`, safe in URLs, file names, logs and metrics labels. */
export const QUEUE_NAME_MAX_LENGTH = 200;
export const QUEUE_NAME_PATTERN = /^[A-Za-z0-9._:-]{1,200}$/;

export function isValidQueueName(name: unknown): name is string {
  return typeof name === 'string' && QUEUE_NAME_PATTERN.test(name);
}

/** The subset of limits a server announces in its welcome frame. */
export function welcomeLimits(limits: ProtocolLimits = DEFAULT_LIMITS): ServerLimitsInfo {
  return {
    maxFrameBytes: limits.maxFrameBytes,
    maxMessageBytes: limits.maxMessageBytes,
    maxPublishBatch: limits.maxPublishBatch,
    maxAckBatch: limits.maxAckBatch,
    maxPrefetch: limits.maxPrefetch,
    maxReceiveWaitMs: limits.maxReceiveWaitMs,
    maxReceiveMessages: limits.maxReceiveMessages,
  };
}
