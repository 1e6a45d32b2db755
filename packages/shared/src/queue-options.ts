/**
 * Queue options: what a queue is created with. Shared by the protocol (validated on the wire),
 * the state machine (applied) and the SDK (typed for users).
 */

export type OverflowPolicy = 'reject' | 'drop-oldest';
export type BackoffKind = 'fixed' | 'exponential';

/** How a nacked message waits before it is delivered again (unless the nack names its own delay). */
export interface RetryPolicy {
  backoff: BackoffKind;
  /** Delay after the first failed delivery. */
  delayMs: number;
  /** Cap for exponential backoff. */
  maxDelayMs: number;
}

export interface QueueOptions {
  /** How long a delivered message stays leased to its consumer before it is handed out again. */
  visibilityTimeoutMs: number;
  /** Deliveries after which a message is dead-lettered (or dropped without a DLQ). 0 = unlimited. */
  maxDeliveries: number;
  /** Queue that receives poison messages, expired messages and drop-oldest overflow; must exist. */
  deadLetterQueue: string | null;
  retry: RetryPolicy;
  /** Default delay applied to every publish that does not give one. */
  deliveryDelayMs: number;
  /** Default message time-to-live; 0 = messages never expire. */
  messageTtlMs: number;
  /** Limits; 0 = unlimited. Counted over ready + delayed + in-flight messages. */
  maxMessages: number;
  maxBytes: number;
  overflow: OverflowPolicy;
  /** How long an idempotency key is remembered. */
  dedupWindowMs: number;
  /** Number of priority levels (1 = no priorities). Publish priority runs 0..levels-1, higher first. */
  priorityLevels: number;
}

export const DEFAULT_QUEUE_OPTIONS: QueueOptions = {
  visibilityTimeoutMs: 30_000,
  maxDeliveries: 0,
  deadLetterQueue: null,
  retry: { backoff: 'fixed', delayMs: 0, maxDelayMs: 0 },
  deliveryDelayMs: 0,
  messageTtlMs: 0,
  maxMessages: 0,
  maxBytes: 0,
  overflow: 'reject',
  dedupWindowMs: 5 * 60_000,
  priorityLevels: 1,
};

/** What createQueue/updateQueue carry: any subset of the options, `retry` itself partial. */
export type QueueOptionsPatch = Partial<Omit<QueueOptions, 'retry'>> & { retry?: Partial<RetryPolicy> };

/** Options fixed at creation: changing the number of priority levels would reorder stored messages. */
export const IMMUTABLE_QUEUE_OPTIONS: readonly (keyof QueueOptions)[] = ['priorityLevels'];
