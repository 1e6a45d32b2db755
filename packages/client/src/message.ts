/**
 * Messages as the user sees them. `MessageView` is a stored message (peek results); `Message` is a
 * delivery leased to this client, with `ack`, `nack` and `extend`. The body is decoded lazily on
 * first access, so a consumer that only forwards `bytes` never pays for decoding.
 */

import {
  type BodyFormat,
  DEFAULT_LIMITS,
  type DeadLetterInfo,
  type DeliveredMessage,
  decodeBody,
  FlotillaError,
  invalidArgument,
} from '@flotilla/shared';

/** Per-delivery settlement, provided by the client (coalesced per turn into one frame per op). */
export interface Settler {
  ack(message: Message): Promise<void>;
  nack(message: Message, delayMs: number | undefined): Promise<void>;
  /** A nack that dead-letters the message at once (`nack({ deadLetter: true })`). */
  reject(message: Message): Promise<void>;
  extend(message: Message, ms: number): Promise<void>;
}

/** Told when a delivery is settled (acked or nacked), to free its prefetch slot. */
export interface SettleObserver {
  onSettled(message: Message): void;
}

/** A stored message: its content and metadata (what `peek` returns; `Message` adds settlement). */
export class MessageView<T = unknown> {
  /** The queue the message is in. */
  readonly queue: string;
  /** Sequence number assigned by the queue at publish: unique in the queue, increasing. */
  readonly seq: number;
  /** The raw body bytes as published. */
  readonly bytes: Uint8Array;
  /** How the body bytes were produced (bytes, UTF-8, msgpack, JSON). */
  readonly format: BodyFormat;
  /** String headers given at publish, or null. */
  readonly headers: Record<string, string> | null;
  /** The message group, or null. */
  readonly group: string | null;
  /** Priority (0 is lowest). */
  readonly priority: number;
  /**
   * Deliveries so far in this queue, this one included (0 for a peeked message never delivered).
   * A dead-lettered message starts again from 0 in its dead-letter queue; `deadLetter` keeps how
   * many times it was delivered where it came from.
   */
  readonly deliveryCount: number;
  /** When the publish was stored, ms since the Unix epoch by the leader's clock. */
  readonly publishedAtMs: number;
  /** When this lease ends, ms since the Unix epoch by the leader's clock (0 when not leased). */
  readonly leaseDeadlineMs: number;
  /**
   * For a message that reached this queue by dead-lettering: the queue and seq it came from, how
   * many times it was delivered there, why it was moved (`max-deliveries`, `expired`, `overflow`,
   * `rejected`) and when. Null for every other message.
   */
  readonly deadLetter: DeadLetterInfo | null;
  private decoded: { value: T } | undefined;

  constructor(delivered: DeliveredMessage) {
    this.queue = delivered.queue;
    this.seq = delivered.seq;
    this.bytes = delivered.body;
    this.format = delivered.format;
    this.headers = delivered.headers;
    this.group = delivered.group;
    this.priority = delivered.priority;
    this.deliveryCount = delivered.deliveryCount;
    this.publishedAtMs = delivered.publishedAtMs;
    this.leaseDeadlineMs = delivered.leaseDeadlineMs;
    this.deadLetter = delivered.deadLetter ?? null;
  }

  /**
   * The body as a value: a `Uint8Array` for bytes, a string for UTF-8, the decoded value for
   * msgpack or JSON. Decoded on first access; throws PROTOCOL_ERROR if the bytes do not match
   * their format.
   */
  get body(): T {
    if (this.decoded === undefined) this.decoded = { value: decodeBody(this.bytes, this.format) as T };
    return this.decoded.value;
  }

  /** `publishedAtMs` as a Date. */
  get publishedAt(): Date {
    return new Date(this.publishedAtMs);
  }

  /** `leaseDeadlineMs` as a Date (the Unix epoch when not leased). */
  get leaseDeadline(): Date {
    return new Date(this.leaseDeadlineMs);
  }
}

type SettleState = 'open' | 'acked' | 'nacked';

/** Options of `Message.nack`. */
export interface NackOptions {
  /** Deliver it again after this long, in ms (default: the queue's retry policy). */
  delayMs?: number;
  /** Reject it: dead-letter it at once (reason `rejected`), or drop it when the queue has no DLQ. */
  deadLetter?: boolean;
}

function nackOptionsProblem(options: NackOptions): FlotillaError | null {
  const { delayMs, deadLetter } = options;
  if (delayMs !== undefined && !isIntIn(delayMs, 0, DEFAULT_LIMITS.maxDelayMs)) {
    return invalidArgument('delayMs', `${delayMs} is not an integer in 0..${DEFAULT_LIMITS.maxDelayMs}`);
  }
  if (deadLetter !== undefined && typeof deadLetter !== 'boolean') {
    return invalidArgument('deadLetter', `expected a boolean, got ${typeof deadLetter}`);
  }
  if (deadLetter === true && delayMs !== undefined) {
    return invalidArgument('deadLetter', 'a rejected message is dead-lettered at once: no delayMs with it');
  }
  return null;
}

