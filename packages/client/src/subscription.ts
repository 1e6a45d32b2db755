/**
 * A push subscription that survives failover. It subscribes on the current leader connection,
 * subscribes again after every reconnect (subscriptions do not outlive their connection), and
 * keeps the number of messages held by this client within `prefetch`:
 *
 * - Deliveries of the current server subscription are counted by the server's window.
 * - Deliveries of an older one (before a reconnect, or before the server ended the subscription)
 *   that user code still holds are "stale": the new server window is shrunk by their number and
 *   raised again with `credit` as they settle, so old plus new never exceed `prefetch`.
 * - Deliveries not yet handed to user code when their connection drops are forgotten: the server
 *   releases those leases, and handing them out would only cause duplicate work.
 *
 * What happens to each delivery (a handler, an iterator, a batch) is the sink's business.
 */

import {
  type DeliveredMessage,
  type ErrorCode,
  FlotillaError,
  type OpName,
  type RequestParams,
  type ResultMap,
} from '@flotilla/shared';
import type { Connection } from './connection.js';
import { Message, type SettleObserver, type Settler } from './message.js';
import { afterTurn, Deadline, deferred } from './util.js';

/** Where a subscription's deliveries go. */
export interface DeliverySink {
  /** A new delivery, counted against prefetch until it is settled. */
  deliver(message: Message): void;
  /** The connection was lost: forget deliveries not yet handed to user code. */
  reset(): void;
  /** The subscription is closing: release what is buffered, wait for user code in progress. */
  drain(): Promise<void>;
  /** The subscription has ended (null: closed by the user). */
  end(error: FlotillaError | null): void;
}

/** The services a subscription uses from its client. */
export interface SubscriptionHost {
  currentConnection(): Connection | null;
  /** One attempt on one connection, with the request deadline; no retries. */
  callOn<K extends OpName>(
    connection: Connection,
    op: K,
    params: RequestParams[K],
    onResult?: (result: ResultMap[K]) => void,
  ): Promise<ResultMap[K]>;
  /** A request on `connection` got NOT_LEADER: move to the leader it names. */
  followLeader(connection: Connection, error: FlotillaError): void;
  /** Waits the backoff for retry number `attempt`. */
  pause(attempt: number): Promise<void>;
  register(connection: Connection, subId: number, subscription: PushSubscription): void;
  unregister(connection: Connection, subId: number): void;
  /** The subscription is over; the client stops tracking it. */
  removed(subscription: PushSubscription): void;
  settler: Settler;
  requestTimeoutMs: number;
  reportError(error: FlotillaError): void;
}

type State = 'starting' | 'active' | 'idle' | 'closing' | 'closed';

/** Codes after which subscribing again later can succeed. */
const TRANSIENT: ReadonlySet<ErrorCode> = new Set(['UNAVAILABLE', 'OVERLOADED', 'TIMEOUT', 'INTERNAL']);

