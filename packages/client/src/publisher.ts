/**
 * Publishing: checks each message, bounds what is unconfirmed (backpressure), and batches. Every
 * publish of one event-loop turn joins a per-queue list; after the turn each list goes out as
 * publish frames of at most `maxBatchMessages` messages (and the server's frame limit), so several
 * frames are in flight at once and disk and network overlap. Each caller's promise resolves from
 * its own slot of its frame's reply. Every message carries an idempotency key (the SDK makes one
 * when the user gives none), so a frame whose outcome is unknown is resent without duplicating.
 *
 * A call may carry a deadline (`timeoutMs`) and an AbortSignal: when either fires first, its
 * messages still unconfirmed fail at once (TIMEOUT / CANCELLED, outcome unknown), leave the
 * unconfirmed window, and are left out of any later attempt of the frame they were in (a frame
 * with none left stops).
 */

import {
  DEFAULT_LIMITS,
  type EncodedBody,
  encodeBody,
  FlotillaError,
  invalidArgument,
  type PublishMessage,
  type PublishResult,
  type ServerLimitsInfo,
} from '@flotilla/shared';
import {
  afterTurn,
  cancelledError,
  type IdempotencyKeys,
  lastAttemptError,
  outcomeUnknown,
  toFlotillaError,
} from './util.js';

/** Options of one published message. */
export interface PublishOptions {
  /**
   * Publishes with the same key inside the queue's dedup window (default 5 min) are stored once.
   * When absent the SDK generates a unique key, which makes its own retries safe.
   */
  idempotencyKey?: string;
  /** Hide the message for this long after it is stored (default: the queue's deliveryDelayMs). */
  delayMs?: number;
  /** String headers (routing hints, trace ids...). */
  headers?: Record<string, string>;
  /** Message group: messages of one group are delivered one at a time, in order. */
  group?: string;
  /** 0..priorityLevels-1 of the queue, higher first (default 0). */
  priority?: number;
  /** Dead-letter the message if it is not acked this long after publish (default: the queue's messageTtlMs). */
  ttlMs?: number;
}

/** One entry of `publishBatch`: a body plus its options. */
export interface BatchEntry extends PublishOptions {
  /** A `Uint8Array` (sent as is), a string (UTF-8) or any msgpack-encodable value. */
  body: unknown;
}

/** What a confirmed publish returns. */
export interface PublishReceipt {
  /** The message's sequence number in its queue (for a duplicate: the original message's). */
  seq: number;
  /** True when the idempotency key had been seen inside the dedup window: nothing new was stored. */
  duplicate: boolean;
}

export interface PublisherOptions {
  /** Publishes unconfirmed at once before `publish` starts waiting. */
  maxUnconfirmedMessages: number;
  /** Body bytes unconfirmed at once before `publish` starts waiting. */
  maxUnconfirmedBytes: number;
  /** Messages per publish frame. */
  maxBatchMessages: number;
}

/** A deadline and a cancellation for one `publish` or `publishBatch` call (all its messages). */
export interface PublishCallOptions {
  /**
   * Give up after this long, in ms (1..2^31-1), waiting for room included: the messages not yet
   * confirmed reject with TIMEOUT. Their outcome is unknown (`details.sent` says whether they
   * ever left); publishing again with the same idempotency key (`details.idempotencyKey`) within
   * the queue's dedup window stores them once.
   */
  timeoutMs?: number;
  /** Give up when this signal aborts: the messages not yet confirmed reject with CANCELLED (as above). */
  signal?: AbortSignal;
}

/** What the publisher needs from the client. */
export interface PublishTransport {
  /**
   * Sends one publish frame, retrying while that is safe; rejects with the final error. The
   * messages are asked for again before every attempt (messages whose callers gave up are left
   * out); `signal`, given when a caller may give up, aborts when none is left. `onRetry` hears of
   * every failed attempt that is retried.
   */
  publish(
    queue: string,
    messages: () => PublishMessage[],
    signal: AbortSignal | undefined,
    onRetry: (failure: FlotillaError) => void,
  ): Promise<PublishResult>;
  limits(): ServerLimitsInfo;
}

/** A checked message and its estimated encoded size. */
export interface BuiltMessage {
  message: PublishMessage;
  bytes: number;
}

/**
 * Where a message is: waiting for room in the unconfirmed window, queued for the turn's frames
 * (holding room), in a frame being sent (holding room), or done (confirmed or failed).
 */
type EntryState = 'waiting' | 'queued' | 'sending' | 'done';

