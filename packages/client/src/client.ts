/**
 * The Flotilla client: the public API of the SDK. It puts together the leader link (connections,
 * failover, retries), the publisher (batching, backpressure, confirms), the settlement coalescer
 * (acks, nacks, extends) and push subscriptions (consume, messages, consumeBatch).
 */

import {
  type ClusterInfo,
  checkQueueOptionsPatch,
  type DeliveredMessage,
  FlotillaError,
  invalidArgument,
  isFlotillaError,
  isValidQueueName,
  type Push,
  type QueueOptions,
  type QueueOptionsPatch,
  type QueueStats,
} from '@flotilla/shared';
import type { Connection } from './connection.js';
import {
  type BatchHandler,
  BatchSink,
  HandlerSink,
  IteratorSink,
  type MessageHandler,
  type MessageStream,
  messageStream,
  publicSubscription,
  type Subscription,
} from './consumers.js';
import { type Listener, TypedEmitter } from './emitter.js';
import { type ClientEvents, type ClientStatus, LeaderLink } from './leader-link.js';
import { Message, MessageView } from './message.js';
import { type ConnectOptions, type ResolvedOptions, resolveOptions } from './options.js';
import {
  type BatchEntry,
  buildMessage,
  type PublishCallOptions,
  Publisher,
  type PublishOptions,
  type PublishReceipt,
} from './publisher.js';
import { Settlements } from './settlements.js';
import { type DeliverySink, PushSubscription, type SubscriptionHost } from './subscription.js';
import { deferred, IdempotencyKeys, toFlotillaError } from './util.js';

/** Options of `consume` and `messages`. */
export interface ConsumeOptions {
  /** Messages held (delivered, not yet settled) at most; also the handler concurrency. Default 100. */
  prefetch?: number;
}

/** Options of `consumeBatch`. */
export interface ConsumeBatchOptions {
  /** Messages per handler call at most (default 100). */
  maxMessages?: number;
  /** A batch is handed over this long after its first message even if not full, in ms (default 1,000). */
  maxWaitMs?: number;
  /** Messages held at most (default `maxMessages`; larger lets the next batch fill during a handler call). */
  prefetch?: number;
}

/** Options of `receive`. */
export interface ReceiveOptions {
  /** Messages to lease at most (default 10). */
  max?: number;
  /** Long poll: when none is ready, wait up to this long for one, in ms (default 0). */
  waitMs?: number;
  /** Lease length for these deliveries, in ms (default: the queue's visibilityTimeoutMs). */
  visibilityTimeoutMs?: number;
}

/** Options of `peek`. */
export interface PeekOptions {
  /** First sequence number to show (default 0). */
  fromSeq?: number;
  /** Messages to show at most (default 100). */
  max?: number;
}

/** Options of `redrive`. */
export interface RedriveOptions {
  /** Queue to move messages to (default: each back to the queue it was dead-lettered from). */
  target?: string;
  /** Messages to move at most in this call (default: the server's maximum). */
  max?: number;
}

/** Options of `close`. */
export interface CloseOptions {
  /**
   * Wait for handlers in progress, unconfirmed publishes and pending acks before closing
   * (default true). With false, everything pending fails with CLOSED at once.
   */
  drain?: boolean;
}

const DEFAULT_PREFETCH = 100;
const DEFAULT_BATCH_MESSAGES = 100;
const DEFAULT_BATCH_WAIT_MS = 1_000;
const DEFAULT_RECEIVE_MAX = 10;
const DEFAULT_PEEK_MAX = 100;
/** Longest delay a timer can hold (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

function checkQueueName(name: unknown, field: string): string {
  if (!isValidQueueName(name)) {
    throw invalidArgument(
      field,
      `not a valid queue name (1..200 of [A-Za-z0-9._:-]): ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/** The deadline and signal of a publish call: a timer length setTimeout can keep, an AbortSignal. */
function checkCallOptions(options: PublishCallOptions): void {
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined) checkRange(timeoutMs, 'timeoutMs', 1, MAX_TIMER_MS);
  if (signal === undefined) return;
  const looksLikeSignal =
    typeof signal === 'object' &&
    signal !== null &&
    typeof signal.aborted === 'boolean' &&
    typeof signal.addEventListener === 'function' &&
    typeof signal.removeEventListener === 'function';
  if (!looksLikeSignal) throw invalidArgument('signal', 'expected an AbortSignal');
}

