/**
 * Publishing: checks each message, bounds what is unconfirmed (backpressure), and batches. Every
 * publish of one event-loop turn joins a per-queue list; after the turn each list goes out as
 * publish frames of at most `maxBatchMessages` messages (and the server's frame limit), so several
 * frames are in flight at once and disk and network overlap. Each caller's promise resolves from
 * its own slot of its frame's reply. Every message carries an idempotency key (the SDK makes one
 * when the user gives none), so a frame whose outcome is unknown is resent without duplicating.
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
import { afterTurn, type IdempotencyKeys } from './util.js';

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

/** What the publisher needs from the client. */
export interface PublishTransport {
  /** Sends one publish frame, retrying while that is safe; rejects with the final error. */
  publish(queue: string, messages: PublishMessage[]): Promise<PublishResult>;
  limits(): ServerLimitsInfo;
}

interface Entry {
  message: PublishMessage;
  /** Estimated encoded size, for frame budgeting and the unconfirmed-bytes bound. */
  bytes: number;
  resolve(receipt: PublishReceipt): void;
  reject(error: FlotillaError): void;
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
  private readonly waiters = new Fifo<{ bytes: number; admit: () => void }>();
  private turn = new Map<string, Entry[]>();
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly transport: PublishTransport,
    private readonly options: PublisherOptions,
  ) {}

  /** Messages accepted and not yet confirmed or failed (including those waiting for room). */
  get unconfirmedCount(): number {
    return this.unconfirmedMessages + this.waiters.length;
  }

  /**
   * Queues one checked message for the next frame of `queue`. Waits (without rejecting) while
   * the unconfirmed bound is reached; resolves with the receipt once the leader confirmed it.
   */
  publish(queue: string, message: PublishMessage, bytes: number): Promise<PublishReceipt> {
    return new Promise<PublishReceipt>((resolve, reject) => {
      const entry: Entry = {
        message,
        bytes,
        resolve: (receipt) => {
          this.release(bytes);
          resolve(receipt);
        },
        reject: (error) => {
          this.release(bytes);
          reject(error);
        },
      };
      const enqueue = () => this.enqueue(queue, entry);
      // FIFO: once anyone waits, later publishes wait behind them.
      if (this.waiters.length === 0 && this.hasRoom(bytes)) {
        this.reserve(bytes);
        enqueue();
      } else {
        this.waiters.push({ bytes, admit: enqueue });
      }
    });
  }

  /** Resolves once every accepted publish is confirmed or failed. */
  idle(): Promise<void> {
    if (this.unconfirmedCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private hasRoom(bytes: number): boolean {
    if (this.unconfirmedMessages === 0) return true;
    return (
      this.unconfirmedMessages < this.options.maxUnconfirmedMessages &&
      this.unconfirmedBytes + bytes <= this.options.maxUnconfirmedBytes
    );
  }

  private reserve(bytes: number): void {
    this.unconfirmedMessages++;
    this.unconfirmedBytes += bytes;
  }

  private release(bytes: number): void {
    this.unconfirmedMessages--;
    this.unconfirmedBytes -= bytes;
    if (this.unconfirmedMessages < 0 || this.unconfirmedBytes < 0) {
      throw new Error(
        `publisher accounting broke: ${this.unconfirmedMessages} messages, ${this.unconfirmedBytes} bytes unconfirmed`,
      );
    }
    for (
      let next = this.waiters.peek();
      next !== undefined && this.hasRoom(next.bytes);
      next = this.waiters.peek()
    ) {
      this.waiters.shift();
      this.reserve(next.bytes);
      next.admit();
    }
    if (this.unconfirmedCount === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const waiter of waiters) waiter();
    }
  }

  private enqueue(queue: string, entry: Entry): void {
    let list = this.turn.get(queue);
    if (list === undefined) {
      list = [];
      this.turn.set(queue, list);
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
      for (const frame of splitFrames(entries, maxMessages, maxBytes)) void this.sendFrame(queue, frame);
    }
  }

  /** Sends one frame; a message the server refuses by index is failed alone and the rest resent. */
  private async sendFrame(queue: string, frame: Entry[]): Promise<void> {
    let remaining = frame;
    while (remaining.length > 0) {
      try {
        const result = await this.transport.publish(
          queue,
          remaining.map((entry) => entry.message),
        );
        settleFrame(remaining, result);
        return;
      } catch (error) {
        const failure = error instanceof FlotillaError ? error : new FlotillaError('INTERNAL', String(error));
        const culprit = culpritIndex(failure, remaining.length);
        if (culprit === undefined) {
          for (const entry of remaining) entry.reject(failure);
          return;
        }
        remaining[culprit]!.reject(errorForCulprit(failure));
        remaining = remaining.filter((_, index) => index !== culprit);
      }
    }
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

/** Resolves each entry from its slot in the reply. */
function settleFrame(entries: Entry[], result: PublishResult): void {
  if (result.seqs.length !== entries.length) {
    const error = new FlotillaError(
      'PROTOCOL_ERROR',
      `publish of ${entries.length} messages was confirmed with ${result.seqs.length} seqs`,
    );
    for (const entry of entries) entry.reject(error);
    return;
  }
  const duplicates = new Set(result.duplicates);
  entries.forEach((entry, index) => {
    entry.resolve({ seq: result.seqs[index]!, duplicate: duplicates.has(index) });
  });
}