interface Entry {
  queue: string;
  message: PublishMessage;
  /** Estimated encoded size, for frame budgeting and the unconfirmed-bytes bound. */
  bytes: number;
  state: EntryState;
  /** An attempt carrying it went out: it may be stored even if its caller gave up. */
  sent: boolean;
  frame: Frame | null;
  call: PublishCall | null;
  resolve(receipt: PublishReceipt): void;
  reject(error: FlotillaError): void;
}

/** One publish frame in flight; its `entries` lose members the server refused by index. */
interface Frame {
  entries: Entry[];
  /** Entries not done yet: at 0 while the frame is still being sent, it is stopped. */
  live: number;
  /**
   * Aborts the frame's sending once every caller gave up; only made when one can (a call with a
   * deadline or signal): creating and aborting one costs more than a small publish itself.
   */
  abort: AbortController | null;
  /** The transport is sending it (an abort now stops retries that no caller waits for). */
  sending: boolean;
  /**
   * Every failed attempt of this frame so far, oldest first, each the server's or the link's own
   * error. Once one of them may have stored the messages (a lost connection...), a later definite
   * failure of the frame is reported as outcome unknown.
   */
  attempts: FlotillaError[];
}

/** Room left in a frame for everything but the messages (envelope, queue name). */
const FRAME_OVERHEAD_BYTES = 1024;
/** Per-message encoding overhead beyond the variable fields (array header, nils, numbers). */
const MESSAGE_OVERHEAD_BYTES = 48;

const utf8 = new TextEncoder();

function utf8Bytes(value: string): number {
  // Pure ASCII is common (keys, groups, header names): its byte length is its length.
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) > 0x7f) return utf8.encode(value).byteLength;
  }
  return value.length;
}

function checkInt(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(field, `${String(value)} is not an integer in ${min}..${max}`);
  }
  return value;
}

function checkText(value: unknown, field: string, maxBytes: number): string {
  if (typeof value !== 'string' || value.length === 0 || utf8Bytes(value) > maxBytes) {
    throw invalidArgument(field, `expected a non-empty string of at most ${maxBytes} bytes`);
  }
  return value;
}

function checkHeaders(headers: unknown): { headers: Record<string, string>; bytes: number } {
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw invalidArgument('headers', 'expected an object of string values');
  }
  const entries = Object.entries(headers);
  if (entries.length > DEFAULT_LIMITS.maxHeaders) {
    throw invalidArgument('headers', `more than ${DEFAULT_LIMITS.maxHeaders} headers`);
  }
  let bytes = 0;
  for (const [key, value] of entries) {
    if (key.length === 0) throw invalidArgument('headers', 'header names must not be empty');
    if (typeof value !== 'string') throw invalidArgument(`headers.${key}`, 'header values must be strings');
    bytes += utf8Bytes(key) + utf8Bytes(value);
  }
  if (bytes > DEFAULT_LIMITS.maxHeaderBytes) {
    throw invalidArgument('headers', `keys and values exceed ${DEFAULT_LIMITS.maxHeaderBytes} bytes`);
  }
  return { headers: headers as Record<string, string>, bytes };
}

/** encodeBody with a typed error for values msgpack cannot carry (functions, symbols, huge nesting...). */
function encodeWholeBody(body: unknown): EncodedBody {
  try {
    return encodeBody(body);
  } catch (cause) {
    if (cause instanceof FlotillaError) throw cause;
    throw new FlotillaError(
      'INVALID_ARGUMENT',
      `body: cannot be encoded: ${String(cause)}`,
      { field: 'body' },
      { cause },
    );
  }
}

/**
 * Turns a body and options into a wire message, checking every field against the protocol
 * limits so one bad message is refused here instead of failing a whole shared frame. Throws
 * INVALID_ARGUMENT or MESSAGE_TOO_LARGE naming the field.
 */