function checkHandler(handler: unknown): void {
  if (typeof handler !== 'function') throw invalidArgument('handler', 'expected a function');
}

function checkRange(value: number, field: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(field, `${value} is not an integer in ${min}..${max}`);
  }
  return value;
}

/**
 * A connection to a Flotilla cluster that follows the leader by itself. Create one with
 * `connect()`, share it across the application, and `close()` it on shutdown.
 */
export class FlotillaClient {
  private readonly events = new TypedEmitter<ClientEvents>((error) => this.listenerFailed(error));
  private readonly link: LeaderLink;
  private readonly publisher: Publisher;
  private readonly settlements: Settlements;
  private readonly keys = new IdempotencyKeys();
  private readonly subscriptions = new Set<PushSubscription>();
  private readonly registry = new WeakMap<Connection, Map<number, PushSubscription>>();
  private readonly orphans = new WeakMap<Connection, Set<number>>();
  private readonly endedWith = deferred<FlotillaError | null>();
  private closing: Promise<void> | undefined;
  private closedByUser = false;
  private reportingListenerError = false;

  private constructor(private readonly options: ResolvedOptions) {
    this.link = new LeaderLink(options, this.events, {
      onConnected: (connection) => this.handleConnected(connection),
      onDisconnected: (connection) => this.handleDisconnected(connection),
      onPush: (connection, push) => this.handlePush(connection, push),
      onClosed: (error) => this.handleLinkClosed(error),
    });
    this.publisher = new Publisher(
      {
        publish: (queue, messages, signal, onRetry) =>
          this.link.call('publish', () => ({ queue, messages: messages() }), {
            idempotent: true,
            signal,
            onRetry,
          }),
        limits: () => this.link.limits,
      },
      options,
    );
    this.settlements = new Settlements({
      settle: async (op, items, arg) => {
        const wireOp = op === 'reject' ? 'nack' : op;
        const params =
          op === 'ack'
            ? { items }
            : op === 'nack'
              ? { items, delayMs: arg }
              : op === 'reject'
                ? { items, deadLetter: true }
                : { items, ms: arg ?? 0 };
        let uncertain: FlotillaError | null = null;
        const outcomes = await this.link.call(wireOp, params as never, {
          idempotent: true,
          onRetry: (failure) => {
            if (failure.maybeApplied) uncertain = failure;
          },
        });
        const { failed } = outcomes as { failed: Array<{ index: number; code: FlotillaError['code'] }> };
        return { failed, uncertain };
      },
      maxAckBatch: () => this.link.limits.maxAckBatch,
    });
  }

  /** Connects to a cluster; see `connect()`. */
  static async connect(options: ConnectOptions): Promise<FlotillaClient> {
    const client = new FlotillaClient(resolveOptions(options));
    await client.link.start();
    return client;
  }

  // -------------------------------------------------------------------------------------------
  // State and events

  /** `connecting`, `connected`, `reconnecting`, `draining` (closing) or `closed`. */
  get status(): ClientStatus {
    return this.link.status;
  }

  /** Id of the node in use, or null while reconnecting. */
  get nodeId(): string | null {
    return this.link.connection?.nodeId ?? null;
  }

  /** Id of the leader as last known, or null. */
  get leaderId(): string | null {
    return this.link.knownLeaderId;
  }

  /** Which node id each configured URL belongs to, as learned from the welcomes so far. */
  get knownNodes(): ReadonlyMap<string, string> {
    return this.link.learnedNodes;
  }

  /**
   * The members' advertised URLs by node id, as last learned from the cluster (after each
   * connection, and from every `cluster()` call). Tried after the configured servers, never
   * before them.
   */
  get memberUrls(): ReadonlyMap<string, string> {
    return this.link.memberUrls;
  }

