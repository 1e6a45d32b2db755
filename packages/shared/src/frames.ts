/**
 * Frame and op types of the client protocol: what each op takes and returns, what the server
 * pushes, and the numeric tags used on the wire. The wire layout itself is in codec-request.ts /
 * codec-server.ts and docs/protocol.md; these types are what the broker's gateway and the SDK
 * program against.
 */

import type { ErrorCode, FlotillaError } from './errors.js';
import type { QueueOptions, QueueOptionsPatch } from './queue-options.js';

/** The protocol version this package speaks; hello carries it, the welcome confirms it. */
export const PROTOCOL_VERSION = 1;
/** The oldest protocol version this package can still serve. */
export const MIN_PROTOCOL_VERSION = 1;

/** First element of every frame. */
export const FrameType = {
  /** client → server: `[0, id, op, ...args]` */
  Request: 0,
  /** server → client: `[1, id, op, result]` */
  Result: 1,
  /** server → client: `[2, id, code, message, details|nil]` */
  Error: 2,
  /** server → client push: `[3, subId, queue, [message...]]` */
  Deliver: 3,
  /** server → client push: `[4, reason, leaderId|nil, leaderUrl|nil]` */
  GoingAway: 4,
  /** server → client push: `[5, subId, code, message]` */
  SubscriptionEnded: 5,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Op numbers (third element of a request frame). Stable: never renumber, only append. */
export const OP = {
  hello: 1,
  createQueue: 2,
  deleteQueue: 3,
  purgeQueue: 4,
  listQueues: 5,
  queueStats: 6,
  updateQueue: 7,
  publish: 8,
  subscribe: 9,
  credit: 10,
  unsubscribe: 11,
  receive: 12,
  ack: 13,
  nack: 14,
  extend: 15,
  peek: 16,
  redrive: 17,
  cluster: 18,
} as const;
export type OpName = keyof typeof OP;
export type OpCode = (typeof OP)[OpName];

const OP_NAMES: readonly (OpName | undefined)[] = (() => {
  const names: (OpName | undefined)[] = [];
  for (const [name, code] of Object.entries(OP)) names[code] = name as OpName;
  return names;
})();

/** The op name for a wire op number, or undefined if the number is not an op. */
export function opName(code: number): OpName | undefined {
  return Number.isInteger(code) && code >= 0 ? OP_NAMES[code] : undefined;
}

/** How a body's bytes were produced, so the receiver can turn them back into a value. */
export const BodyFormat = {
  /** Opaque bytes, handed to the consumer as a Uint8Array. */
  Bytes: 0,
  /** A UTF-8 string. */
  Utf8: 1,
  /** A msgpack-encoded value. */
  Msgpack: 2,
  /** A UTF-8 JSON document. */
  Json: 3,
} as const;
export type BodyFormat = (typeof BodyFormat)[keyof typeof BodyFormat];
export const MAX_BODY_FORMAT = 3;

/** One message in a publish batch. Decoded messages always carry every field (undefined when absent). */
export interface PublishMessage {
  /** The payload; on the server a view of the received frame. */
  body: Uint8Array;
  /** How the body was encoded (defaults to Bytes). */
  format?: BodyFormat;
  headers?: Record<string, string>;
  /** Publishes with the same key inside the queue's dedup window are stored once. */
  idempotencyKey?: string;
  /** Hide the message for this long after it is stored (default: the queue's deliveryDelayMs). */
  delayMs?: number;
  /** Drop (dead-letter) the message if not acked this long after publish (default: the queue's messageTtlMs). */
  ttlMs?: number;
  /** Message group: at most one message of a group is in flight at a time. */
  group?: string;
  /** 0..priorityLevels-1, higher first (default 0). */
  priority?: number;
}

/**
 * Why a message was moved to a dead-letter queue: it failed `maxDeliveries` times, its TTL ended,
 * it was evicted by `drop-oldest`, or a consumer rejected it (`nack` with `deadLetter`). Newer
 * servers may add reasons: treat one you do not know as a plain string.
 */
export type DeadLetterReason = 'max-deliveries' | 'expired' | 'overflow' | 'rejected';

/** Where a dead-lettered message came from, carried by the copy stored in the dead-letter queue. */
export interface DeadLetterInfo {
  /** The queue it was dead-lettered from. */
  queue: string;
  /** Its sequence number in that queue. */
  seq: number;
  /**
   * How many times it had been delivered in that queue. The copy in the dead-letter queue counts
   * its own deliveries from 0 again (`DeliveredMessage.deliveryCount`).
   */
  deliveryCount: number;
  reason: DeadLetterReason | (string & {});
  /** When it was dead-lettered, ms since the Unix epoch by the leader's clock. */
  timeMs: number;
}

/** A message handed to a consumer (push or pull) or shown by peek. */
export interface DeliveredMessage {
  queue: string;
  /** Sequence number assigned by the queue at publish; unique within the queue, increasing. */
  seq: number;
  /** Identifies this lease: ack/nack/extend must quote it. 0 for peek (no lease). */
  deliveryId: number;
  body: Uint8Array;
  format: BodyFormat;
  headers: Record<string, string> | null;
  group: string | null;
  priority: number;
  /** Deliveries so far including this one (0 for a peeked message never delivered). */
  deliveryCount: number;
  /** Leader's clock when the publish was stored, ms since the Unix epoch. */
  publishedAtMs: number;
  /** Leader's clock when this lease ends, ms since the Unix epoch; 0 if not leased. */
  leaseDeadlineMs: number;
  /**
   * Set when the message arrived in this queue by dead-lettering: where it came from and why.
   * Decoded messages always carry it (null when not dead-lettered); encoders treat absent as null.
   */
  deadLetter?: DeadLetterInfo | null;
}

/** One settlement target: a leased delivery of a message. */
export interface AckItem {
  queue: string;
  seq: number;
  deliveryId: number;
}

/** Per-item outcome of ack/nack/extend: only the failed items are listed, by index in the request. */
export interface ItemOutcomes {
  failed: Array<{ index: number; code: ErrorCode }>;
}

export interface ServerLimitsInfo {
  maxFrameBytes: number;
  maxMessageBytes: number;
  maxPublishBatch: number;
  maxAckBatch: number;
  maxPrefetch: number;
  maxReceiveWaitMs: number;
  maxReceiveMessages: number;
}

/** The server's answer to hello. */
export interface Welcome {
  protocolVersion: number;
  /** This node's id: the SDK maps its configured URLs to node ids with it. */
  nodeId: string;
  leaderId: string | null;
  /** The leader's advertised client URL; a fallback only (the SDK prefers its own URL for leaderId). */
  leaderUrl: string | null;
  serverVersion: string;
  limits: ServerLimitsInfo;
}

export interface QueueStats {
  name: string;
  /** Messages stored: ready + delayed + in flight. */
  depth: number;
  ready: number;
  inFlight: number;
  delayed: number;
  /** Body bytes of all stored messages. */
  totalBytes: number;
  publishedCount: number;
  deliveredCount: number;
  ackedCount: number;
  deadLetteredCount: number;
  /**
   * Age in ms of the oldest message waiting for a consumer (ready), by the leader's clock; null
   * when none is ready. Delayed and in-flight messages do not count: this is how long the
   * backlog has waited.
   */
  oldestMessageAgeMs: number | null;
  options: QueueOptions;
  /**
   * Messages per second published into the queue over the last 10 s, as sampled by the node that
   * answered (from `publishedCount`, once a second; not replicated). Present in the HTTP API's
   * answers (`/api/queues`) and in `listQueues`/`queueStats` replies; absent where a server does
   * not sample rates.
   */
  publishRate?: number;
  /** Messages per second acknowledged over the last 10 s; sampled like `publishRate`. */
  ackRate?: number;
}

export type NodeRole = 'leader' | 'follower' | 'candidate' | 'learner' | 'unknown';

export interface ClusterNodeInfo {
  id: string;
  /** The node's advertised client URL. */
  url: string | null;
  role: NodeRole;
  /** Whether the answering node currently hears from it. */
  reachable: boolean;
  /** Highest log index known replicated on it (leader's view), or null if unknown. */
  matchIndex: number | null;
}

/** Cluster view for the dashboard and CLI. Free-form beyond these fields; servers may add more. */
export interface ClusterInfo {
  nodeId: string;
  leaderId: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  nodes: ClusterNodeInfo[];
  [extra: string]: unknown;
}

export interface PublishResult {
  /** Sequence number of each message, in request order; for a duplicate, the original's seq. */
  seqs: number[];
  /** Indexes (into seqs) of messages that were duplicates of an earlier idempotency key; usually empty. */
  duplicates: number[];
}

/** Parameters of each op, by op name. Optional members may be omitted (nil on the wire). */
export interface RequestParams {
  hello: { version: number; token?: string | null; name?: string | null };
  createQueue: { name: string; options: QueueOptionsPatch };
  deleteQueue: { name: string };
  purgeQueue: { name: string };
  listQueues: Record<string, never>;
  queueStats: { name: string };
  updateQueue: { name: string; options: QueueOptionsPatch };
  publish: { queue: string; messages: PublishMessage[] };
  subscribe: { queue: string; prefetch: number };
  credit: { subId: number; prefetch: number };
  unsubscribe: { subId: number };
  receive: { queue: string; max: number; waitMs: number; visibilityTimeoutMs?: number | null };
  ack: { items: AckItem[] };
  /** `deadLetter`: reject the messages: each goes to its queue's dead-letter queue at once (no `delayMs` with it). */
  nack: { items: AckItem[]; delayMs?: number | null; deadLetter?: boolean | null };
  extend: { items: AckItem[]; ms: number };
  peek: { queue: string; max: number; fromSeq?: number | null };
  redrive: { dlq: string; target?: string | null; max?: number | null };
  cluster: Record<string, never>;
}

/** Result of each op, by op name. */
export interface ResultMap {
  hello: Welcome;
  createQueue: QueueOptions;
  deleteQueue: null;
  /** Messages removed. */
  purgeQueue: number;
  listQueues: QueueStats[];
  queueStats: QueueStats;
  /** The queue's options after the update. */
  updateQueue: QueueOptions;
  publish: PublishResult;
  /** The subscription id, unique on this connection. */
  subscribe: number;
  credit: null;
  unsubscribe: null;
  receive: DeliveredMessage[];
  ack: ItemOutcomes;
  nack: ItemOutcomes;
  extend: ItemOutcomes;
  peek: DeliveredMessage[];
  /** Messages moved. */
  redrive: number;
  cluster: ClusterInfo;
}

/** A decoded request: a discriminated union on `op`. */
export type Request = { [K in OpName]: { id: number; op: K; params: RequestParams[K] } }[OpName];
export type RequestOf<K extends OpName> = Extract<Request, { op: K }>;

/** A successful reply. */
export type ResultReply = {
  [K in OpName]: { kind: 'result'; id: number; op: K; result: ResultMap[K] };
}[OpName];
/** A failed reply; `id` is 0 when the request id could not be read. */
export interface ErrorReply {
  kind: 'error';
  id: number;
  error: FlotillaError;
}
export type Reply = ResultReply | ErrorReply;

export interface DeliverPush {
  kind: 'deliver';
  subId: number;
  queue: string;
  messages: DeliveredMessage[];
}

/** The node is shutting down or losing leadership; reconnect (to the leader, if named). */
export interface GoingAwayPush {
  kind: 'goingAway';
  reason: string;
  leaderId: string | null;
  leaderUrl: string | null;
}

/** The server ended a subscription (queue deleted, leadership lost...): resubscribe if it makes sense. */
export interface SubscriptionEndedPush {
  kind: 'subscriptionEnded';
  subId: number;
  code: ErrorCode;
  message: string;
}

export type Push = DeliverPush | GoingAwayPush | SubscriptionEndedPush;
/** Anything the server sends. */
export type ServerFrame = Reply | Push;

/** Outcome of a decode: a value, or a typed error (never a throw). */
export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: FlotillaError };

/** Outcome of decoding a request: on failure, the request id when it could be read (else 0) so the server can answer. */
export type RequestDecodeResult =
  | { ok: true; value: Request }
  | { ok: false; error: FlotillaError; id: number; op: OpName | null };