export function buildMessage(
  body: unknown,
  options: PublishOptions,
  keys: IdempotencyKeys,
  limits: ServerLimitsInfo,
): { message: PublishMessage; bytes: number } {
  const encoded = encodeWholeBody(body);
  if (encoded.body.byteLength > limits.maxMessageBytes) {
    throw new FlotillaError(
      'MESSAGE_TOO_LARGE',
      `body: ${encoded.body.byteLength} bytes exceeds ${limits.maxMessageBytes}`,
      { field: 'body' },
    );
  }
  const message: PublishMessage = { body: encoded.body, format: encoded.format };
  let bytes = encoded.body.byteLength + MESSAGE_OVERHEAD_BYTES;
  const key = options.idempotencyKey ?? keys.next();
  message.idempotencyKey = checkText(key, 'idempotencyKey', DEFAULT_LIMITS.maxIdempotencyKeyBytes);
  bytes += key.length;
  if (options.headers !== undefined) {
    const checked = checkHeaders(options.headers);
    message.headers = checked.headers;
    bytes += checked.bytes + 2 * Object.keys(checked.headers).length;
  }
  if (options.delayMs !== undefined)
    message.delayMs = checkInt(options.delayMs, 'delayMs', 0, DEFAULT_LIMITS.maxDelayMs);
  if (options.ttlMs !== undefined)
    message.ttlMs = checkInt(options.ttlMs, 'ttlMs', 1, DEFAULT_LIMITS.maxTtlMs);
  if (options.group !== undefined) {
    message.group = checkText(options.group, 'group', DEFAULT_LIMITS.maxGroupBytes);
    bytes += options.group.length;
  }
  if (options.priority !== undefined) {
    message.priority = checkInt(options.priority, 'priority', 0, DEFAULT_LIMITS.maxPriorityLevels - 1);
  }
  return { message, bytes };
}

/** `messages[3].priority` → 3: which message of a frame the server refused. */
function culpritIndex(error: FlotillaError, count: number): number | undefined {
  if (error.code !== 'INVALID_ARGUMENT' && error.code !== 'MESSAGE_TOO_LARGE') return undefined;
  const match = /^messages\[(\d+)\](?:\.(.*))?$/.exec(error.field ?? '');
  if (match === null) return undefined;
  const index = Number(match[1]);
  return index < count ? index : undefined;
}

/**
 * `failure`, the error of a frame's last attempt, as its callers see it: outcome unknown if an
 * earlier attempt of the frame (`earlier`, which may already list attempts that `failure`
 * accounts for) may have stored the messages.
 */
function frameError(queue: string, failure: FlotillaError, earlier: readonly FlotillaError[]): FlotillaError {
  return outcomeUnknown(`publish to ${queue}`, failure, earlier);
}

/** The server's error about one message, re-labelled for that message's own caller. */
function errorForCulprit(error: FlotillaError): FlotillaError {
  const field = (error.field ?? '').replace(/^messages\[\d+\]\.?/, '') || 'message';
  return new FlotillaError(error.code, error.message, { ...error.details, field }, { cause: error });
}

