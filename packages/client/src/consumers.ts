/**
 * The three ways to consume a push subscription, as delivery sinks:
 * - `HandlerSink` (`consume`): one handler call per message; resolve acks, throw nacks.
 * - `IteratorSink` (`messages()`): an async iterator with a single reader; the user settles.
 * - `BatchSink` (`consumeBatch`): handler calls with up to `maxMessages` messages, cut by count or
 *   by `maxWaitMs` after the first message; resolve acks all, throw nacks all.
 * None of them buffers more than the subscription's prefetch: the server never has more than that
 * many unsettled deliveries out.
 */

import { FlotillaError } from '@flotilla/shared';
import type { Message } from './message.js';
import type { DeliverySink, PushSubscription } from './subscription.js';
import { type Deferred, deferred } from './util.js';

/** Handles one message: resolving acks it, throwing nacks it (the queue's retry backoff applies). */
export type MessageHandler<T = unknown> = (message: Message<T>) => unknown;

/** Handles a batch: resolving acks every message, throwing nacks every message. */
export type BatchHandler<T = unknown> = (messages: Message<T>[]) => unknown;

/** Called when an automatic ack/nack fails in a way the user should hear about. */
export type SettleErrorReporter = (error: FlotillaError, message: Message) => void;

/** A running push consumer (`consume` or `consumeBatch`). */
export interface Subscription {
  /** The queue consumed. */
  readonly queue: string;
  /** At most this many messages are held (delivered and not yet settled) at once. */
  readonly prefetch: number;
  /** Messages delivered and not yet settled. */
  readonly held: number;
  /** Stops receiving, lets handlers in progress finish and settle, then resolves. */
  close(): Promise<void>;
  /** Resolves when the subscription ends: null after `close()`, else the error that ended it. */
  closed(): Promise<FlotillaError | null>;
}

/** Wraps a PushSubscription as the public Subscription. */
export function publicSubscription(subscription: PushSubscription): Subscription {
  return {
    queue: subscription.queue,
    prefetch: subscription.prefetch,
    get held() {
      return subscription.held;
    },
    close: () => subscription.close(),
    closed: () => subscription.closed(),
  };
}

/** Settles a message the SDK settles on the user's behalf, reporting failures instead of throwing. */
function autoSettle(settle: Promise<void>, message: Message, report: SettleErrorReporter): Promise<void> {
  return settle.catch((error: unknown) => {
    if (error instanceof FlotillaError) report(error, message);
  });
}

/** `consume`: every delivery runs the handler at once (so concurrency is bounded by prefetch). */
export class HandlerSink<T> implements DeliverySink {
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly handler: MessageHandler<T>,
    private readonly report: SettleErrorReporter,
  ) {}

  deliver(message: Message): void {
    const run = this.run(message as Message<T>);
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  }

  reset(): void {
    // Nothing is buffered: every delivery went straight to a handler.
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  end(): void {}

  private async run(message: Message<T>): Promise<void> {
    let failed = false;
    try {
      await this.handler(message);
    } catch {
      failed = true;
    }
    if (message.settled) return;
    await autoSettle(failed ? message.nack() : message.ack(), message, this.report);
  }
}

/**
 * `messages()`: buffers deliveries for a single reader. The buffer never exceeds prefetch because
 * the server stops pushing until the reader settles what it took.
 */
export class IteratorSink<T> implements DeliverySink {
  private readonly buffer: Message<T>[] = [];
  private readonly readers: Deferred<IteratorResult<Message<T>>>[] = [];
  private endState: { error: FlotillaError | null } | undefined;

  deliver(message: Message): void {
    const reader = this.readers.shift();
    if (reader !== undefined) reader.resolve({ done: false, value: message as Message<T> });
    else this.buffer.push(message as Message<T>);
  }

  reset(): void {
    for (const message of this.buffer.splice(0)) message.forget();
  }

  async drain(): Promise<void> {
    // Not yet seen by the reader: give them back now rather than when their leases end.
    await Promise.all(this.buffer.splice(0).map((message) => message.nack({ delayMs: 0 }).catch(() => {})));
  }