function isIntIn(value: number, min: number, max: number): boolean {
  return Number.isInteger(value) && value >= min && value <= max;
}

/**
 * A delivery leased to this client. Settle it exactly once with `ack` (done) or `nack` (try again
 * later); `extend` keeps the lease while work goes on. Delivery is at least once: the same message
 * can arrive again (with a new `deliveryId`), so processing must be idempotent.
 */
export class Message<T = unknown> extends MessageView<T> {
  /** Identifies this lease; acks quote it, so a stale ack can never settle a later delivery. */
  readonly deliveryId: number;
  /** Which client connection delivered it (a new connection makes older deliveries stale). */
  readonly connectionEpoch: number;
  private state: SettleState = 'open';
  private settlement: Promise<void> | undefined;

  constructor(
    delivered: DeliveredMessage,
    connectionEpoch: number,
    private readonly settler: Settler,
    private readonly observer?: SettleObserver,
  ) {
    super(delivered);
    this.deliveryId = delivered.deliveryId;
    this.connectionEpoch = connectionEpoch;
  }

  /** Whether `ack` or `nack` has been called. */
  get settled(): boolean {
    return this.state !== 'open';
  }

  /**
   * Marks the message done; once this resolves it will not be delivered again (from this queue or
   * its dead-letter queue). It also resolves when the message had already left the queue for good
   * (acked after a newer delivery, expired, purged), so it does not prove this ack removed it.
   * Rejects with LEASE_EXPIRED while the message is still in the queue and was delivered again
   * since this delivery, or was dead-lettered and its copy waits in the dead-letter queue (an ended
   * lease alone does not fail it). Calling it again returns the first outcome.
   */
  ack(): Promise<void> {
    return this.settle('acked', () => this.settler.ack(this));
  }

  /**
   * Gives the message back: it is delivered again after `delayMs`, or by the queue's retry
   * policy when no delay is given (dead-lettered once it reaches the queue's maxDeliveries).
   *
   * With `deadLetter: true` the consumer rejects the message (e.g. it cannot be parsed): it goes
   * to the queue's dead-letter queue at once, with reason `rejected`, however few times it was
   * delivered; a queue without a dead-letter queue drops it. No `delayMs` with it.
   *
   * Resolves without effect when this delivery's lease had already ended or the message had left
   * the queue (then a rejection moves nothing: the message is delivered again); rejects with
   * LEASE_EXPIRED when the message was delivered again since.
   */
  nack(options: NackOptions = {}): Promise<void> {
    const problem = nackOptionsProblem(options);
    if (problem !== null) return Promise.reject(problem);
    if (options.deadLetter === true) return this.settle('nacked', () => this.settler.reject(this));
    return this.settle('nacked', () => this.settler.nack(this, options.delayMs));
  }

  /**
   * Extends the lease: it now ends `ms` from now (by the leader's clock). Rejects with
   * LEASE_EXPIRED when the lease is no longer held (ended, delivered again, or the message left).
   */
  extend(ms: number): Promise<void> {
    if (this.state !== 'open') return Promise.reject(this.alreadySettled('extend'));
    if (!isIntIn(ms, 1, DEFAULT_LIMITS.maxVisibilityTimeoutMs)) {
      return Promise.reject(
        invalidArgument('ms', `${ms} is not an integer in 1..${DEFAULT_LIMITS.maxVisibilityTimeoutMs}`),
      );
    }
    return this.settler.extend(this, ms);
  }

  /** Marks the message settled without telling the server (its lease is void, e.g. after a reconnect). */
  forget(): void {
    if (this.state !== 'open') return;
    this.state = 'nacked';
    this.settlement = Promise.resolve();
    this.observer?.onSettled(this);
  }

  private settle(target: SettleState, send: () => Promise<void>): Promise<void> {
    if (this.state === target && this.settlement !== undefined) return this.settlement;
    if (this.state !== 'open')
      return Promise.reject(this.alreadySettled(target === 'acked' ? 'ack' : 'nack'));
    this.state = target;
    this.settlement = send();
    this.observer?.onSettled(this);
    return this.settlement;
  }

  private alreadySettled(op: string): FlotillaError {
    return new FlotillaError(
      'LEASE_EXPIRED',
      `cannot ${op} ${this.queue}#${this.seq}: already ${this.state}`,
      {
        queue: this.queue,
        seq: this.seq,
        deliveryId: this.deliveryId,
      },
    );
  }
}