/** A FIFO with O(1) removal from the front (backpressure waiters can number thousands). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    const item = this.items[this.head];
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

/** Batches, bounds and confirms publishes. */
export class Publisher {
  private unconfirmedMessages = 0;
  private unconfirmedBytes = 0;
  private readonly waiters = new Fifo<Entry>();
  /** Waiters whose callers gave up: still in the FIFO until they reach its front. */
  private abandonedWaiters = 0;
  private turn = new Map<string, Entry[]>();
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly transport: PublishTransport,
    private readonly options: PublisherOptions,
  ) {}

  /** Messages accepted and not yet confirmed or failed (including those waiting for room). */
  get unconfirmedCount(): number {
    return this.unconfirmedMessages + this.waitingCount;
  }

  private get waitingCount(): number {
    return this.waiters.length - this.abandonedWaiters;
  }

  /**
   * Queues checked messages for the next frames of `queue`: one promise per message, in order,
   * resolving with its receipt once the leader confirmed it. Waits (without rejecting) while the
   * unconfirmed bound is reached, unless the call's deadline or signal fires first.
   */
  publish(
    queue: string,
    messages: readonly BuiltMessage[],
    options: PublishCallOptions = {},
  ): Promise<PublishReceipt>[] {
    if (options.signal?.aborted) {
      return messages.map(({ message }) =>
        Promise.reject(
          cancelledError(`publish to ${queue}`, options.signal!, {
            sent: false,
            idempotencyKey: message.idempotencyKey,
          }),
        ),
      );
    }
    const call = PublishCall.needed(options) ? new PublishCall(queue, options, this.giveUp) : null;
    const promises = messages.map(
      ({ message, bytes }) =>
        new Promise<PublishReceipt>((resolve, reject) => {
          const entry: Entry = {
            queue,
            message,
            bytes,
            state: 'waiting',
            sent: false,
            frame: null,
            call,
            resolve,
            reject,
          };
          call?.add(entry);
          this.accept(entry);
        }),
    );
    call?.arm();
    return promises;
  }

  /** Resolves once every accepted publish is confirmed or failed. */
  idle(): Promise<void> {
    if (this.unconfirmedCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** A caller gave up on `entry` (deadline or signal): it fails now and frees its room. */
  private readonly giveUp = (entry: Entry, error: FlotillaError): void => {
    this.settle(entry, error);
  };

  private accept(entry: Entry): void {
    // FIFO: once anyone waits, later publishes wait behind them.
    if (this.waitingCount === 0 && this.hasRoom(entry.bytes)) this.admit(entry);
    else this.waiters.push(entry);
  }

  private hasRoom(bytes: number): boolean {
    if (this.unconfirmedMessages === 0) return true;
    return (
      this.unconfirmedMessages < this.options.maxUnconfirmedMessages &&
      this.unconfirmedBytes + bytes <= this.options.maxUnconfirmedBytes
    );
  }

  /** Takes room in the unconfirmed window for `entry` and queues it for this turn's frames. */
  private admit(entry: Entry): void {
    this.unconfirmedMessages++;
    this.unconfirmedBytes += entry.bytes;
    entry.state = 'queued';
    this.enqueue(entry);
  }

  /**
   * Ends `entry` with a receipt or an error, exactly once (later outcomes are ignored: a caller
   * that gave up may still see its frame confirmed), and frees what it held.
   */
  private settle(entry: Entry, outcome: PublishReceipt | FlotillaError): void {
    const previous = entry.state;
    if (previous === 'done') return;
    entry.state = 'done';
    if (previous === 'waiting') this.abandonedWaiters++;
    else this.release(entry.bytes);
    entry.call?.entryDone();
    if (outcome instanceof FlotillaError) entry.reject(outcome);
    else entry.resolve(outcome);
    const frame = entry.frame;
    if (frame !== null && --frame.live === 0 && frame.sending) frame.abort?.abort();
    this.admitWaiters();
    if (this.unconfirmedCount === 0) this.notifyIdle();
  }

  private release(bytes: number): void {
    this.unconfirmedMessages--;
    this.unconfirmedBytes -= bytes;
    if (this.unconfirmedMessages < 0 || this.unconfirmedBytes < 0) {
      throw new Error(
        `publisher accounting broke: ${this.unconfirmedMessages} messages, ${this.unconfirmedBytes} bytes unconfirmed`,
      );
    }
  }

  /** Lets waiters in, oldest first, while there is room; waiters that gave up are dropped. */
  private admitWaiters(): void {
    for (let next = this.waiters.peek(); next !== undefined; next = this.waiters.peek()) {
      if (next.state === 'done') {
        this.waiters.shift();
        this.abandonedWaiters--;
        continue;
      }
      if (!this.hasRoom(next.bytes)) return;
      this.waiters.shift();
      this.admit(next);
    }
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const waiter of waiters) waiter();
  }

  private enqueue(entry: Entry): void {
    let list = this.turn.get(entry.queue);
    if (list === undefined) {
      list = [];
      this.turn.set(entry.queue, list);
    }
    list.push(entry);
    if (!this.scheduled) {
      this.scheduled = true;
      afterTurn(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const turn = this.turn;
    this.turn = new Map();
    const limits = this.transport.limits();
    const maxMessages = Math.max(1, Math.min(this.options.maxBatchMessages, limits.maxPublishBatch));
    const maxBytes = Math.max(1, limits.maxFrameBytes - FRAME_OVERHEAD_BYTES);
    for (const [queue, entries] of turn) {
      const wanted = entries.filter((entry) => entry.state !== 'done');
      for (const frame of splitFrames(wanted, maxMessages, maxBytes)) void this.sendFrame(queue, frame);
    }
  }

  /**
   * Sends one frame. Every attempt carries the messages still wanted; a message the server
   * refuses by index is failed alone and the rest sent again.
   */
  private async sendFrame(queue: string, entries: Entry[]): Promise<void> {
    const mayGiveUp = entries.some((entry) => entry.call !== null);
    const frame: Frame = {
      entries,
      live: entries.length,
      abort: mayGiveUp ? new AbortController() : null,
      sending: false,
      attempts: [],
    };
    const onRetry = (failure: FlotillaError) => frame.attempts.push(failure);
    for (const entry of entries) {
      entry.state = 'sending';
      entry.frame = frame;
    }
    while (frame.live > 0) {
      let attempted: Entry[] = [];
      const messages = () => {
        attempted = frame.entries.filter((entry) => entry.state !== 'done');
        for (const entry of attempted) entry.sent = true;
        return attempted.map((entry) => entry.message);
      };
      frame.sending = true;
      try {
        const result = await this.transport.publish(queue, messages, frame.abort?.signal, onRetry);
        frame.sending = false;
        this.settleFrame(attempted, result);
        return;
      } catch (error) {
        frame.sending = false;
        // The transport already reports outcome unknown across its own attempts, but a frame's
        // attempts may span several transport calls (one more per message refused by index).
        const failure = toFlotillaError(error);
        const refusal = lastAttemptError(failure);
        const culprit = culpritIndex(refusal, attempted.length);
        if (culprit === undefined) {
          const final = frameError(queue, failure, frame.attempts);
          for (const entry of frame.entries) this.settle(entry, final);
          return;
        }
        const refused = attempted[culprit]!;
        this.settle(refused, frameError(queue, errorForCulprit(refusal), frame.attempts));
        frame.attempts.push(refusal);
        frame.entries = frame.entries.filter((entry) => entry !== refused);
      }
    }
  }

  /** Resolves each entry of an attempt from its slot in the reply. */
  private settleFrame(attempted: Entry[], result: PublishResult): void {
    if (result.seqs.length !== attempted.length) {
      const error = new FlotillaError(
        'PROTOCOL_ERROR',
        `publish of ${attempted.length} messages was confirmed with ${result.seqs.length} seqs`,
      );
      for (const entry of attempted) this.settle(entry, error);
      return;
    }
    const duplicates = new Set(result.duplicates);
    attempted.forEach((entry, index) => {
      this.settle(entry, { seq: result.seqs[index]!, duplicate: duplicates.has(index) });
    });
  }
}

/**
 * The deadline and signal of one publish call, shared by its messages: one timer and one
 * listener, removed once every message is done. When either fires, the messages not done give up.
 */
class PublishCall {
  private readonly entries: Entry[] = [];
  private open = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private listening = false;

  constructor(
    private readonly queue: string,
    private readonly options: PublishCallOptions,
    private readonly giveUp: (entry: Entry, error: FlotillaError) => void,
  ) {}

  static needed(options: PublishCallOptions): boolean {
    return options.timeoutMs !== undefined || options.signal !== undefined;
  }

  add(entry: Entry): void {
    this.entries.push(entry);
    this.open++;
  }

  /** Starts the timer and listens to the signal (once the messages are in). */
  arm(): void {
    if (this.open === 0) return;
    const { timeoutMs, signal } = this.options;
    if (timeoutMs !== undefined) this.timer = setTimeout(this.expired, timeoutMs);
    if (signal !== undefined) {
      signal.addEventListener('abort', this.aborted, { once: true });
      this.listening = true;
    }
  }

  entryDone(): void {
    this.open--;
    if (this.open === 0) this.disarm();
  }

  private readonly expired = (): void => {
    const timeoutMs = this.options.timeoutMs!;
    this.endAll((entry) => {
      const outcome = entry.sent
        ? 'it may have been stored: publishing it again with the same idempotency key stores it once'
        : 'it was never sent';
      return new FlotillaError(
        'TIMEOUT',
        `publish to ${this.queue}: no outcome within ${timeoutMs} ms; ${outcome}`,
        { timeoutMs, sent: entry.sent, idempotencyKey: entry.message.idempotencyKey },
      );
    });
  };

  private readonly aborted = (): void => {
    const signal = this.options.signal!;
    this.endAll((entry) =>
      cancelledError(`publish to ${this.queue}`, signal, {
        sent: entry.sent,
        idempotencyKey: entry.message.idempotencyKey,
      }),
    );
  };

  private endAll(errorFor: (entry: Entry) => FlotillaError): void {
    this.disarm();
    for (const entry of this.entries) if (entry.state !== 'done') this.giveUp(entry, errorFor(entry));
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.listening) this.options.signal!.removeEventListener('abort', this.aborted);
    this.listening = false;
  }
}

/** Splits a turn's entries into frames by message count and estimated bytes. */
function splitFrames(entries: Entry[], maxMessages: number, maxBytes: number): Entry[][] {
  const frames: Entry[][] = [];
  let current: Entry[] = [];
  let currentBytes = 0;
  for (const entry of entries) {
    if (current.length > 0 && (current.length >= maxMessages || currentBytes + entry.bytes > maxBytes)) {
      frames.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(entry);
    currentBytes += entry.bytes;
  }
  if (current.length > 0) frames.push(current);
  return frames;
}