/** One logical push subscription (many server subscriptions over its life). */
export class PushSubscription implements SettleObserver {
  private state: State = 'starting';
  private connection: Connection | null = null;
  private subId: number | null = null;
  /** Window the server currently applies to `subId`. */
  private serverWindow = 0;
  /** Held deliveries of the current server subscription. */
  private current = new Set<Message>();
  /** Held deliveries of earlier server subscriptions. */
  private readonly stale = new Set<Message>();
  /** Connection a subscribe is being attempted on (one at a time). */
  private subscribing: Connection | null = null;
  private creditScheduled = false;
  private readonly started = deferred<void>();
  private readonly ended = deferred<FlotillaError | null>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly host: SubscriptionHost,
    readonly queue: string,
    readonly prefetch: number,
    private readonly sink: DeliverySink,
  ) {
    this.started.promise.catch(() => {});
  }

  /** Messages delivered and not yet settled. */
  get held(): number {
    return this.current.size + this.stale.size;
  }

  /** Resolves with null when closed by the user, or with the error that ended it. */
  closed(): Promise<FlotillaError | null> {
    return this.ended.promise;
  }

  /** Subscribes for the first time; rejects (and ends the subscription) if that fails or times out. */
  async start(): Promise<void> {
    const connection = this.host.currentConnection();
    if (connection !== null) void this.subscribeOn(connection);
    const deadline = new Deadline(this.host.requestTimeoutMs, () => `subscribe to ${this.queue}`);
    try {
      await deadline.race(this.started.promise, false);
    } catch (error) {
      this.finish(error as FlotillaError);
      throw error;
    } finally {
      deadline.clear();
    }
  }

  /** The client adopted a new connection to the leader. */
  onConnected(connection: Connection): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    void this.subscribeOn(connection);
  }

  /** The current connection was lost or left. */
  onDisconnected(connection: Connection): void {
    if (this.connection !== connection) return;
    this.detachServerSubscription();
    this.sink.reset();
  }

  /** Messages pushed by the server for `subId` on `connection`. */
  onDeliver(connection: Connection, subId: number, delivered: DeliveredMessage[]): void {
    const live = this.connection === connection && this.subId === subId && this.state === 'active';
    for (const item of delivered) {
      const message = new Message(item, connection.epoch, this.host.settler, this);
      if (live) {
        this.current.add(message);
        this.sink.deliver(message);
      } else {
        // Too late (closing, or an old subscription): give it straight back.
        message.nack({ delayMs: 0 }).catch(() => {});
      }
    }
  }

  /** The server ended `subId` (queue deleted, leadership lost...). */
  onEnded(connection: Connection, subId: number, error: FlotillaError): void {
    if (this.connection !== connection || this.subId !== subId) return;
    this.host.unregister(connection, subId);
    this.detachServerSubscription();
    if (this.state === 'closing' || this.state === 'closed') return;
    if (error.code === 'NOT_LEADER' || TRANSIENT.has(error.code)) {
      // Subscribing again finds the leader (NOT_LEADER names it) or waits for the next connection.
      const current = this.host.currentConnection();
      if (current !== null) void this.subscribeOn(current);
      return;
    }
    this.endWith(error);
  }

  /** A delivery was settled (acked, nacked or forgotten): its prefetch slot is free. */
  onSettled(message: Message): void {
    if (this.current.delete(message)) return;
    if (this.stale.delete(message)) this.scheduleWindowUpdate();
  }

  /** Stops deliveries, releases what is buffered, waits for user code in progress to finish and settle. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Ends the subscription at once (the client closed): nothing is drained. */
  abort(error: FlotillaError): void {
    this.finish(error);
  }

  private async shutdown(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    const connection = this.connection;
    const subId = this.subId;
    if (connection !== null && subId !== null) {
      try {
        await this.host.callOn(connection, 'unsubscribe', { subId });
      } catch {
        // The connection is gone or the server already ended it: either way nothing more arrives.
      }
      this.host.unregister(connection, subId);
      this.connection = null;
      this.subId = null;
    }
    await this.sink.drain();
    this.finish(null);
  }

  /**
   * A started subscription ended for good with `error` (its queue was deleted, its permission
   * withdrawn...): `closed()` resolves with it, and the client's `error` event reports it, as a
   * handler-based consumer has nobody else to tell.
   */
  private endWith(error: FlotillaError): void {
    if (this.state === 'closed') return;
    this.finish(error);
    this.host.reportError(error);
  }

  private finish(error: FlotillaError | null): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.connection !== null && this.subId !== null) {
      const { connection, subId } = this;
      this.host.unregister(connection, subId);
      if (!connection.isClosed) this.host.callOn(connection, 'unsubscribe', { subId }).catch(() => {});
    }
    this.connection = null;
    this.subId = null;
    this.host.removed(this);
    this.started.reject(
      error ?? new FlotillaError('CLOSED', `subscription to ${this.queue} closed before it started`),
    );
    this.sink.end(error);
    this.ended.resolve(error);
  }

  /** The server side of the subscription is gone; what the client holds of it becomes stale. */
  private detachServerSubscription(): void {
    this.connection = null;
    this.subId = null;
    this.serverWindow = 0;
    for (const message of this.current) this.stale.add(message);
    this.current = new Set();
    if (this.state === 'active') this.state = 'idle';
  }

  private window(): number {
    return this.prefetch - this.stale.size;
  }

  private async subscribeOn(connection: Connection): Promise<void> {
    if (this.subscribing !== null || this.connection === connection) return;
    // With `prefetch` stale messages still held there is no room yet; a settlement retries.
    if (this.window() < 1) return;
    this.subscribing = connection;
    try {
      await this.subscribeLoop(connection);
    } finally {
      this.subscribing = null;
    }
  }

  private async subscribeLoop(connection: Connection): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const window = this.window();
      try {
        await this.host.callOn(connection, 'subscribe', { queue: this.queue, prefetch: window }, (subId) =>
          this.activate(connection, subId, window),
        );
        return;
      } catch (error) {
        const failure = error as FlotillaError;
        if (this.state === 'closing' || this.state === 'closed') return;
        if (this.host.currentConnection() !== connection) return; // the next connection subscribes again
        if (failure.code === 'NOT_LEADER') {
          this.host.followLeader(connection, failure);
          return;
        }
        if (failure.code === 'CONNECTION_LOST') return;
        if (!TRANSIENT.has(failure.code)) {
          // Before the first success `start()` rejects with it; after, nobody awaits this call.
          if (this.state === 'starting') this.finish(failure);
          else this.endWith(failure);
          return;
        }
        await this.host.pause(attempt);
        if (this.host.currentConnection() !== connection) return;
      }
    }
  }

  /** Runs synchronously with the subscribe reply, before any delivery for `subId` is read. */
  private activate(connection: Connection, subId: number, window: number): void {
    if (this.state === 'closing' || this.state === 'closed') {
      this.host.callOn(connection, 'unsubscribe', { subId }).catch(() => {});
      return;
    }
    this.connection = connection;
    this.subId = subId;
    this.serverWindow = window;
    this.state = 'active';
    this.host.register(connection, subId, this);
    this.started.resolve();
  }

  /** Stale messages settled: raise the server window (coalesced per turn), or subscribe if we could not. */
  private scheduleWindowUpdate(): void {
    if (this.creditScheduled) return;
    this.creditScheduled = true;
    afterTurn(() => {
      this.creditScheduled = false;
      if (this.state === 'closing' || this.state === 'closed') return;
      const connection = this.connection;
      const subId = this.subId;
      const window = this.window();
      if (connection === null || subId === null) {
        const current = this.host.currentConnection();
        if (current !== null) void this.subscribeOn(current);
        return;
      }
      if (window <= this.serverWindow) return;
      this.serverWindow = window;
      this.host.callOn(connection, 'credit', { subId, prefetch: window }).catch((error: FlotillaError) => {
        if (error.code !== 'CONNECTION_LOST' && error.code !== 'SUBSCRIPTION_NOT_FOUND')
          this.host.reportError(error);
      });
    });
  }
}
