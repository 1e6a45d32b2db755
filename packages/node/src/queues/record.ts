/**
 * One stored message. A queue may hold a million of these, so the record is a single class with a
 * fixed shape (no per-message maps, arrays or closures): immutable publish-time fields, a few
 * mutable delivery fields, and one position field per heap the record can sit in at the same time.
 *
 * The body is a view into the decoded log entry (or snapshot chunk): no copy, but the view keeps
 * that whole buffer alive until every message sharing it is gone.
 */
import { NOT_IN_HEAP } from './heap.js';
import type { DeadLetterInfo, Headers } from './types.js';

export const MessageState = {
  /** Waiting for a consumer; in the delivery order (or behind its group's busy message). */
  Ready: 0,
  /** Waiting for its publish delay. */
  Delayed: 1,
  /** Nacked, waiting for its retry backoff; still blocks its group. */
  Retrying: 2,
  /** Leased to a consumer until `dueMs`. */
  InFlight: 3,
  /** Between two states while being moved; never visible outside one operation. */
  Detached: 4,
  /** Removed from its queue for good. */
  Gone: 5,
} as const;
export type MessageState = (typeof MessageState)[keyof typeof MessageState];

/**
 * "No time" for the ms fields. -0 rather than 0 because -0 is not a small integer: V8 then gives
 * these fields a double representation from the very first record, instead of switching it when
 * the first real timestamp is stored, which deprecates the shape and makes every record already
 * stored (possibly a million) migrate to a new one on its next access.
 */
export const NO_TIME_MS = -0;

export class MessageRecord {
  // What it is: fixed at publish (the snapshot code relies on these never changing).
  readonly seq: number;
  readonly body: Uint8Array;
  readonly headers: Headers | null;
  readonly group: string | null;
  readonly priority: number;
  /** Body format tag from the wire protocol (bytes, utf8, msgpack, json); the broker never looks inside. */
  readonly format: number;
  readonly publishedAtMs: number;
  /** When its TTL ends; 0 = never. */
  readonly expireAtMs: number;
  /** What it counts against `maxBytes`. */
  readonly sizeBytes: number;
  /** Set when it arrived here by dead-lettering. */
  readonly deadLetter: DeadLetterInfo | null;

  // Where it is.
  state: MessageState = MessageState.Detached;
  /** Delayed/Retrying: when it becomes ready. InFlight: lease deadline. Otherwise unused. */
  dueMs = NO_TIME_MS;
  /** Deliveries so far. */
  deliveryCount = 0;
  /** Failed deliveries (nacks and lease expiries) so far: what `maxDeliveries` limits. */
  failures = 0;
  /** Id of the latest delivery; 0 before the first. */
  deliveryId = 0;
  consumerId: string | null = null;

  /** Position in the heap of its state (delivery order, group waiting list, delays or leases). */
  pos = NOT_IN_HEAP;
  /** Position in the TTL heap (ready and delayed messages with an expiry). */
  ttlPos = NOT_IN_HEAP;
  /** Position in the oldest-ready heap (every ready message). */
  agePos = NOT_IN_HEAP;

  constructor(
    seq: number,
    body: Uint8Array,
    headers: Headers | null,
    group: string | null,
    priority: number,
    publishedAtMs: number,
    expireAtMs: number,
    deadLetter: DeadLetterInfo | null,
    format = 0,
  ) {
    this.seq = seq;
    this.body = body;
    this.headers = headers;
    this.group = group;
    this.priority = priority;
    this.format = format;
    this.publishedAtMs = publishedAtMs === 0 ? NO_TIME_MS : publishedAtMs;
    this.expireAtMs = expireAtMs === 0 ? NO_TIME_MS : expireAtMs;
    this.sizeBytes = messageSizeBytes(body, headers);
    this.deadLetter = deadLetter;
  }
}

/** Body bytes plus the UTF-16 length of every header key and value: cheap, deterministic, and headers cannot dodge limits. */
export function messageSizeBytes(body: Uint8Array, headers: Headers | null): number {
  let size = body.byteLength;
  if (headers) for (const key in headers) size += key.length + (headers[key] as string).length;
  return size;
}