  /** Adds an event listener (`connected`, `disconnected`, `leaderChanged`, `error`); returns a remover. */
  on<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    return this.events.on(event, listener);
  }

  /** Adds a listener that runs once; returns a remover. */
  once<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    return this.events.once(event, listener);
  }

  /** Removes a listener. */
  off<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): void {
    this.events.off(event, listener);
  }

  /** Resolves when the client is closed: null after `close()`, else the error that closed it (e.g. UNAUTHORIZED). */
  closed(): Promise<FlotillaError | null> {
    return this.endedWith.promise;
  }

  // -------------------------------------------------------------------------------------------
  // Queue administration

  /** Creates a queue; resolves with its full options. Fails with QUEUE_EXISTS if the name is taken. */
  async createQueue(name: string, options: QueueOptionsPatch = {}): Promise<QueueOptions> {
    checkQueueName(name, 'name');
    const checked = checkQueueOptionsPatch(options, 'options');
    return this.link.call('createQueue', { name, options: checked }, { idempotent: false });
  }

  /** Changes a queue's options (only those given); resolves with the options after the change. */
  async updateQueue(name: string, patch: QueueOptionsPatch): Promise<QueueOptions> {
    checkQueueName(name, 'name');
    const checked = checkQueueOptionsPatch(patch, 'options');
    // Applying the same patch twice gives the same options: safe to repeat.
    return this.link.call('updateQueue', { name, options: checked }, { idempotent: true });
  }

  /** Deletes a queue and its messages. */
  async deleteQueue(name: string): Promise<void> {
    checkQueueName(name, 'name');
    await this.link.call('deleteQueue', { name }, { idempotent: false });
  }

  /** Removes every message of a queue; resolves with how many were removed. */
  async purgeQueue(name: string): Promise<number> {
    checkQueueName(name, 'name');
    return this.link.call('purgeQueue', { name }, { idempotent: false });
  }

  /** Stats of every queue. */
  async listQueues(): Promise<QueueStats[]> {
    return this.link.call('listQueues', {}, { idempotent: true });
  }

  /** Stats of one queue (depth, in flight, delayed, counters, oldest message age, options). */
  async queueStats(name: string): Promise<QueueStats> {
    checkQueueName(name, 'name');
    return this.link.call('queueStats', { name }, { idempotent: true });
  }

  /** The cluster as the node in use sees it (members, roles, leader, term). */
  async cluster(): Promise<ClusterInfo> {
    return this.link.call(
      'cluster',
      {},
      {
        idempotent: true,
        onResult: (info) => this.link.noteMembers(info.nodes),
      },
    );
  }

  // -------------------------------------------------------------------------------------------
  // Publishing

  /**
   * Publishes one message and resolves once it is durably stored (in a majority's log and applied
   * by the leader). `body` is a `Uint8Array` (sent as is), a string (UTF-8) or any
   * msgpack-encodable value. Publishes of one event-loop turn share frames. Waits, without
   * rejecting, while `maxUnconfirmedMessages`/`maxUnconfirmedBytes` are in flight.
   *
   * `timeoutMs` and `signal` bound this call: when one fires first it rejects with TIMEOUT or
   * CANCELLED, stops retrying the message and frees its place. The outcome is then unknown (it may
   * be stored): publish again with `details.idempotencyKey` to have it stored once.
   */
  async publish(
    queue: string,
    body: unknown,
    options: PublishOptions & PublishCallOptions = {},
  ): Promise<PublishReceipt> {
    this.checkOpen();
    checkQueueName(queue, 'queue');
    checkCallOptions(options);
    const built = buildMessage(body, options, this.keys, this.link.limits);
    return this.publisher.publish(queue, [built], options)[0]!;
  }

  /**
   * Publishes several messages; resolves with their receipts in order. Every entry is checked
   * before anything is sent. Not atomic: on failure the error (the code of the first failure of
   * unknown outcome if any, else of the first failure) lists in `details.failed` the indexes that
   * failed and in `details.receipts` what was stored; when some outcomes are unknown (TIMEOUT,
   * CANCELLED...) `details.idempotencyKeys` gives every entry's key for a safe retry. `timeoutMs` and `signal` bound the whole batch as for `publish`.
   */
  async publishBatch(
    queue: string,
    entries: readonly BatchEntry[],
    options: PublishCallOptions = {},
  ): Promise<PublishReceipt[]> {
    this.checkOpen();
    checkQueueName(queue, 'queue');
    checkCallOptions(options);
    if (!Array.isArray(entries))
      throw invalidArgument('entries', 'expected an array of { body, ...options }');
    const built = entries.map((entry, index) => {
      try {
        return buildMessage(entry.body, entry, this.keys, this.link.limits);
      } catch (error) {
        const failure = toFlotillaError(error);
        const field = `entries[${index}].${failure.field ?? 'body'}`;
        throw new FlotillaError(failure.code, `${field}: ${failure.message}`, { ...failure.details, field });
      }
    });
    const outcomes = await Promise.allSettled(this.publisher.publish(queue, built, options));
    const receipts = outcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : null));
    const failures = outcomes.map((outcome) =>
      outcome.status === 'rejected' ? toFlotillaError(outcome.reason) : null,
    );
    const failed = failures.flatMap((failure, index) => (failure === null ? [] : [index]));
    if (failed.length === 0) return receipts as PublishReceipt[];
    // The batch's code is a maybe-applied one if any entry may have been stored: a definite code
    // would tell the caller that nothing failed was stored.
    const uncertain = failures.find((failure) => failure?.maybeApplied === true);
    const first = uncertain ?? failures[failed[0]!]!;
    const keys = uncertain ? { idempotencyKeys: built.map(({ message }) => message.idempotencyKey) } : {};
    throw new FlotillaError(
      first.code,
      `publishBatch: ${failed.length} of ${entries.length} messages failed; ${uncertain ? 'first of unknown outcome' : 'first'}: ${first.message}`,
      { ...first.details, failed, receipts, ...keys },
      { cause: first },
    );
  }

  // -------------------------------------------------------------------------------------------
  // Consuming

  /**
   * Runs `handler` for each message pushed from `queue`, at most `prefetch` at a time. When the
   * handler resolves the message is acked; when it throws it is nacked (the queue's retry backoff
   * applies). Resolves once subscribed; the subscription survives failovers.
   */
  async consume<T = unknown>(
    queue: string,
    handler: MessageHandler<T>,
    options: ConsumeOptions = {},
  ): Promise<Subscription> {
    checkHandler(handler);
    const prefetch = this.checkPrefetch(options.prefetch ?? DEFAULT_PREFETCH);
    const sink = new HandlerSink(handler, (error, message) => this.reportSettleError(error, message));
    const subscription = await this.subscribe(checkQueueName(queue, 'queue'), prefetch, sink);
    return publicSubscription(subscription);
  }

  /**
   * An async iterator over `queue`'s messages with a single reader. At most `prefetch` messages
   * are held; settle each one (`ack`/`nack`). Leaving the loop unsubscribes.
   */
  messages<T = unknown>(queue: string, options: ConsumeOptions = {}): MessageStream<T> {
    const sink = new IteratorSink<T>();
    let subscription: PushSubscription | undefined;
    let started: Promise<void>;
    try {
      const prefetch = this.checkPrefetch(options.prefetch ?? DEFAULT_PREFETCH);
      checkQueueName(queue, 'queue');
      this.checkOpen();
      subscription = new PushSubscription(this.subscriptionHost(), queue, prefetch, sink);
      this.subscriptions.add(subscription);
      started = subscription.start();
    } catch (error) {
      started = Promise.reject(error);
    }
    started.catch(() => {});
    return messageStream(sink, subscription ?? this.deadSubscription(sink), started);
  }

  /**
   * Runs `handler` on batches of up to `maxMessages` messages, handing a batch over when it is
   * full or `maxWaitMs` after its first message. Resolving acks the whole batch, throwing nacks it.
   */
  async consumeBatch<T = unknown>(
    queue: string,
    handler: BatchHandler<T>,
    options: ConsumeBatchOptions = {},
  ): Promise<Subscription> {
    checkHandler(handler);
    const maxPrefetch = this.link.limits.maxPrefetch;
    const maxMessages = checkRange(
      options.maxMessages ?? DEFAULT_BATCH_MESSAGES,
      'maxMessages',
      1,
      maxPrefetch,
    );
    const maxWaitMs = checkRange(options.maxWaitMs ?? DEFAULT_BATCH_WAIT_MS, 'maxWaitMs', 0, 2 ** 31 - 1);
    const prefetch = this.checkPrefetch(options.prefetch ?? maxMessages);
    const sink = new BatchSink(handler, { maxMessages, maxWaitMs }, (error, message) =>
      this.reportSettleError(error, message),
    );
    const subscription = await this.subscribe(checkQueueName(queue, 'queue'), prefetch, sink);
    return publicSubscription(subscription);
  }

  /**
   * Leases up to `max` ready messages (pull). With `waitMs`, waits that long for one when none
   * is ready (long poll). Settle each message; unsettled ones come back when their lease ends.
   */
  async receive<T = unknown>(queue: string, options: ReceiveOptions = {}): Promise<Message<T>[]> {
    checkQueueName(queue, 'queue');
    const limits = this.link.limits;
    const max = checkRange(options.max ?? DEFAULT_RECEIVE_MAX, 'max', 1, limits.maxReceiveMessages);
    const waitMs = checkRange(options.waitMs ?? 0, 'waitMs', 0, limits.maxReceiveWaitMs);
    let epoch = 0;
    // Leases of a receive whose reply was lost come back when they end: repeating it is safe.
    const delivered = await this.link.call(
      'receive',
      { queue, max, waitMs, visibilityTimeoutMs: options.visibilityTimeoutMs ?? null },
      {
        idempotent: true,
        timeoutMs: waitMs + this.options.requestTimeoutMs,
        onResult: () => {
          epoch = this.link.connection?.epoch ?? 0;
        },
      },
    );
    return delivered.map((item) => new Message<T>(item, epoch, this.settlements));
  }

  /** Shows stored messages from `fromSeq` on, in seq order, without leasing them. */
  async peek<T = unknown>(queue: string, options: PeekOptions = {}): Promise<MessageView<T>[]> {
    checkQueueName(queue, 'queue');
    const max = checkRange(options.max ?? DEFAULT_PEEK_MAX, 'max', 1, this.link.limits.maxReceiveMessages);
    const delivered = await this.link.call(
      'peek',
      { queue, max, fromSeq: options.fromSeq ?? null },
      { idempotent: true },
    );
    return delivered.map((item: DeliveredMessage) => new MessageView<T>(item));
  }

  /** Moves dead-lettered messages out of `dlq` (oldest first); resolves with how many moved. */
  async redrive(dlq: string, options: RedriveOptions = {}): Promise<number> {
    checkQueueName(dlq, 'dlq');
    if (options.target !== undefined) checkQueueName(options.target, 'target');
    return this.link.call(
      'redrive',
      { dlq, target: options.target ?? null, max: options.max ?? null },
      { idempotent: false },
    );
  }

  // -------------------------------------------------------------------------------------------
  // Closing

  /**
   * Closes the client. By default drains first: subscriptions stop, handlers in progress finish
   * and settle, unconfirmed publishes and pending acks complete (each within its own deadline).
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.shutdown(options.drain ?? true);
    return this.closing;
  }

  private async shutdown(drain: boolean): Promise<void> {
    if (this.link.status === 'closed') return;
    this.link.status = 'draining';
    if (drain) {
      await Promise.all([...this.subscriptions].map((subscription) => subscription.close()));
      // Handlers that finished may have published or settled: wait until both are idle at once.
      while (this.publisher.unconfirmedCount > 0 || this.settlements.pendingCount > 0) {
        await Promise.all([this.publisher.idle(), this.settlements.idle()]);
      }
    }
    this.closedByUser = true;
    this.link.close(null);
  }

  // -------------------------------------------------------------------------------------------
  // Internals

  private checkOpen(): void {
    if (this.link.status === 'closed') throw new FlotillaError('CLOSED', 'the client is closed');
  }

  private checkPrefetch(prefetch: number): number {
    return checkRange(prefetch, 'prefetch', 1, this.link.limits.maxPrefetch);
  }

  private async subscribe(queue: string, prefetch: number, sink: DeliverySink): Promise<PushSubscription> {
    this.checkOpen();
    const subscription = new PushSubscription(this.subscriptionHost(), queue, prefetch, sink);
    this.subscriptions.add(subscription);
    await subscription.start();
    return subscription;
  }

  /** A subscription that never started (bad arguments): the stream reports the error. */
  private deadSubscription(sink: IteratorSink<unknown>): PushSubscription {
    const subscription = new PushSubscription(this.subscriptionHost(), 'invalid', 1, sink);
    subscription.abort(new FlotillaError('INVALID_ARGUMENT', 'the stream could not start'));
    return subscription;
  }

  private subscriptionHost(): SubscriptionHost {
    return {
      currentConnection: () => this.link.connection,
      callOn: (connection, op, params, onResult) => this.link.callOn(connection, op, params, onResult),
      followLeader: (connection, error) => {
        const { leaderId, leaderUrl } = error.details;
        this.link.followLeader(
          connection,
          typeof leaderId === 'string' ? leaderId : null,
          typeof leaderUrl === 'string' ? leaderUrl : null,
        );
      },
      pause: (attempt) => this.link.pause(attempt),
      register: (connection, subId, subscription) => {
        let byId = this.registry.get(connection);
        if (byId === undefined) {
          byId = new Map();
          this.registry.set(connection, byId);
        }
        byId.set(subId, subscription);
      },
      unregister: (connection, subId) => {
        this.registry.get(connection)?.delete(subId);
      },
      removed: (subscription) => this.subscriptions.delete(subscription),
      settler: this.settlements,
      requestTimeoutMs: this.options.requestTimeoutMs,
      reportError: (error) => this.events.emit('error', error),
    };
  }

  private handleConnected(connection: Connection): void {
    for (const subscription of this.subscriptions) subscription.onConnected(connection);
  }

  private handleDisconnected(connection: Connection): void {
    this.registry.delete(connection);
    for (const subscription of this.subscriptions) subscription.onDisconnected(connection);
  }

  private handlePush(connection: Connection, push: Push): void {
    if (push.kind === 'deliver') {
      const subscription = this.registry.get(connection)?.get(push.subId);
      if (subscription !== undefined) subscription.onDeliver(connection, push.subId, push.messages);
      else this.releaseOrphan(connection, push.subId, push.messages);
    } else if (push.kind === 'subscriptionEnded') {
      const error = new FlotillaError(push.code, push.message, { subId: push.subId });
      this.registry.get(connection)?.get(push.subId)?.onEnded(connection, push.subId, error);
    }
  }

  /**
   * Deliveries for a subscription this client does not know (its subscribe reply was lost to a
   * timeout, or it was just closed): give the messages back and stop that subscription.
   */
  private releaseOrphan(connection: Connection, subId: number, delivered: DeliveredMessage[]): void {
    for (const item of delivered) {
      new Message(item, connection.epoch, this.settlements).nack({ delayMs: 0 }).catch(() => {});
    }
    let seen = this.orphans.get(connection);
    if (seen === undefined) {
      seen = new Set();
      this.orphans.set(connection, seen);
    }
    if (seen.has(subId) || connection.isClosed) return;
    seen.add(subId);
    this.link.callOn(connection, 'unsubscribe', { subId }).catch(() => {});
  }

  private handleLinkClosed(error: FlotillaError): void {
    for (const subscription of [...this.subscriptions]) subscription.abort(error);
    this.endedWith.resolve(this.closedByUser ? null : error);
  }

  /** A settlement the SDK made on the user's behalf failed. */
  private reportSettleError(error: FlotillaError, message: Message): void {
    if (error.code === 'CLOSED') return;
    // Deliveries of an earlier connection are expected to have lost their leases: the message comes back.
    const stale = message.connectionEpoch !== this.link.connection?.epoch;
    if (stale && (error.code === 'LEASE_EXPIRED' || isFlotillaError(error.cause, 'LEASE_EXPIRED'))) return;
    this.events.emit('error', error);
  }

  private listenerFailed(error: unknown): void {
    if (this.reportingListenerError) return;
    this.reportingListenerError = true;
    try {
      this.events.emit('error', toFlotillaError(error));
    } finally {
      this.reportingListenerError = false;
    }
  }
}

/**
 * Connects to a Flotilla cluster: tries the servers (with backoff) until one answers, follows it
 * to the leader, and resolves with a ready client. Rejects with UNAVAILABLE after
 * `connectTimeoutMs`, or at once with UNAUTHORIZED / UNSUPPORTED_VERSION.
 *
 * @example
 * ```ts
 * const client = await connect({ servers: ['ws://127.0.0.1:7401', 'ws://127.0.0.1:7402'] });
 * await client.publish('emails', { to: 'a@example.com' });
 * ```
 */
export function connect(options: ConnectOptions): Promise<FlotillaClient> {
  return FlotillaClient.connect(options);
}
