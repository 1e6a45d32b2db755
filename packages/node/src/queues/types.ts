/**
 * The vocabulary of the replicated queue state machine: the commands carried in log entries, the
 * replies and effects that applying them produces, and the read-side shapes (stats, peek).
 * Everything here is plain data so that it can be encoded, compared in tests and handed between
 * actors.
 */
import type { QueueOptions, RetryPolicy } from '@flotilla/shared';

/** Error codes the state machine answers with; a subset of the wire protocol's codes. */
export type QueueErrorCode =
  | 'QUEUE_NOT_FOUND'
  | 'QUEUE_EXISTS'
  | 'QUEUE_FULL'
  | 'INVALID_ARGUMENT'
  | 'LEASE_EXPIRED';

export interface QueueError {
  ok: false;
  code: QueueErrorCode;
  message: string;
}

export type Headers = Readonly<Record<string, string>>;

/** Per-apply context handed down by the driver. */
export interface ApplyMeta {
  /** Leader's wall clock when it built the entry (ms since epoch). Time never runs backwards: see `timeMs`. */
  timeMs: number;
}

// ---------------------------------------------------------------------------------------------
// Commands

/** One message of a publish command; absent fields take the queue's defaults. */
export interface PublishMessage {
  body: Uint8Array;
  headers?: Headers | null;
  /** Dedup key: a second publish with the same key inside the queue's window stores nothing. */
  idempotencyKey?: string | null;
  /** Overrides the queue's `deliveryDelayMs`; 0 = ready at once. */
  delayMs?: number | null;
  /** Overrides the queue's `messageTtlMs`; 0 = never expires. */
  ttlMs?: number | null;
  group?: string | null;
  /** 0..priorityLevels-1, higher first; above the queue's top level it is clamped to the top. */
  priority?: number | null;
  /** Body format tag (0..MAX_BODY_FORMAT_TAG), handed back to consumers unchanged; default 0 (bytes). */
  format?: number | null;
}

/** Names one delivery of one message: what ack, nack and extend act on. */
export interface DeliveryRef {
  queue: string;
  seq: number;
  deliveryId: number;
}

/** Partial update of a queue's options; `retry` may itself be partial. */
export type QueueOptionsPatch = Partial<Omit<QueueOptions, 'retry'>> & { retry?: Partial<RetryPolicy> };

export type Command =
  | { op: 'createQueue'; queue: string; options: QueueOptions }
  | { op: 'updateQueue'; queue: string; changes: QueueOptionsPatch }
  | { op: 'deleteQueue'; queue: string }
  | { op: 'purgeQueue'; queue: string }
  | { op: 'publish'; queue: string; messages: PublishMessage[] }
  | { op: 'deliver'; queue: string; consumerId: string; max: number; leaseMs?: number | null }
  | { op: 'ack'; items: DeliveryRef[] }
  /**
   * Gives deliveries back: retried after `delayMs` or the queue's backoff, dead-lettered at
   * maxDeliveries. With `deadLetter` the consumer rejects them: each goes to the queue's DLQ at once
   * (reason `rejected`), or is dropped and counted without one; `delayMs` must then be absent.
   */
  | { op: 'nack'; items: DeliveryRef[]; delayMs?: number | null; deadLetter?: boolean | null }
  | { op: 'extend'; items: DeliveryRef[]; ms: number }
  /**
   * Ends every lease of these consumers; the messages are ready again at once. `failed`: the
   * consumers went away (a session closed), so each lease counts as a failed delivery toward
   * maxDeliveries, like an expiry; without it (leader change, shutdown) nothing is counted.
   */
  | { op: 'release'; consumerIds: string[]; failed?: boolean | null }
  | { op: 'releaseAllExcept'; ownerPrefix: string }
  | { op: 'redrive'; dlq: string; target?: string | null; max?: number | null }
  | { op: 'tick' }
  /** What a command that could not be decoded becomes: answered with INVALID_ARGUMENT, changes nothing. */
  | { op: 'invalid'; reason: string };

export type CommandOp = Command['op'];

// ---------------------------------------------------------------------------------------------
// Replies

export type PublishOutcome =
  | { ok: true; seq: number; duplicate: boolean }
  | { ok: false; code: 'QUEUE_FULL'; message: string };

/** Where a message came from when it was dead-lettered into the queue it now sits in. */
export interface DeadLetterInfo {
  queue: string;
  seq: number;
  deliveryCount: number;
  reason: DeadLetterReason;
  timeMs: number;
}

/** `rejected`: a consumer nacked it with `deadLetter`. */
export type DeadLetterReason = 'max-deliveries' | 'expired' | 'overflow' | 'rejected';