  end(error: FlotillaError | null): void {
    this.endState = { error };
    for (const reader of this.readers.splice(0)) {
      if (error === null) reader.resolve({ done: true, value: undefined });
      else reader.reject(error);
    }
  }

  /** The next message, waiting if none is buffered; done once the subscription ended. */
  next(): Promise<IteratorResult<Message<T>>> {
    const message = this.buffer.shift();
    if (message !== undefined) return Promise.resolve({ done: false, value: message });
    if (this.endState !== undefined) {
      const { error } = this.endState;
      return error === null ? Promise.resolve({ done: true, value: undefined }) : Promise.reject(error);
    }
    const reader = deferred<IteratorResult<Message<T>>>();
    this.readers.push(reader);
    return reader.promise;
  }
}

/** A bounded async iterator over a queue's messages: `for await (const msg of client.messages(q))`. */
export interface MessageStream<T = unknown> extends AsyncIterableIterator<Message<T>> {
  /** Ends the iteration: unsubscribes and gives back messages not yet read. */
  close(): Promise<void>;
}

/** Builds the public iterator: single reader, cleanup on `return` (a `break` out of `for await`). */
export function messageStream<T>(
  sink: IteratorSink<T>,
  subscription: PushSubscription,
  started: Promise<void>,
): MessageStream<T> {
  let iterated = false;
  const close = async () => {
    await subscription.close();
  };
  const stream: MessageStream<T> = {
    async next() {
      await started;
      return sink.next();
    },
    async return() {
      await close();
      return { done: true, value: undefined };
    },
    close,
    [Symbol.asyncIterator]() {
      if (iterated) {
        throw new FlotillaError('INVALID_ARGUMENT', 'a message stream has a single reader: iterate it once');
      }
      iterated = true;
      return stream;
    },
  };
  return stream;
}

export interface BatchSinkOptions {
  maxMessages: number;
  maxWaitMs: number;
}

/** `consumeBatch`: collects deliveries into batches and runs the handler on one batch at a time. */
export class BatchSink<T> implements DeliverySink {
  private collecting: Message<T>[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly ready: Message<T>[][] = [];
  private processing: Promise<void> | undefined;

  constructor(
    private readonly handler: BatchHandler<T>,
    private readonly options: BatchSinkOptions,
    private readonly report: SettleErrorReporter,
  ) {}

  deliver(message: Message): void {
    this.collecting.push(message as Message<T>);
    if (this.collecting.length >= this.options.maxMessages) this.cut();
    else if (this.collecting.length === 1) this.timer = setTimeout(() => this.cut(), this.options.maxWaitMs);
  }

  reset(): void {
    this.stopTimer();
    // Batches not yet handed to the handler belong to a lost connection: their leases are void.
    for (const message of this.collecting.splice(0)) message.forget();
    for (const batch of this.ready.splice(0)) for (const message of batch) message.forget();
  }

  async drain(): Promise<void> {
    this.stopTimer();
    const unstarted = [...this.collecting.splice(0), ...this.ready.splice(0).flat()];
    await Promise.all(unstarted.map((message) => message.nack({ delayMs: 0 }).catch(() => {})));
    await this.processing;
  }

  end(): void {
    this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private cut(): void {
    this.stopTimer();
    if (this.collecting.length === 0) return;
    this.ready.push(this.collecting);
    this.collecting = [];
    this.processing ??= this.processReady().finally(() => {
      this.processing = undefined;
    });
  }

  private async processReady(): Promise<void> {
    for (let batch = this.ready.shift(); batch !== undefined; batch = this.ready.shift()) {
      await this.runBatch(batch);
    }
  }

  private async runBatch(batch: Message<T>[]): Promise<void> {
    let failed = false;
    try {
      await this.handler(batch);
    } catch {
      failed = true;
    }
    const open = batch.filter((message) => !message.settled);
    await Promise.all(
      open.map((message) => autoSettle(failed ? message.nack() : message.ack(), message, this.report)),
    );
  }
}