export interface DeliveredMessage {
  seq: number;
  deliveryId: number;
  body: Uint8Array;
  headers: Headers | null;
  group: string | null;
  priority: number;
  /** Body format tag given at publish (0 = bytes). */
  format: number;
  /** Deliveries so far, this one included. */
  deliveryCount: number;
  publishedAtMs: number;
  leaseDeadlineMs: number;
  deadLetter: DeadLetterInfo | null;
}

export type ItemOutcome = { ok: true } | { ok: false; code: QueueErrorCode; message: string };
export type ExtendOutcome =
  | { ok: true; leaseDeadlineMs: number }
  | { ok: false; code: QueueErrorCode; message: string };

export interface ReplyValues {
  createQueue: { created: boolean };
  updateQueue: { options: QueueOptions };
  deleteQueue: { deletedMessages: number };
  purgeQueue: { purged: number };
  publish: { results: PublishOutcome[] };
  /** `more`: deliverable messages are left after this delivery. */
  deliver: { messages: DeliveredMessage[]; more: boolean };
  ack: { results: ItemOutcome[] };
  nack: { results: ItemOutcome[] };
  extend: { results: ExtendOutcome[] };
  release: { released: number };
  releaseAllExcept: { released: number };
  redrive: { moved: number; skipped: number };
  tick: Record<never, never>;
  invalid: never;
}

export type OkReply<Op extends CommandOp = CommandOp> = { ok: true; op: Op } & ReplyValues[Op];
export type Reply = { [Op in CommandOp]: OkReply<Op> }[CommandOp] | QueueError;

// ---------------------------------------------------------------------------------------------
// Effects: what the gateway must learn about, as data

/** Why leases ended without the consumer acking or nacking them. */
export type LeaseEndReason = 'expired' | 'released';

export type Effect =
  | { type: 'queueCreated'; queue: string }
  | { type: 'queueDeleted'; queue: string }
  /** The queue gained deliverable messages during this apply and still has some: wake its consumers. */
  | { type: 'queueReady'; queue: string }
  /** Leases granted by a deliver command (same array as the reply's `messages`). */
  | { type: 'delivered'; queue: string; consumerId: string; messages: readonly DeliveredMessage[] }
  /** Leases a consumer lost (expired, or released by its gateway); `seqs` ascending. */
  | { type: 'leasesEnded'; queue: string; consumerId: string; reason: LeaseEndReason; seqs: number[] };

export interface ApplyResult {
  reply: Reply;
  effects: Effect[];
}

export interface EntryResult {
  /** One reply per command, same order. */
  replies: Reply[];
  effects: Effect[];
}

// ---------------------------------------------------------------------------------------------
// Reads

/** Message exits and arrivals. Exits are exclusive: each message leaves by exactly one of them. */
export interface QueueCounters {
  /** Messages stored: publishes, dead-letter arrivals and redrive arrivals (not duplicates). */
  published: number;
  /** Publishes answered with an earlier message's seq (idempotency key seen in the window). */
  duplicates: number;
  /** Messages refused with QUEUE_FULL. */
  rejected: number;
  /** Deliveries, redeliveries included. */
  delivered: number;
  acked: number;
  nacked: number;
  /** Lease deadlines that passed. */
  leasesExpired: number;
  /** Exits into a dead-letter queue (for max deliveries, expiry, overflow or a consumer's rejection). */
  deadLettered: number;
  /** Exits by TTL with no dead-letter queue set. */
  expired: number;
  /**
   * Exits with nowhere to go: overflow, max deliveries or a rejection without a DLQ, a deleted
   * DLQ, a full DLQ.
   */
  dropped: number;
  /** Exits by purgeQueue. */
  purged: number;
  /** Exits by redrive to another queue. */
  redriven: number;
}

export interface QueueStats {
  queue: string;
  /** Messages waiting for a consumer (depth), including those behind a busy group. */
  ready: number;
  inFlight: number;
  /** Waiting for a publish delay or a retry backoff. */
  delayed: number;
  /** Body bytes plus header key/value lengths of every held message (what `maxBytes` limits). */
  bytes: number;
  /** Age of the oldest ready message by the state's clock; 0 when none is ready. */
  oldestAgeMs: number;
  /** Groups with ready or busy messages. */
  groups: number;
  /** Consumers holding at least one lease. */
  consumers: number;
  counters: QueueCounters;
}

export interface PeekedMessage {
  seq: number;
  state: 'ready' | 'delayed' | 'retrying' | 'in-flight';
  body: Uint8Array;
  headers: Headers | null;
  group: string | null;
  priority: number;
  /** Body format tag given at publish (0 = bytes). */
  format: number;
  deliveryCount: number;
  publishedAtMs: number;
  /** When a delayed message becomes ready, or when an in-flight lease ends; null when ready. */
  dueMs: number | null;
  /** 0 when the message never expires. */
  expiresAtMs: number;
  consumerId: string | null;
  deadLetter: DeadLetterInfo | null;
}
